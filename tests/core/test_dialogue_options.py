"""Options in a conversation: "the second colour", "what about 4.5mm?", "make it 6 balls", and a
policy that happens to share an option's word."""

from __future__ import annotations

from chatpay.core.catalog import Catalog, PolicyDoc, Product, Variant
from chatpay.core.money import Money
from tests.core.shop import garden_shop, product, variant
from tests.core.test_service import runtime_with, say


def _twine(vid: str, colour: str, pack: str, price: str, available: bool = True) -> Variant:
    return Variant(vid, f"{colour} / {pack}", Money.parse(price, "EUR"), available=available,
                   options=(("Colour", colour), ("Pack", pack)))


def _twine_shop() -> Catalog:
    """Garden twine in colours and packs, canes in sizes, and a policy whose keyword is "colour"."""
    twine = product("twine", "Jute Garden Twine", "Soft jute twine for tying in climbers.", [
        _twine("t-nat-1", "Natural", "Single roll", "3.50"), _twine("t-nat-5", "Natural", "Pack of 5", "15.00"),
        _twine("t-grn-1", "Green", "Single roll", "3.50"), _twine("t-grn-5", "Green", "Pack of 5", "15.00",
                                                                   available=False),
        _twine("t-red-1", "Red", "Single roll", "3.50"), _twine("t-red-5", "Red", "Pack of 5", "15.00"),
    ], "Twine")
    canes = product("canes", "Bamboo Plant Canes", "Strong canes for beans and tomatoes.",
                    [variant("c4", "4mm", "2.00"), variant("c45", "4.5mm", "2.20", available=False),
                     variant("c5", "5mm", "2.40")], "Supports")
    clips = product("clips", "Plant Clips", "Clips that hold stems to canes.",
                    [variant("cl-s", "Small (2-4.5mm)", "1.50"), variant("cl-l", "Large (6-10mm)", "1.80")], "Supports")
    shop: list[Product] = [*garden_shop(), twine, canes, clips]
    return Catalog.of("garden", "EUR", shop, store_name="Green Thumb", policies=(
        PolicyDoc("shipping", "Shipping", "We ship within the EU in 2-4 days; free over €50.", ("shipping", "delivery")),
        PolicyDoc("dyes", "Dyes and colour", "Our twine is dyed with plant dyes; colour may fade in sun.",
                  ("colour", "dye", "fade"))))


async def _shop():  # type: ignore[no-untyped-def]
    rt = await runtime_with()
    await rt.import_catalog(_twine_shop())
    return rt


async def test_the_second_colour_is_the_second_colour_listed_not_the_second_pairing() -> None:
    """After the options were listed (Natural / Single roll, Natural / Pack of 5, Green / ...), "add 5
    rolls in the second colour" is 5 green single rolls; "a pack of 5 in the third colour" one red pack.
    "what colours does it come in?" asks the product, though the dye policy's keyword is "colour"."""
    rt = await _shop()
    await say(rt, "tell me about the jute garden twine")
    r = await say(rt, "what colours does it come in?")
    assert "Jute Garden Twine" in r.reply.text and "plant dyes" not in r.reply.text, r.reply.text
    r = await say(rt, "add 5 rolls in the second colour")
    assert [(ln.variant_id, ln.quantity) for ln in r.cart.lines] == [("t-grn-1", 5)], r.reply.text
    r = await say(rt, "add a pack of 5 in the third colour")
    assert [(ln.variant_id, ln.quantity) for ln in r.cart.lines] == [("t-grn-1", 5), ("t-red-5", 1)], r.reply.text


async def test_make_it_n_keeps_the_held_option_that_its_words_also_name() -> None:
    """"make it 6 rolls" with Green / Single roll held sets that line: "rolls" fits it as well as the
    first single roll listed, so no Natural line appears."""
    rt = await _shop()
    await say(rt, "add 5 single rolls of the jute twine in green")
    r = await say(rt, "make it 6 rolls of the twine")
    assert [(ln.variant_id, ln.quantity) for ln in r.cart.lines] == [("t-grn-1", 6)], r.reply.text


