"""Cart commands are read deterministically: quantities, variants, references."""

from __future__ import annotations

import pytest

from chatpay.core.cartparse import CartParser
from chatpay.core.mentions import MentionIndex
from tests.core.shop import garden_shop

PARSER = CartParser(MentionIndex(garden_shop()))


def targets(text: str, mode: str = "add", **kw: object) -> list[tuple]:
    cmd = PARSER.parse(text, mode, **kw)  # type: ignore[arg-type]
    return [(t.handle, t.quantity, t.mode, t.variant_id) for t in cmd.targets]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("add 2 watering cans", [("watering-can", 2, "add", None)]),
        ("add two of the tomato seeds", [("tomato-seeds", 2, "add", None)]),
        ("I'll take 3x basil seeds", [("basil-seeds", 3, "add", None)]),
        ("add the rose fertiliser 5kg", [("rose-fertiliser", None, "add", "rf-5")]),
        ("add the rose fertiliser 5 kg", [("rose-fertiliser", None, "add", "rf-5")]),
        ("add the red pruning shears", [("pruning-shears", None, "add", "ps-r")]),
        ("add 2 tomatoe seeds and a watering can",
         [("tomato-seeds", 2, "add", None), ("watering-can", None, "add", None)]),
        ("a dozen basil seeds", [("basil-seeds", 12, "add", None)]),
    ],
)
def test_quantities_variants_and_typos(text: str, expected: list[tuple]) -> None:
    assert targets(text) == expected


def test_references_use_the_products_just_shown() -> None:
    shown = ["tomato-seeds", "basil-seeds"]
    assert targets("the second one", last_shown=shown) == [("basil-seeds", None, "add", None)]
    assert targets("add the last one please", last_shown=shown) == [("basil-seeds", None, "add", None)]
    assert targets("add it", last_shown=["watering-can"]) == [("watering-can", None, "add", None)]


def test_relative_and_set_quantities_refer_to_the_last_product() -> None:
    assert targets("one more", last_product="watering-can") == [("watering-can", 1, "add", None)]
    assert targets("make it two", last_product="watering-can") == [("watering-can", 2, "set", None)]
    assert targets("another 3 please", last_product="basil-seeds") == [("basil-seeds", 3, "add", None)]


def test_remove_one_from_the_only_line() -> None:
    assert targets("remove one", "remove", cart_handles=["basil-seeds"]) == [("basil-seeds", 1, "remove", None)]
    assert targets("remove the watering can", "remove", cart_handles=["watering-can", "basil-seeds"]) == [
        ("watering-can", None, "remove", None)
    ]


def test_a_price_in_the_message_is_never_a_quantity_and_is_flagged() -> None:
    cmd = PARSER.parse("add the watering can and set its price to 1 euro", "add")
    assert [(t.handle, t.quantity) for t in cmd.targets] == [("watering-can", None)]
    assert cmd.price_talk
    cmd = PARSER.parse("add 2 basil seeds for €1", "add")
    assert [(t.handle, t.quantity) for t in cmd.targets] == [("basil-seeds", 2)]


def test_unknown_phrases_are_reported_not_guessed() -> None:
    cmd = PARSER.parse("add a lawnmower", "add")
    assert cmd.targets == ()
    assert cmd.unresolved == ("add a lawnmower",)


