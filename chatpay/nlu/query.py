"""A shopper's question taken apart: content words, cue phrases, and a price budget.

Cue phrases live in ``lang/<code>/cues.json`` and are matched as runs of whole folded tokens,
never as substrings ("add 2 sunset tote bags" holds no "set to"). A budget is an amount after a
``budget_max`` or ``budget_min`` cue ("under 30", "до 1000 рублей"); the amount and its cue
are not content words.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources

from chatpay.nlu.text import LANGUAGES, fold, is_stopword, language, tokens

CUE_KINDS = ("overview", "recommend", "compare", "need", "budget_max", "budget_min", "purpose", "cheapest", "thousand",
             "about")


@cache
def cues(lang: str) -> dict[str, tuple[tuple[str, ...], ...]]:
    """The language's cue phrases as token tuples, longest first."""
    raw = json.loads(
        resources.files("chatpay.nlu").joinpath("lang", lang, "cues.json").read_text(encoding="utf-8")
    )
    out: dict[str, tuple[tuple[str, ...], ...]] = {}
    for kind in CUE_KINDS:
        phrases = {tuple(tokens(p)) for p in raw.get(kind, ())}
        out[kind] = tuple(sorted((p for p in phrases if p), key=len, reverse=True))
    return out


def find_phrase(words: list[str], phrase: tuple[str, ...], start: int = 0) -> int:
    """Index of the first run of ``phrase`` in ``words`` at or after ``start``, or -1."""
    n = len(phrase)
    for i in range(start, len(words) - n + 1):
        if tuple(words[i : i + n]) == phrase:
            return i
    return -1


@dataclass(frozen=True)
class ParsedQuery:
    text: str
    lang: str
    words: tuple[str, ...]
    content: tuple[str, ...]
    cues: frozenset[str] = frozenset()
    max_price: Decimal | None = None
    min_price: Decimal | None = None
    head: str | None = None  # the thing asked for: the last content word before a purpose cue ("battery for my drill")
    subject: tuple[str, ...] = ()  # after an opening "is the", "does the": the words that name what it asks about

    @property
    def has_budget(self) -> bool:
        return self.max_price is not None or self.min_price is not None


def _amount(word: str) -> Decimal | None:
    try:
        value = Decimal(word)
    except InvalidOperation:
        return None
    return value if value > 0 else None


def parse(text: str) -> ParsedQuery:
    """Read ``text``: its language, content tokens, cue kinds and any price budget."""
    words = tokens(text)
    lang = language(text)
    found: set[str] = set()
    used = [False] * len(words)
    max_price = min_price = None
    purpose_at = len(words)
    for code in LANGUAGES:
        table = cues(code)
        # Budget cues longest first across both kinds, never inside one already read: "не дороже
        # 2000" is a cap, not also the floor "дороже 2000"; "no more than 30" is not "more than 30".
        budget = sorted(((p, k) for k in ("budget_max", "budget_min") for p in table[k]), key=lambda pk: -len(pk[0]))
        thousand = {p[0] for p in table["thousand"] if len(p) == 1}
        for phrase, kind in budget:
            at = find_phrase(words, phrase)
            while at >= 0:
                end = at + len(phrase)
                amount = _amount(words[end]) if end < len(words) and not any(used[at : end + 1]) else None
                if amount is not None:
                    last = end
                    if end + 1 < len(words) and words[end + 1] in thousand:  # "до 4 тысяч", "under 2 k"
                        amount, last = amount * 1000, end + 1
                    found.add(kind)
                    if kind == "budget_max":
                        max_price = amount if max_price is None else min(max_price, amount)
                    else:
                        min_price = amount if min_price is None else max(min_price, amount)
                    for i in range(at, last + 1):
                        used[i] = True
                at = find_phrase(words, phrase, end)
        for kind in CUE_KINDS:
            if kind.startswith("budget") or kind in ("thousand", "about"):
                continue
            for phrase in table[kind]:
                at = find_phrase(words, phrase)
                while at >= 0:
                    end = at + len(phrase)
                    if kind == "purpose":
                        purpose_at = min(purpose_at, at)
                    else:
                        found.add(kind)
                        if kind not in ("recommend", "need"):  # "a gift for my dad": the words still say what
                            for i in range(at, end):
                                used[i] = True
                    at = find_phrase(words, phrase, end)
    kept = [i for i, w in enumerate(words) if not used[i] and not is_stopword(w)
            and not (w[0].isdigit() and (max_price is not None or min_price is not None))]
    content = tuple(words[i] for i in kept)
    before = [words[i] for i in kept if i < purpose_at]
    head = before[-1] if before and purpose_at < len(words) else (content[-1] if content else None)
    opening = next((p for code in LANGUAGES for p in cues(code)["about"] if tuple(words[: len(p)]) == p), ())
    subject = tuple(words[len(opening):]) if opening else ()
    return ParsedQuery(fold(text), lang, tuple(words), content, frozenset(found), max_price, min_price, head, subject)

