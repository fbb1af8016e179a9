"""Unicode-correct words: folding, tokens, scripts, stems and stop words per language.

Every script's letters are words here (``\\w``), so a Cyrillic or Greek message is read, not
dropped. Folding is NFKC plus case folding; accents are removed from Latin letters only
(``café`` is ``cafe``) because in Cyrillic they are letters of their own (``й`` is not ``и``),
and ``ё`` folds to ``е`` as Russian writers mostly do. Tokens split at a change between
letters and digits, so ``65W``, ``65 w`` and ``65-watt`` share the token ``65``.

Stems come from the Snowball stemmers (``snowballstemmer``), chosen per token by its script:
Russian for Cyrillic, English for everything else. Stop words (grammar and shopping talk that
never names a product) are data files per language under ``lang/``.

:func:`chatpay.core.text.sound` gives a word's rough sound in Latin letters, so a brand written
in Cyrillic finds its Latin spelling in the catalog ("ликви моли" and "Liqui Moly").
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache
from importlib import resources

import snowballstemmer

_TOKEN = re.compile(r"[^\W\d_]+|\d+(?:[.,]\d+)?", re.UNICODE)
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u02bc": "'", "`": "'"})
LANGUAGES = ("en", "ru")


def fold(text: str) -> str:
    """Case-folded NFKC text with accents removed from Latin letters and ``ё`` read as ``е``."""
    text = unicodedata.normalize("NFKC", text).casefold().translate(_APOSTROPHES)
    if text.isascii():
        return text
    out = []
    for ch in text:
        if "\u00c0" <= ch <= "\u024f":  # Latin-1 supplement and Latin extended: strip the accent
            base = unicodedata.normalize("NFD", ch)
            out.append("".join(c for c in base if not unicodedata.combining(c)))
        else:
            out.append(ch)
    return "".join(out).replace("ё", "е")


def tokens(text: str) -> list[str]:
    """Folded word and number tokens; possessive ``'s`` and contractions' tails are dropped."""
    folded = _THOUSANDS.sub("", fold(text)).replace("'s ", " ").replace("n't", " not").replace("'", " ")
    return [t.replace(",", ".") for t in _TOKEN.findall(folded)]


def script(token: str) -> str:
    """``ru`` for a Cyrillic token, ``en`` otherwise."""
    return "ru" if _CYRILLIC.search(token) else "en"


def language(text: str) -> str:
    """The message's language by the script of most of its letters (``en`` or ``ru``)."""
    cyr = len(_CYRILLIC.findall(text))
    latin = sum(1 for ch in text if ch.isascii() and ch.isalpha())
    return "ru" if cyr > latin else "en"


_STEMMERS = {"en": snowballstemmer.stemmer("english"), "ru": snowballstemmer.stemmer("russian")}


@lru_cache(maxsize=200_000)
def stem(token: str) -> str:
    """The Snowball stem of a folded token (numbers and one-letter tokens stay as they are)."""
    if len(token) < 3 or token[0].isdigit():
        return token
    return str(_STEMMERS[script(token)].stemWord(token))


@cache
def stopwords(lang: str) -> frozenset[str]:
    """The language's stop words, folded (comments and blank lines in the file are skipped)."""
    raw = resources.files("chatpay.nlu").joinpath("lang", lang, "stopwords.txt").read_text(encoding="utf-8")
    return frozenset(fold(w.strip()) for w in raw.splitlines() if w.strip() and not w.startswith("#"))


def is_stopword(token: str) -> bool:
    return token in stopwords(script(token))


def content_tokens(text: str) -> list[str]:
    """Tokens that may name what is wanted: stop words dropped."""
    return [t for t in tokens(text) if not is_stopword(t)]