def test_a_measurement_meets_its_option_however_the_unit_is_spelled() -> None:
    from chatpay.core.catalog import Product, Variant
    from chatpay.core.money import Money
    from chatpay.core.options import match_variant, unit_pairs
    from chatpay.core.text import tokens

    assert unit_pairs(tokens("switch it to the 10 inch")) == {("10", "in")}
    assert unit_pairs(tokens("1.80 metre")) == unit_pairs(tokens("1.8m")) == {("180", "cm")}  # in the smaller unit
    assert unit_pairs(tokens("200 мл")) == unit_pairs(tokens("200ml")) == {("200", "ml")}
    skillet = Product("skillet", "Cast Iron Skillet", "", tuple(
        Variant(vid, title, Money(price, "USD")) for vid, title, price in
        (("s8", "8 in", 2900), ("s10", "10 in", 3900), ("s12", "12 in", 4900))))
    assert match_variant(skillet, tokens("switch it to the 10 inch"))[0] == "s10"
    books = Product("novel", "A Novel", "", (Variant("pb", "Paperback", Money(999, "GBP")),
                                             Variant("hb", "Hardback", Money(1699, "GBP"))))
    assert match_variant(books, tokens("add 2 paperbacks"))[0] == "pb"


def test_a_number_after_the_describes_rather_than_counts() -> None:
    from chatpay.core.cartparse import parse_quantity
    from chatpay.core.text import tokens

    assert parse_quantity(tokens("add the 3 person one"))[0] != 3  # "the 3 person tent", not three tents
    assert parse_quantity(tokens("make that 2"))[0] == 2
    assert parse_quantity(tokens("add 2 of the 3 person tents"))[0] == 2


def test_a_word_every_option_shares_picks_none_so_a_later_clause_can() -> None:
    from chatpay.core.catalog import Product, Variant
    from chatpay.core.money import Money
    from chatpay.core.options import match_variant
    from chatpay.core.text import tokens

    ladder = Product("ladder", "Aluminium Step Ladder", "", tuple(
        Variant(vid, title, Money(price, "AUD")) for vid, title, price in
        (("l3", "0.9m (3 step)", 8900), ("l5", "1.5m (5 step)", 13900), ("l6", "1.8m (6 step)", 15900))))
    assert match_variant(ladder, tokens("add the step ladder"))[0] is None  # "step" is in every option
    assert match_variant(ladder, tokens("1.5m"))[0] == "l5"
    bulbs = Product("tulips", "Tulip Bulbs", "", tuple(
        Variant(vid, title, Money(price, "EUR")) for vid, title, price in (("b10", "10 bulbs", 690), ("b25", "25 bulbs", 1490))))
    assert match_variant(bulbs, tokens("switch it to the 10 pack"))[0] == "b10"  # counted things are one unit


def test_big_small_and_medium_pick_among_options_that_are_sizes() -> None:
    from chatpay.core.catalog import Product, Variant
    from chatpay.core.money import Money
    from chatpay.core.options import match_variant
    from chatpay.core.text import tokens

    boards = Product("board", "Bamboo Board", "", tuple(
        Variant(vid, title, Money(price, "RUB")) for vid, title, price in
        (("s", "30х20 см", 59000), ("m", "35х25 см", 79000), ("l", "40х30 см", 99000))))
    assert match_variant(boards, tokens("три доски средние"))[0] == "m"
    assert match_variant(boards, tokens("the big one"))[0] == "l"
    assert match_variant(boards, tokens("the smallest board"))[0] == "s"
    assert match_variant(boards, tokens("35 на 25"))[0] == "m"
    colours = Product("mug", "Mug", "", (Variant("r", "Red", Money(900, "EUR")), Variant("b", "Blue", Money(900, "EUR"))))
    assert match_variant(colours, tokens("the big one"))[0] is None  # not sizes: nothing to pick by


def test_a_brand_written_in_cyrillic_names_its_latin_product() -> None:
    """Russian shoppers write Latin brands by ear: "карку" is Carku, "сяоми" is Xiaomi."""
    from chatpay.core.catalog import Catalog
    from tests.core.shop import product, variant

    catalog = Catalog.of("cars", "EUR", [
        product("carku", "Carku Pro-30 пусковое устройство", "Пусковое устройство.", [variant("c", "Default Title", "89.00")]),
        product("pump", "Xiaomi Mijia компрессор", "Компрессор.", [variant("p", "Default Title", "49.00")]),
    ])
    parser = CartParser(MentionIndex(catalog))
    assert [t.handle for t in parser.parse("карку добавь", "add").targets] == ["carku"]
    assert [t.handle for t in parser.parse("и компрессор сяоми", "add").targets] == ["pump"]


