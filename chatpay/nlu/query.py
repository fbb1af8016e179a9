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

CUE_KINDS = ("overview", "recommend", "compare", "need", "budget_max", "budget_min")


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
    for code in LANGUAGES:
        table = cues(code)
        for kind in CUE_KINDS:
            for phrase in table[kind]:
                at = find_phrase(words, phrase)
                while at >= 0:
                    end = at + len(phrase)
                    if kind.startswith("budget"):
                        amount = _amount(words[end]) if end < len(words) else None
                        if amount is not None:
                            found.add(kind)
                            if kind == "budget_max":
                                max_price = amount if max_price is None else min(max_price, amount)
                            else:
                                min_price = amount if min_price is None else max(min_price, amount)
                            for i in range(at, end + 1):
                                used[i] = True
                    else:
                        found.add(kind)
                        if kind not in ("recommend", "need"):  # "a gift for my dad": the words still say what
                            for i in range(at, end):
                                used[i] = True
                    at = find_phrase(words, phrase, end)
    content = tuple(w for i, w in enumerate(words) if not used[i] and not is_stopword(w)
                    and not (w[0].isdigit() and (max_price is not None or min_price is not None)))
    return ParsedQuery(fold(text), lang, tuple(words), content, frozenset(found), max_price, min_price)