async def test_what_about_another_option_answers_for_the_product_in_focus() -> None:
    """"what about 4.5mm?" after adding 4mm canes is about the canes' 4.5mm: out of stock, so nothing
    is offered to add; "the 5mm then" adds 5mm canes, not the clips whose range ends in 4.5mm."""
    rt = await _shop()
    await say(rt, "add the 4mm bamboo canes")
    r = await say(rt, "what about 4.5mm?")
    assert "Bamboo Plant Canes" in r.reply.text and "out of stock" in r.reply.text, r.reply.text
    assert "add it to your cart" not in r.reply.text
    r = await say(rt, "ok the 5mm then")
    assert r.cart.quantities() == {"canes": 2} and {ln.variant_id for ln in r.cart.lines} == {"c4", "c5"}, r.reply.text


def test_a_unit_alone_names_no_option() -> None:
    """"5mm" shares only "mm" with "Small (2-4.5mm)": not that option."""
    from chatpay.core.options import match_variant
    from chatpay.core.text import tokens

    clips = _twine_shop().get("clips")
    assert clips is not None
    assert match_variant(clips, tokens("the 4.5mm ones"))[0] == "cl-s"
    assert match_variant(clips, tokens("ok the 5mm then"))[0] is None


async def test_removing_an_option_that_is_not_in_the_cart_names_it() -> None:
    """"remove the 5mm canes" with only 4mm canes held: the reply names the product and option, not
    an internal handle, and the 4mm canes stay."""
    rt = await _shop()
    await say(rt, "add the 4mm bamboo canes")
    r = await say(rt, "remove the 5mm bamboo canes")
    assert r.cart.quantities() == {"canes": 1}, r.reply.text
    assert "Bamboo Plant Canes (5mm)" in r.reply.text and "canes is not" not in r.reply.text, r.reply.text


async def test_an_options_question_answers_the_options_of_the_best_match() -> None:
    """"which colours does the sock wool come in?" in a yarn shop (a development shop's catalog, a
    question of our own) matches its sock yarn best among woolly things: the answer lists that
    yarn's colours rather than a list of product names."""
    from chatpay.config import load_settings
    from chatpay.evaluation.harness import EngineChoice, prepare_runtime, store_spec

    rt = await prepare_runtime(store_spec("loop"), load_settings().with_overrides(nlu="fitted"),
                               EngineChoice("offline"), backend="memory")
    r = await rt.service.handle(rt.turn("which colours does the sock wool come in?", thread_id="t1"))
    assert r.reply.text.startswith("**Fellside Sock 4ply**") and "Options:" in r.reply.text, r.reply.text


def test_an_ordinal_before_a_word_of_another_product_points_at_nothing_shown() -> None:
    """"and two for the second garden" is not the second product shown when "garden" is no word of
    it; "the second canes" still is."""
    from chatpay.core.cartparse import CartParser
    from chatpay.core.mentions import MentionIndex

    parser = CartParser(MentionIndex(_twine_shop()))
    shown = ["twine", "canes"]
    assert not [t for t in parser.parse("a pack for the second roll", "add", last_shown=shown).targets
                if t.via == "ordinal"]
    [t] = parser.parse("the second canes please", "add", last_shown=shown).targets
    assert t.handle == "canes"