def test_a_set_cue_is_whole_words_never_a_substring() -> None:
    """"add 2 basil seeds" then "add 2 sunset seeds": "sunset" holds "set", never "set to"."""
    from chatpay.core.catalog import Catalog
    from tests.core.shop import product, variant

    catalog = Catalog.of("bags", "EUR", [
        product("tote", "Sunset Tote Bag", "A canvas tote.", [variant("t", "Default Title", "15.00")]),
    ])
    parser = CartParser(MentionIndex(catalog))
    [added] = parser.parse("add 2 sunset tote bags", "add").targets
    assert (added.handle, added.quantity, added.mode) == ("tote", 2, "add")
    [made] = parser.parse("сделай 3 сумки sunset tote", "add").targets
    assert (made.handle, made.quantity, made.mode) == ("tote", 3, "set")


def _tools_and_skincare() -> CartParser:
    from chatpay.core.catalog import Catalog
    from tests.core.shop import product, variant

    return CartParser(MentionIndex(Catalog.of("mixed", "EUR", [
        product("oat", "Calm Oat Gel Cleanser", "A gentle gel.", [variant("o", "Default Title", "14.50")]),
        product("acid", "Clarifying Salicylic Foam Cleanser", "A foaming wash.", [variant("a", "Default Title", "16.00")]),
        product("battery", "Torque 18V Li-ion Battery", "Fits every tool.", [
            variant("b2", "2.0Ah", "69.00"), variant("b5", "5.0Ah", "139.00")]),
        product("gloves", "Nitrile Work Gloves", "Coated gloves.", [variant("g", "Default Title", "9.95")]),
        product("horse", "Folding Steel Sawhorse (Pair)", "Two trestles.", [variant("h", "Default Title", "79.00")]),
        product("yarn", "Merino DK Yarn", "Soft wool.", [variant("y", "Default Title", "6.50")]),
        product("winder", "Yarn Ball Winder", "Winds cakes.", [variant("w", "Default Title", "24.00")]),
        product("markers", "Ring Stitch Markers (pack of 10)", "Brass rings.", [variant("m", "Default Title", "3.00")]),
    ])))


def test_the_product_that_matches_more_of_the_message_wins_a_tie() -> None:
    """Two cleansers share "cleanser"; "the oat cleanser" names one of them, not both."""
    parser = _tools_and_skincare()
    for text, handle in (("add the oat cleanser too", "oat"), ("add the salicylic cleanser", "acid")):
        [t] = parser.parse(text, "add").targets
        assert (t.handle, t.candidates) == (handle, ())
    [both] = parser.parse("add a cleanser", "add").targets  # the word both share stays ambiguous
    assert {both.handle, *both.candidates} == {"oat", "acid"}


def test_a_unit_beside_a_number_is_not_a_product() -> None:
    """"2 pairs of nitrile gloves" is gloves, not the sawhorse sold as a pair; "10 balls" after the
    yarn was shown is ten of the yarn, not the ball winder or the pack of 10 markers."""
    parser = _tools_and_skincare()
    [gloves] = parser.parse("add 2 pairs of nitrile gloves", "add").targets
    assert (gloves.handle, gloves.quantity, gloves.candidates) == ("gloves", 2, ())
    [yarn] = parser.parse("great, add 10 balls please", "add", last_product="yarn").targets
    assert (yarn.handle, yarn.quantity) == ("yarn", 10)


def test_a_decimal_option_value_is_the_option_not_a_fractional_quantity() -> None:
    parser = _tools_and_skincare()
    [one] = parser.parse("add the 5.0 one", "add", last_product="battery").targets
    assert (one.variant_id, one.quantity, one.problem) == ("b5", None, None)
    [named] = parser.parse("and a 2.0 battery", "add").targets
    assert (named.handle, named.variant_id, named.problem) == ("battery", "b2", None)
    [counted] = parser.parse("add 2.5 of the yarn", "add").targets
    assert counted.problem == "fraction"  # a fraction that is no option is still asked about


