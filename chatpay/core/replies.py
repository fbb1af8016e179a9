"""What the bot says, in the shopper's language.

Every sentence an agent writes is a message of ``chatpay/core/lang/<code>.json``, looked up by key
and filled with ``str.format`` fields. The service decides the language once per turn
(:func:`reply_language`) and sets it for the turn with :func:`speaking`; agents call :func:`say`
without passing it around. A message missing from a language falls back to English, so a new
language can be added a file at a time; ``tests/core/test_replies.py`` checks that each file has
every key with the same fields.

Counted nouns go through :func:`count`, which knows each language's plural forms (Russian has
three: 1 товар, 2 товара, 5 товаров).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from importlib import resources
from itertools import islice
from typing import Any

from chatpay.core.catalog import Catalog

LANGUAGES = ("en", "ru")
DEFAULT = "en"
_CURRENT: ContextVar[str] = ContextVar("reply_language", default=DEFAULT)
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN = re.compile(r"[A-Za-z]")
_LATIN_WORD = re.compile(r"[a-z']+")
# Words only an English writer puts in a Latin-letter message; a Russian shopper's Latin message
# is usually a brand or model ("70mai a810 4k") and keeps the conversation's language.
ENGLISH_WORDS = frozenset(
    """the an i'm you your my me it is are do does have has what which how much many can could
    please add remove show cart checkout pay want need looking for with and of to in on this that these
    those yes no thanks thank hi hello hey any some sell there where when""".split())
CATALOG_SAMPLE = 50  # product names read to tell a catalog's language


@cache
def messages(lang: str) -> dict[str, str]:
    """The message file of ``lang`` (key -> text with ``{field}`` placeholders)."""
    raw = resources.files("chatpay.core").joinpath("lang", f"{lang}.json").read_text(encoding="utf-8")
    data = json.loads(raw)
    return {k: v for k, v in data.items() if not k.startswith("_")}


def current() -> str:
    """The language of the turn being answered."""
    return _CURRENT.get()


@contextmanager
def speaking(lang: str) -> Iterator[None]:
    """Answer in ``lang`` inside the block (the service wraps each turn in one)."""
    token = _CURRENT.set(lang if lang in LANGUAGES else DEFAULT)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def say(key: str, **fields: Any) -> str:
    """The message ``key`` in the turn's language, its fields filled in."""
    text = messages(current()).get(key)
    if text is None:
        text = messages(DEFAULT)[key]
    return text.format(**fields) if fields else text


def count(n: int, noun: str) -> str:
    """``n`` and the plural form of ``noun`` (a key ``<noun>.one``/``.few``/``.many``/``.other``)."""
    lang = current()
    if lang == "ru":
        if n % 10 == 1 and n % 100 != 11:
            form = "one"
        elif 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            form = "few"
        else:
            form = "many"
    else:
        form = "one" if n == 1 else "other"
    return f"{n} {say(f'{noun}.{form}')}"


def says_sold_out(text: str) -> bool:
    """Whether ``text``, a reply of ours in any language, refused a sold-out product or option."""
    return any(text.startswith(messages(lang)["reply.sorry"]) and messages(lang)["enquiry.out_of_stock"] in text
               for lang in LANGUAGES)


def reply_language(text: str, previous: object, default: str | Callable[[], str]) -> str:
    """The language to answer ``text`` in.

    Mostly Cyrillic letters: Russian. Latin letters with an English word: English. Anything else
    (a number, "ok", a model name, a button press) keeps the conversation's language, and a
    conversation's first such message takes the shop's (``default``, read only then when a callable).
    """
    cyrillic = len(_CYRILLIC.findall(text))
    latin = len(_LATIN.findall(text))
    if cyrillic > latin:
        return "ru"
    if set(_LATIN_WORD.findall(text.lower())) & ENGLISH_WORDS:
        return "en"
    if isinstance(previous, str) and previous in LANGUAGES:
        return previous
    return default() if callable(default) else default


def catalog_language(catalog: Catalog | None) -> str:
    """The shop's own language, read off its name and its first product names."""
    if catalog is None:
        return DEFAULT
    names = [catalog.store_name or ""] + [p.name for p in islice(catalog, CATALOG_SAMPLE)]
    text = " ".join(names)
    return "ru" if len(_CYRILLIC.findall(text)) > len(_LATIN.findall(text)) else DEFAULT