async def test_an_options_question_prefers_the_product_just_talked_about() -> None:
    """"а какие у облака размеры?" after blankets were recommended: the «Облако» blanket's sizes, not
    those of the «Облако» pillow, which the search ranks first."""
    from chatpay.config import Settings

    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    await rt.import_catalog(Catalog.of("garden", "EUR", [
        *garden_shop(),
        product("blanket-cloud", "Одеяло всесезонное «Облако»", "Гипоаллергенное одеяло из микроволокна для аллергиков.",
                [variant("bc-s", "140х205", "59.00"), variant("bc-d", "172х205", "79.00")], "Одеяла"),
        product("blanket-north", "Одеяло пуховое «Северное»", "Тёплое пуховое одеяло.",
                [variant("bn-s", "140х205", "99.00"), variant("bn-d", "172х205", "139.00")], "Одеяла"),
        product("pillow-cloud", "Подушка «Облако» с микроволокном", "Подушка средней жёсткости.",
                [variant("pc-s", "50х70", "19.00"), variant("pc-l", "70х70", "24.00")], "Подушки"),
    ]))
    await say(rt, "посоветуйте одеяло для аллергика")
    r = await say(rt, "а какие у облака размеры?")
    assert "Одеяло всесезонное «Облако»" in r.reply.text and "172х205" in r.reply.text, r.reply.text


async def test_an_ordinal_inside_another_products_name_is_not_a_listed_option() -> None:
    """After the twine's options were listed, "and the first aid plant clips" names the clips (whose
    name here holds "first"), not the first of the twine's options."""
    rt = await _shop()
    await say(rt, "tell me about the jute garden twine")
    catalog = _twine_shop()
    clips = catalog.get("clips")
    assert clips is not None
    await rt.import_catalog(Catalog.of("garden", "EUR", [
        *(p for p in catalog if p.handle != "clips"),
        Product("clips", "First Aid Plant Clips", clips.description, clips.variants, clips.product_type),
    ], store_name="Green Thumb", policies=catalog.policies))
    r = await say(rt, "and the first aid plant clips")
    assert r.cart.quantities() == {"clips": 1}, r.reply.text


def test_a_size_word_picks_among_the_options_the_other_words_name() -> None:
    """"the neroli one in the large size" of Fig / Neroli in 250 and 500 ml is Neroli / 500ml, not
    the first neroli."""
    from chatpay.core.options import match_variant
    from chatpay.core.text import tokens

    lotion = product("lotion", "Body Lotion", "A light lotion.", [
        variant(f"{s[0]}-{ml}", f"{s} / {ml}ml", "16.00") for s in ("Fig", "Neroli") for ml in ("250", "500")])
    assert match_variant(lotion, tokens("the neroli one in the large size"))[0] == "N-500"
    assert match_variant(lotion, tokens("the small fig"))[0] == "F-250"


async def test_cables_told_apart_by_word_order_are_picked_by_it() -> None:
    """After "add a cable" offered cables that share their words, "the usb-c to usb-c one, 1m white"
    is that cable in that option, not the USB-A to USB-C one."""
    def cable(handle: str, name: str, price: str) -> Product:
        return product(handle, name, "A braided cable.", [
            variant(f"{handle}-{m}-{c[0]}", f"{m} / {c}", price) for m in ("1m", "2m") for c in ("White", "Black")])

    rt = await runtime_with()
    await rt.import_catalog(Catalog.of("garden", "EUR", [
        cable("a-c", "Braidline USB-A to USB-C Cable", "7.99"), cable("multi", "Braidline 3-in-1 Multi Charging Cable", "13.99"),
        cable("c-c", "Braidline USB-C to USB-C Cable", "6.99"), cable("a-l", "Braidline USB-A to Lightning Cable", "9.99"),
        product("c-a", "Hopper USB-C to USB-A Adapter (2-Pack)", "Small adapters.", [variant("ca", "Default Title", "8.99")]),
        product("c-h", "Hopper USB-C to HDMI Adapter", "Mirror your screen.", [variant("ch", "Default Title", "15.99")]),
    ]))
    r = await say(rt, "add a cable")
    assert r.cart.is_empty, r.reply.text
    r = await say(rt, "the usb-c to usb-c one, 1m white")
    assert [(ln.variant_id, ln.quantity) for ln in r.cart.lines] == [("c-c-1m-W", 1)], r.reply.text