def test_word_order_and_one_letter_words_tell_apart_names_that_share_every_word() -> None:
    """"usb c to usb c" and "usb a to usb c" differ by a letter and by order; "as well" is no "Wall"."""
    from chatpay.core.catalog import Catalog
    from tests.core.shop import product, variant

    parser = CartParser(MentionIndex(Catalog.of("cables", "EUR", [
        product("a-c", "Braid USB-A to USB-C Cable", "A cable.", [variant("ac", "Default Title", "7.99")]),
        product("c-c", "Braid USB-C to USB-C Cable", "A cable.", [variant("cc", "Default Title", "6.99")]),
        product("wall", "GaN USB-C Wall Charger", "A charger.", [variant("w", "Default Title", "29.99")]),
        product("car", "Dual USB Car Charger", "A charger.", [variant("k", "Default Title", "11.99")]),
    ])))
    for text, handle in (("add three usb a to usb c cables", "a-c"), ("add 2 usb-c to usb-c cables", "c-c")):
        [t] = parser.parse(text, "add").targets
        assert (t.handle, t.candidates) == (handle, ())
    [charger] = parser.parse("make it 2 car chargers as well", "add").targets
    assert (charger.handle, charger.quantity, charger.candidates) == ("car", 2, ())


def test_both_gives_the_option_to_every_product_named_and_a_repeated_option_adds_nothing() -> None:
    from chatpay.core.catalog import Catalog
    from tests.core.shop import product, variant

    def book(handle: str, name: str) -> object:
        return product(handle, name, "A novel.", [variant(f"{handle}-h", "Hardback", "14.99"),
                                                  variant(f"{handle}-p", "Paperback", "6.99")])

    parser = CartParser(MentionIndex(Catalog.of("books", "EUR", [
        book("eyre", "Jane Eyre"), book("heights", "Wuthering Heights"),
        product("pad", "Softcover Notebooks (Pack of 3)", "Notebooks.", [
            variant("pl", "Lined", "12.00"), variant("pd", "Dotted", "12.00")]),
        product("hard", "Hardcover Notebook", "A notebook.", [variant("hl", "Lined", "14.50"), variant("hd", "Dotted", "14.50")]),
    ])))
    both = parser.parse("add jane eyre and wuthering heights, both paperback", "add").targets
    assert [(t.handle, t.quantity, t.variant_id) for t in both] == [("eyre", None, "eyre-p"), ("heights", None, "heights-p")]
    packs = parser.parse("add three softcover packs, dotted", "add", last_product="hard", cart_handles=["hard"]).targets
    assert [(t.handle, t.quantity, t.variant_id) for t in packs] == [("pad", 3, "pd")]  # not a dotted hardcover too


def _needles_and_shirts() -> CartParser:
    from chatpay.core.catalog import Catalog, Variant
    from chatpay.core.money import Money
    from tests.core.shop import product, variant

    def shirt(vid: str, size: str, colour: str) -> Variant:
        return Variant(vid, f"{size} / {colour}", Money.parse("39.95", "EUR"), options=(("Size", size), ("Colour", colour)))

    return CartParser(MentionIndex(Catalog.of("mixed", "EUR", [
        product("zing", "Zing Straight Needles", "Needles.", [variant("n4", "4mm", "6.40"), variant("n45", "4.5mm", "6.60")]),
        product("shirt", "Hi-Vis Work Shirt", "A shirt.", [shirt("xs-n", "XS", "Navy"), shirt("m-y", "M", "Yellow"),
                                                          shirt("m-n", "M", "Navy")]),
        product("wrap", "Steering Wheel Cover", "Fits 37-39 cm wheels.", [variant("w", "Default Title", "890.00")]),
    ])))


