"""How many the shopper asks for: counts in words and digits, and counts that cannot be taken as said.

A number is a count only where it counts: not a measurement ("38 см"), an option value the
message picks ("the 5.0 one") or a number of the product's own name where it stands as in the
name. Negative, fractional, zero, absurd or scientific amounts are reported, never read as 1.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from chatpay.core.catalog import Product
from chatpay.core.options import UNIT_ALIASES
from chatpay.core.text import NUMBER_WORDS, ORDINALS, same_word, tokens

RELATIVE = frozenset("another more extra additional again ещё еще".split())

ONE_AS_ITEM = frozenset({"the", "that", "this", "which", "other", "same", "big", "small", "large", "cheap",
                         "cheaper", "expensive", "new", *ORDINALS})
# Words that count things without naming them ("three copies please", "две штуки"): a message of a
# number and these alone means that many of the product in focus; beside a named product, a clause of
# them names no second product.
COUNT_NOUNS = frozenset("""copy copies piece pieces pcs item items unit units pack packs bottle bottles pair pairs
    box boxes ball balls skein skeins bag bags set sets roll rolls tin tins jar jars packet packets sachet sachets of
    штука штуки штук шт упаковка упаковки упаковок пачка пачки пачек комплект комплекта комплектов""".split())
DESCRIBING = frozenset({"the", "those", "these"})  # not "that": "make that 2" counts


def parse_quantity(words: Sequence[str]) -> tuple[int | None, bool]:
    """A quantity in the words and whether it is relative ("2 more", "another")."""
    relative = any(w in RELATIVE for w in words)
    for i, w in enumerate(words):
        if i > 0 and words[i - 1] in DESCRIBING:
            continue  # "the 3 person one", "the 20000 one": a number that describes, not counts
        if (w.isdigit() and i + 1 < len(words) and UNIT_ALIASES.get(words[i + 1], "n") != "n"
                and len(words[i + 1]) > 1 and words[i + 1] != "in"):  # "3 in red" is three
            continue  # "руль у меня 38 см", "a 2 m wall": a measurement; counted units ("2 packs") still count
        if w.isdigit():
            return int(w), relative
        if w in ("x",) and i + 1 < len(words) and words[i + 1].isdigit():
            return int(words[i + 1]), relative
        m = re.fullmatch(r"x?(\d+)x?", w)
        if m and not re.fullmatch(r"\d+(kg|g|ml|l|oz|lb|cl|cm|mm|m)", w):
            return int(m.group(1)), relative
    for i, w in enumerate(words):
        if w in NUMBER_WORDS and w not in ("a", "an", "one", "un", "une", "uno", "una", "ein", "eine"):
            if w == "couple" and (i + 1 >= len(words) or words[i + 1] != "of"):
                continue
            return NUMBER_WORDS[w], relative
    for i, w in enumerate(words):
        # "remove one" is a quantity; "the second one", "that one" name an item.
        if w in ("one", "single") and (i == 0 or words[i - 1] not in ONE_AS_ITEM):
            return 1, relative
    if relative:
        return 1, True
    return None, False


_NEGATIVE_QTY = re.compile(r"(?<![\w.])-\s*\d")
_SCIENTIFIC = re.compile(r"\b\d+(?:[.,]\d+)?e[+-]?\d+\b", re.IGNORECASE)
_FRACTION = re.compile(r"(?<![\d.,])(\d+[.,]\d+|\d+/\d+)(?![\d.,]|\s*(?:kg|g|ml|l|oz|lb|cl|cm|mm|m|in|inch|ft|w|v|mah|ah)\b)",
                       re.IGNORECASE)
_THOUSANDS = re.compile(r"\b\d{1,3}(?:,\d{3})+\b")


def quantity_problem(segment: str, qty: int | None, max_quantity: int,
                     values: frozenset[str] = frozenset()) -> str | None:
    """Why a quantity in ``segment`` cannot be taken as said, or None when it can (or there is none).

    Numbers in ``values`` are option values the message picks ("the 5.0 one" of a 5.0Ah battery),
    not quantities, however they are written.
    """
    for value in values:
        # a word, not a gap: the hyphen of a range ("100-120 cm") then reads as no minus sign
        segment = re.sub(rf"(?<![\d.,]){re.escape(value)}(?![\d.,]*\d)", "v", segment)
    if _NEGATIVE_QTY.search(segment):
        return "negative"
    if _SCIENTIFIC.search(segment):
        return "too large"
    if _THOUSANDS.search(segment):
        return "too large"
    if _FRACTION.search(segment):
        return "fraction"
    if qty is not None and qty <= 0:
        return "zero"
    if qty is not None and qty > max_quantity:
        return "too large"
    return None


def count_in(words: Sequence[str], product: Product | None, *, values: frozenset[str] = frozenset(),
             skip: set[int] | frozenset[int] = frozenset()) -> tuple[int | None, bool]:
    """The quantity in ``words`` for ``product``, and whether it is relative.

    Words of the product's own name ("Six-Panel Cap", "Two-Pack"), option values the message
    picks (``values``: "the 20000 one") and positions in ``skip`` are not quantities.
    """
    name = tokens(product.name) if product is not None else []
    name_words = set(name)
    followers = {(a, b) for a, b in zip(name, name[1:], strict=False)}

    def names(i: int, w: str) -> bool:
        # A number of the name is the name's where it stands as in the name ("the 20000 power bank"),
        # but a count where another word follows it: "2 прихватки" of "Прихватки, 2 шт." is two packs.
        if w not in name_words:
            return False
        if not w.isdigit() or i + 1 >= len(words):
            return True
        return (w, words[i + 1]) in followers or words[i + 1] not in name_words and words[i + 1] not in COUNT_NOUNS \
            and not any(same_word(words[i + 1], t) for t in name_words)

    return parse_quantity([w for i, w in enumerate(words) if i not in skip and w not in values and not names(i, w)])
