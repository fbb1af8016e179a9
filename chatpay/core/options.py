"""Which option of a product a message names: "1kg", "in black", "the 10 inch", "the big one".

Option titles are read as words (with Russian endings and English plurals allowed) and as
measurements: a number with a unit in any common spelling ("10 inch" meets "10 in", "200 мл"
meets "200 ml", a "10 pack" meets "10 bulbs", "160 на 200" meets "160х200"). When no option is
named, a size word ("the big one", "средние") picks among options that are sizes. Used by the
cart parser, the cart agent and the enquiry agent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from chatpay.core.catalog import Product, Variant
from chatpay.core.mentions import NEVER_NAMES
from chatpay.core.text import tokens

_UNIT = re.compile(r"(\d+(?:[.,]\d+)?)\s*(kg|g|gr|grams?|ml|l|oz|lb|lbs|cl|cm|mm|m)\b", re.IGNORECASE)


# Two dimensions of one thing: "160х200" (Cyrillic х), "160 x 200", "160 на 200", "160 by 200".
_TWO_DIMENSIONS = re.compile(r"(?<![\d.,])(\d+)\s*(?:[xх×*]|на|by)\s*(\d+)(?![\d.,]*\d)", re.IGNORECASE)


def normalise_units(text: str) -> str:
    """Units glued to their numbers and lower-cased ("5 KG" is "5kg"), and dimensions written one
    way ("160 на 200" and a title's "160х200" are both "160x200")."""
    text = _TWO_DIMENSIONS.sub(r"\1x\2", text)
    return _UNIT.sub(lambda m: f"{m.group(1).replace(',', '.')}{m.group(2).lower().rstrip('s')}", text)


def variant_numbers(product: Product | None) -> frozenset[str]:
    """Numbers that are values of the product's options ("20000" mAh, "100" pack, "65" W)."""
    if product is None:
        return frozenset()
    out: set[str] = set()
    for v in product.variants:
        for t in tokens(v.title) + [t for _, value in v.options for t in tokens(value)]:
            digits = re.match(r"\d+(?:\.\d+)?", t)  # "5.0" of a "5.0Ah" battery, not "5"
            if digits:
                out.add(digits.group(0))
    return frozenset(out)


_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_NUMBER_UNIT = re.compile(r"^(\d+(?:\.\d+)?)(kg|g|gr|mg|ml|cl|l|oz|lb|lbs|m|cm|mm|in|ft|w|kw|v|mah|ah|gb|tb|pack|pcs)$")


def _split_units(words: Sequence[str]) -> list[str]:
    """Words with "16oz" also read as "16" and "oz", so "16 oz" meets a variant titled "16 fl oz".

    Only units split: "2XL" is a size, not two XLs.
    """
    out = list(words)
    for w in words:
        m = _NUMBER_UNIT.match(w)
        if m:
            out.extend(m.groups())
    return out


def _inflected(word: str, present: set[str]) -> str | None:
    """A word of ``present`` that is ``word`` with another ending ("бордовые" for "бордовый").

    Russian inflects adjectives and nouns; a shared stem of all but the last two letters (at least
    three: "серый" and "серую") is the same word. Latin-script words must match exactly.
    """
    if word.isascii() or len(word) < 5 or not word.isalpha():
        return None
    stem_ = word[: len(word) - 2]
    for w in present:
        if not w.isascii() and len(w) >= 5 and w[: len(w) - 2] == stem_:
            return w
    return None


# Units of measure as shoppers and merchants spell them, to one canonical name each, so "10 inch"
# meets an option "10 in", "1.8 metre" meets "1.8m" and "200 мл" meets "200 ml". General
# measurement words of the two languages the engine reads; nothing here names a product.
UNIT_ALIASES: dict[str, str] = {
    alias: unit for unit, aliases in {
        "in": "in inch inches \"", "ft": "ft foot feet '", "m": "m metre metres meter meters м метр метра метров",
        "cm": "cm centimetre centimetres centimeter centimeters см", "mm": "mm millimetre millimetres мм",
        "l": "l litre litres liter liters ltr л литр литра литров", "ml": "ml millilitre millilitres мл",
        "qt": "qt quart quarts", "gal": "gal gallon gallons", "oz": "oz ounce ounces",
        "lb": "lb lbs pound pounds", "g": "g gram grams gr г гр грамм", "kg": "kg kilo kilos kilogram kilograms кг",
        "w": "w watt watts вт", "v": "v volt volts", "mah": "mah",
        # Counted things are one unit: a "10 pack" of bulbs is the option "10 bulbs" or "10 pcs".
        "n": "pack packs pk pc pcs piece pieces шт step steps port ports bulb bulbs count ct",
        "gb": "gb", "tb": "tb",
    }.items() for alias in aliases.split()
}
_DIMENSIONS = re.compile(r"^(\d+(?:\.\d+)?)[xх×](\d+(?:\.\d+)?)$")  # "30x20", "160х200" (Cyrillic х)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_BY = frozenset({"x", "х", "×", "by", "на"})
_GLUED = re.compile(r"^(\d+(?:\.\d+)?)([^\d.]+)$")


def _number(text: str) -> str:
    """A number as one spelling: "1.50" and "1.5" are one, "10" stays "10"."""
    return text.rstrip("0").rstrip(".") if "." in text else text


# Larger units in their smaller kind, so "1 л" meets an option "1000 мл" and "0.5 kg" one of "500 g".
_IN_SMALLER = {"l": ("ml", 1000), "kg": ("g", 1000), "tb": ("gb", 1000), "m": ("cm", 100), "mm": ("cm", 0.1)}
# Units that mean one of themselves said alone: "a teapot for a litre", "чайник на литр".
_ONE_OF = frozenset({"litre", "liter", "литр", "kilo", "kilogram", "килограмм", "кило"})


def _measure(number: str, unit: str) -> tuple[str, str]:
    """(number, unit) in the smaller unit of its kind, the number spelt one way."""
    if unit in _IN_SMALLER:
        smaller, factor = _IN_SMALLER[unit]
        return _number(f"{float(number) * factor:.4f}"), smaller
    return _number(number), unit


def unit_pairs(words: Sequence[str]) -> set[tuple[str, str]]:
    """Measurements in ``words``: (number, unit) for "10 inch", "1.8 m", "50ml", "10-pack", a larger
    unit in the smaller of its kind (1 l is 1000 ml); a litre or a kilo said alone is one."""
    out: set[tuple[str, str]] = set()
    for i, w in enumerate(words):
        glued = _GLUED.match(w)
        if glued and glued.group(2) in UNIT_ALIASES:
            out.add(_measure(glued.group(1), UNIT_ALIASES[glued.group(2)]))
        elif re.fullmatch(r"\d+(?:\.\d+)?", w) and i + 1 < len(words) and words[i + 1] in UNIT_ALIASES:
            out.add(_measure(w, UNIT_ALIASES[words[i + 1]]))
        elif w in _ONE_OF and not (i and _NUMBER.fullmatch(words[i - 1])):
            out.add(_measure("1", UNIT_ALIASES.get(w, "kg")))
        elif dims := _DIMENSIONS.match(w):  # "160х200 см": two sides; their unit never tells options apart
            out.add((f"{_number(dims.group(1))}x{_number(dims.group(2))}", "dim"))
        elif (_NUMBER.fullmatch(w) and i + 2 < len(words) and words[i + 1] in _BY
              and _NUMBER.fullmatch(words[i + 2])):  # "160 на 200", "30 by 20"
            out.add((f"{_number(w)}x{_number(words[i + 2])}", "dim"))
    return out


def _plural_of(word: str, present: set[str]) -> bool:
    """An English plural of ``word`` is in ``present`` ("paperbacks" for an option "Paperback")."""
    return word.isascii() and word.isalpha() and (word + "s" in present or word + "es" in present)


def _kept_values(product: Product, variant_id: str) -> set[tuple[str, str]]:
    for v in product.variants:
        if v.id == variant_id:
            return set(v.options)
    return set()


def option_names(product: Product) -> set[str]:
    """The words of the product's option names ("waist", "length", "colour")."""
    return {w for v in product.variants for name, _ in v.options for w in tokens(name)}


def _named_values(product: Product, words: Sequence[str]) -> set[tuple[str, str]]:
    """(option name, word) for each word beside an option's name: "32 waist 34 length" and "waist 32"
    say which option each number is."""
    titles = {name for v in product.variants for name, _ in v.options}
    names = {words_[0]: name for name in titles if len(words_ := tokens(name)) == 1}
    if not set(words) & set(names):
        return set()  # the common case: no option's name said
    values: dict[str, set[str]] = {}
    for v in product.variants:
        for name, value in v.options:
            values.setdefault(name, set()).update(tokens(value))
    at = [i for i, w in enumerate(words) if w in names]
    sides: dict[int, list[int]] = {}
    for i in at:
        sides[i] = [s for s in (-1, 1) if 0 <= i + s < len(words) and words[i + s] in values[names[words[i]]]]
    # One order for the whole message, read where only one side holds a value ("... 34 length" at
    # the end is value-first, so "32 waist 34 length" is 32 waist, 34 length)
    sure = [s[0] for s in sides.values() if len(s) == 1]
    side = sure[0] if sure else -1
    return {(names[words[i]], words[i + (s[0] if len(s) == 1 else side)]) for i, s in sides.items() if s}


def match_variant(product: Product, words: Sequence[str], *,
                  prefer: str | None = None) -> tuple[str | None, tuple[str, ...]]:
    """The product's variant named by ``words`` ("1kg", "black", "ground", "бордовые", "10 inch"), if any.

    A measurement counts twice as much as a word, so "the 10 inch" picks the 10 in option over
    one that only shares a word. Among variants the words name equally, the one that keeps most
    option values of the variant ``prefer`` wins: "switch it to XXL" from L / Navy is XXL / Navy,
    and "black is fine" after L / Orange was sold out is L / Black.
    """
    present = set(_split_units(words))
    measured = unit_pairs(words)
    separated = {w for i, w in enumerate(words) if i + 1 < len(words) and words[i + 1] in UNIT_ALIASES}
    # A bare number meets the number inside a title's "5kg" only when it picks ("the 5 one"),
    # never when it counts ("add 2 of the cable" with a "2m" option).
    picks = {w for i, w in enumerate(words)
             if _NUMBER.match(w) and i + 1 < len(words) and words[i + 1] in ("one", "ones")}
    best: tuple[int, str | None, tuple[str, ...]] = (0, None, ())
    scored: list[tuple[int, Variant, tuple[str, ...]]] = []
    named = _named_values(product, words)
    titled = [set(tokens(normalise_units(v.title))) for v in product.variants if not v.is_default]
    # A word every option shares ("step" in "0.9m (3 step)", "1.5m (5 step)") tells none apart.
    shared = set.intersection(*titled) if len(titled) > 1 else set()
    for v in product.variants:
        if v.is_default:
            continue
        # The shopper's "16oz" meets a title's "16 fl oz"; a title's "2m" is met by "the 2 one" only.
        own = [t for t in tokens(normalise_units(v.title)) if t not in NEVER_NAMES and t not in shared]
        vt = own + [t for t in _split_units(own) if t not in own and t in picks]
        hit = tuple(t for t in vt if t in present or _inflected(t, present) or _plural_of(t, present))
        units = {t for i, t in enumerate(own) if t in UNIT_ALIASES and i and _NUMBER.fullmatch(own[i - 1])}
        if hit and all(t in units for t in hit):
            hit = ()  # "the 5mm" shares only the unit of "Small (2-4.5mm)": no option of it ("size M" is one)
        pairs = measured & unit_pairs(tokens(v.title)) if measured else set()
        # A number written apart from its unit ("10 inch") is the option's, not a quantity; one
        # glued to it ("2m") is never read as a quantity anyway, and "add 2 ... 2m" keeps its 2.
        written = {_measure(n, UNIT_ALIASES[words[i + 1]]): n for i, n in enumerate(words) if n in separated
                   and _NUMBER.fullmatch(n)} if pairs else {}
        hit = hit + tuple(n for pair in pairs if (n := written.get(pair)) is not None and n not in hit)
        score = len(hit) + len(pairs)
        if score and named:  # "32 waist 34 length": the value said beside its option's name counts again
            score += sum(1 for name, value in v.options if (name, value.casefold()) in named)
        if score > best[0] or (score == best[0] and hit and len(vt) == len(hit)):
            best = (score, v.id, hit)
        if score:
            scored.append((score, v, hit))
    if best[0] and size_word(words) is not None:
        # "the neroli one in the large size": among the neroli options, the largest
        equal = {v.id: (v, hit) for n, v, hit in scored if n == best[0]}
        if len(equal) > 1:
            sized, _ = _by_size(replace(product, variants=tuple(v for v, _ in equal.values())), words)
            if sized is not None:
                return sized, equal[sized][1]
    if best[0] and prefer is not None:
        kept = _kept_values(product, prefer)
        tied = [(len(kept & set(v.options)), v.available, v.id, hit) for n, v, hit in scored if n == best[0]]
        if kept and len(tied) > 1:
            overlap, _, vid, words = max(tied, key=lambda t: (t[0], t[1]))
            if overlap:
                return vid, words
    if best[0]:
        return best[1], best[2]
    return _by_size(product, words)


# Size words pick among options that are measurements of one kind ("the big one" of 200 and 400 ml
# candles is the 400 ml). English words, and Russian stems (their endings vary).
_SIZE_WORDS = {"large": 1, "big": 1, "bigger": 1, "biggest": 1, "largest": 1, "larger": 1, "huge": 1,
               "small": -1, "smaller": -1, "smallest": -1, "little": -1, "tiny": -1, "mini": -1,
               "medium": 0, "middle": 0, "mid": 0}
_SIZE_STEMS = {"больш": 1, "крупн": 1, "маленьк": -1, "мален": -1, "небольш": -1, "средн": 0}


def size_word(words: Sequence[str]) -> int | None:
    for w in words:
        if w in _SIZE_WORDS:
            return _SIZE_WORDS[w]
        for stem_, value in _SIZE_STEMS.items():
            if w.startswith(stem_) and not (stem_ == "больш" and w.startswith("небольш")):
                return value
    return None


def _by_size(product: Product, words: Sequence[str]) -> tuple[str | None, tuple[str, ...]]:
    """The smallest, middle or largest option when the shopper says so and the options are sizes."""
    wanted = size_word(words)
    if wanted is None:
        return None, ()
    sized: list[tuple[float, str]] = []
    units: set[str] = set()
    for v in product.variants:
        pairs = sorted(unit_pairs(tokens(normalise_units(v.title))))
        if v.is_default or not pairs:
            return None, ()
        number, unit = pairs[0]
        units.add(unit)
        size = 1.0
        for part in number.split("x"):  # a "30x20 cm" board is sized by its area
            size *= float(part)
        sized.append((size, v.id))
    if len(units) != 1 or len(sized) < 2:
        return None, ()
    sized.sort()
    pick = sized[-1] if wanted > 0 else sized[0] if wanted < 0 else sized[len(sized) // 2]
    return pick[1], ()
