"""Text helpers shared by the router, the mention finder and the cart parser."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")

# Letters of every script are words: a Cyrillic or Greek message is read, not dropped.
_WORD = re.compile(r"[^\W_]+(?:[.,][0-9]+)?(?:'[^\W\d_]+)?")

NUMBER_WORDS: dict[str, int] = {
    "a": 1, "an": 1, "one": 1, "single": 1, "two": 2, "couple": 2, "pair": 2, "three": 3, "four": 4,
    "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "dozen": 12, "fifteen": 15, "twenty": 20, "both": 2,
    # a few common non-English forms
    "uno": 1, "una": 1, "dos": 2, "tres": 3, "un": 1, "une": 1, "deux": 2, "trois": 3,
    "ein": 1, "eine": 1, "zwei": 2, "drei": 3, "due": 2, "tre": 3,
    # Russian, in the forms a shopper types after "добавь" / "убери" ("одну кружку", "две штуки")
    "один": 1, "одну": 1, "одна": 1, "одно": 1, "два": 2, "две": 2, "пару": 2, "пара": 2, "три": 3,
    "четыре": 4, "пять": 5, "шесть": 6, "семь": 7, "восемь": 8, "девять": 9, "десять": 10,
}
ORDINALS: dict[str, int] = {
    "first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
    "fifth": 5, "5th": 5, "sixth": 6, "6th": 6, "last": -1,
    "первый": 1, "первую": 1, "первая": 1, "первое": 1, "второй": 2, "вторую": 2, "вторая": 2, "второе": 2,
    "третий": 3, "третью": 3, "третья": 3, "последний": -1, "последнюю": -1, "последняя": -1,
}


def fold(text: str) -> str:
    """Lower-case and strip accents from Latin letters: "Café" -> "cafe".

    Cyrillic keeps its marks ("й" is a letter of its own, not "и"), and "ё" is read as "е",
    as most Russian writers type it.
    """
    lowered = text.lower()
    if lowered.isascii():
        return lowered
    out = []
    for ch in lowered:
        if "\u00c0" <= ch <= "\u024f":
            out.append("".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)))
        else:
            out.append(ch)
    return "".join(out).replace("ё", "е")


def normalise(text: str) -> str:
    """Folded words joined by single spaces (punctuation and emoji dropped)."""
    return " ".join(tokens(text))


def tokens(text: str) -> list[str]:
    return _WORD.findall(fold(text).replace("’", "'"))


def edit_distance(a: str, b: str, limit: int = 3) -> int:
    """Levenshtein distance with transpositions, stopping early past ``limit``.

    Pure Python, as core is (tests/core/test_core_is_pure.py); callers that look words up per
    message keep the answers (:class:`chatpay.core.mentions.MentionIndex`).
    """
    if a == b:
        return 0
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        best = cur[0]
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
            best = min(best, cur[j])
        if best > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


# Words that fill a sentence around a command ("ok then", "as well"): spelled right, they are never
# a misspelt product word ("well" is not "wall").
FILLER = frozenset("ok okay then so well hmm um uh actually oh alright right sure fine cool great nice".split())


def typo_budget(word: str) -> int:
    """How many edits a word of this length may carry and still match."""
    n = len(word)
    if n <= 3:
        return 0
    if n <= 5:
        return 1
    return 2


# Cyrillic letters as Latin sounds, then Latin spellings that sound alike folded to one, in order:
# how Russian writers spell Latin brands ("ликви моли" for Liqui Moly, "сяоми" for Xiaomi) and how
# English writers misspell them. A word-initial x is "s", as in Chinese brand names.
_CYRILLIC_SOUNDS = str.maketrans({
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z", "и": "i",
    "й": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t",
    "у": "u", "ф": "f", "х": "h", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "sch", "ъ": "", "ы": "i", "ь": "",
    "э": "e", "ю": "iu", "я": "ia",
})
_SOUND_RULES = tuple((re.compile(pattern), repl) for pattern, repl in (
    (r"^x", "s"), (r"qu", "kv"), (r"q", "k"), (r"x", "ks"), (r"ph", "f"), (r"ck", "k"), (r"c(?=[eiy])", "s"),
    (r"c", "k"), (r"w", "v"), (r"[yj]", "i"), (r"z", "s"), (r"(.)\1", r"\1"),
))


def sound(token: str) -> str:
    """A folded word's rough sound in Latin letters (Cyrillic transliterated first), so a brand
    written in either script, or misspelt by ear, has one key: ``sound("карку") == sound("carku")``."""
    token = token.translate(_CYRILLIC_SOUNDS)
    for pattern, repl in _SOUND_RULES:
        token = pattern.sub(repl, token)
    return token


def sound_index(words: Iterable[str], min_length: int) -> dict[str, list[str]]:
    """Words (alphabetic, at least ``min_length`` letters) by their :func:`sound`, in the order given:
    the first of a sound is the preferred one."""
    index: dict[str, list[str]] = {}
    for word in words:
        if len(word) >= min_length and word.isalpha():
            index.setdefault(sound(word), []).append(word)
    return index


def same_word(a: str, b: str) -> bool:
    """Equal, or one inflection of the other ("чугунную" and "чугунная", "leathers" and "leather"):
    words of five letters or more that differ only in their last two letters."""
    if a == b:
        return True
    shorter = min(len(a), len(b))
    return shorter >= 5 and a[: shorter - 2] == b[: shorter - 2] and abs(len(a) - len(b)) <= 2


# A name told apart by word order ("usb c to usb c" against "usb a to usb c") shares a run of three
# words or more with the message; two in a row ("usb c") names are shared too often to tell
MIN_RUN = 3


def longest_run(a: Sequence[str], b: Sequence[str]) -> int:
    """The length of the longest run of words ``a`` and ``b`` share in the same order."""
    best = 0
    for i in range(len(a)):
        for j in range(len(b)):
            n = 0
            while i + n < len(a) and j + n < len(b) and a[i + n] == b[j + n]:
                n += 1
            best = max(best, n)
    return best


def by_longest_run(message: Sequence[str], names: Iterable[tuple[T, Sequence[str]]]) -> T | None:
    """Of ``names`` (a key and its name's words), the one sharing the longest run of ``message``'s
    words: :data:`MIN_RUN` or more, and longer than any other's."""
    runs = sorted(((longest_run(message, words), key) for key, words in names), key=lambda rk: -rk[0])
    if runs and runs[0][0] >= MIN_RUN and (len(runs) == 1 or runs[0][0] > runs[1][0]):
        return runs[0][1]
    return None