def test_two_options_of_one_kind_are_two_lines_and_options_of_two_kinds_are_one() -> None:
    parser = _needles_and_shirts()
    two = parser.parse("add the 4mm and the 4.5mm", "add", last_product="zing").targets
    assert [(t.handle, t.variant_id) for t in two] == [("zing", "n4"), ("zing", "n45")]
    [one] = parser.parse("add the work shirt in navy, size M", "add").targets
    assert (one.handle, one.variant_id) == ("shirt", "m-n")


def test_a_number_before_a_unit_of_measure_is_no_count() -> None:
    """"руль у меня 38 см" says how big the wheel is; "add 3 in red" is still three."""
    parser = _needles_and_shirts()
    [wrap] = parser.parse("add the steering wheel cover, my wheel is 38 cm", "add").targets
    assert (wrap.handle, wrap.quantity, wrap.problem) == ("wrap", None, None)
    [three] = parser.parse("add 3 work shirts in yellow", "add").targets
    assert (three.quantity, three.variant_id) == (3, "m-y")


def test_what_follows_for_is_what_it_fits_and_a_clause_of_options_is_the_named_products() -> None:
    from chatpay.core.catalog import Catalog
    from tests.core.shop import product, variant

    parser = CartParser(MentionIndex(Catalog.of("mixed", "EUR", [
        product("case15", "Clear Case for iPhone 15", "A case.", [variant("c", "Default Title", "17.99")]),
        product("glass", "Tempered Glass Screen Protector", "Glass.", [variant("g15", "iPhone 15", "9.99"),
                                                                        variant("g16", "iPhone 16", "9.99")]),
        product("feeder", "Hanging Seed Feeder", "A feeder.", [variant("f3", "3 ports", "14.90"),
                                                             variant("f6", "6 ports", "19.90")]),
        product("pots", "Nursery Pots 10-Pack", "Pots.", [variant("p", "Default Title", "3.90")]),
    ])))
    [glass] = parser.parse("add a screen protector for iphone 15 too", "add", cart_handles=["case15"]).targets
    assert (glass.handle, glass.variant_id) == ("glass", "g15")
    [feeder] = parser.parse("and the hanging feeder, 6 ports", "add").targets  # not 6 "pots"
    assert (feeder.handle, feeder.quantity, feeder.variant_id) == ("feeder", None, "f6")


def test_measurements_meet_across_units_and_a_litre_said_alone_is_one() -> None:
    from chatpay.core.options import unit_pairs
    from chatpay.core.text import tokens

    assert unit_pairs(tokens("1 л")) == unit_pairs(tokens("1000 мл")) == unit_pairs(tokens("на литр"))
    assert unit_pairs(tokens("0.5 kg")) == unit_pairs(tokens("500 g"))
    assert unit_pairs(tokens("2m")) == unit_pairs(tokens("200 cm"))
    assert unit_pairs(tokens("2 литра")) != unit_pairs(tokens("литр"))  # a number before it counts litres


def test_a_range_option_is_no_minus_sign() -> None:
    """"the olive tree 100-120 cm" picks the 100-120 cm tree; it used to ask how many (a "-120")."""
    from chatpay.core.catalog import Catalog
    from chatpay.core.mentions import MentionIndex
    from tests.core.shop import product, variant

    tree = product("olive", "Olive Tree (Olea europaea)", "A potted olive.",
                   [variant("small", "60-80 cm", "39.90"), variant("tall", "100-120 cm", "79.90")])
    parser = CartParser(MentionIndex(Catalog.of("garden", "EUR", [tree])))
    [t] = parser.parse("add the olive tree 100-120 cm", "add").targets
    assert (t.handle, t.variant_id, t.quantity, t.problem) == ("olive", "tall", None, None)
    [t] = parser.parse("add -2 olive trees", "add").targets
    assert t.problem == "negative"
