"""A Russian shopper's cart commands: options by word and by number, counts in clauses, removal verbs.

The shop is a small home-goods catalog written for these tests (Cyrillic names and options).
"""

from __future__ import annotations

from chatpay.config import Settings
from chatpay.core.catalog import Catalog, Variant
from chatpay.core.money import Money
from tests.core.shop import product
from tests.core.test_service import runtime_with, say


def _v(vid: str, title: str, price: str, available: bool = True, **options: str) -> Variant:
    return Variant(vid, title, Money.parse(price, "RUB"), available=available,
                   options=tuple(options.items()) or ((("Размер", title),)))


def home_shop() -> Catalog:
    return Catalog.of("garden", "RUB", [
        product("pan", "Сковорода с антипригарным покрытием «Гранит»", "Сковорода для плиты.", [
            _v("p24", "24 см", "1990.00"), _v("p26", "26 см", "2290.00"), _v("p28", "28 см", "2590.00", available=False)]),
        product("mitts", "Прихватки силиконовые, 2 шт.", "Пара прихваток.", [_v("m", "Default Title", "490.00")]),
        product("sheet", "Простыня на резинке трикотажная", "Натяжная простыня.", [
            Variant("s90w", "90х200 / Белый", Money.parse("990.00", "RUB"), options=(("Размер", "90х200"), ("Цвет", "Белый"))),
            Variant("s160w", "160х200 / Белый", Money.parse("1390.00", "RUB"), options=(("Размер", "160х200"), ("Цвет", "Белый"))),
            Variant("s160g", "160х200 / Серый", Money.parse("1390.00", "RUB"), options=(("Размер", "160х200"), ("Цвет", "Серый"))),
        ]),
        product("board", "Доска разделочная бамбуковая", "Доска из бамбука.", [
            _v("b1", "30х20 см", "590.00"), _v("b2", "35х25 см", "790.00"), _v("b3", "40х30 см", "990.00")]),
        product("cases", "Наволочки сатиновые 50х70, 2 шт.", "Пара наволочек.", [
            _v("cw", "Белый", "790.00", **{"Цвет": "Белый"}), _v("cg", "Серый", "790.00", **{"Цвет": "Серый"})]),
        product("tree", "Ароматизатор подвесной «Ёлочка»", "Картонный ароматизатор.", [
            _v("t1", "Чёрный лёд", "150.00", **{"Аромат": "Чёрный лёд"})]),
        product("gel", "Ароматизатор гелевый Ken", "Гелевый ароматизатор.", [
            _v("g1", "Ваниль", "350.00", **{"Аромат": "Ваниль"})]),
    ])


async def shop(catalog: Catalog | None = None):  # type: ignore[no-untyped-def]
    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))  # the engine that reads Russian
    await rt.import_catalog(catalog or home_shop())
    return rt


async def test_after_a_sold_out_size_a_bare_number_picks_another_size() -> None:
    rt = await shop()
    r = await say(rt, "добавь сковородку гранит 28 см")
    assert r.cart.is_empty and "нет в наличии" in r.reply.text
    r = await say(rt, "тогда 26")
    assert [ln.variant_id for ln in r.cart.lines] == ["p26"]


async def test_a_number_in_a_name_is_still_a_count_before_another_word() -> None:
    """"2 прихватки" of "Прихватки силиконовые, 2 шт." is two packs, not one pack named "2"."""
    rt = await shop()
    r = await say(rt, "добавь 2 прихватки")
    assert r.cart.quantities() == {"mitts": 2}


async def test_dimensions_said_with_na_meet_the_option_and_are_no_quantity() -> None:
    rt = await shop()
    r = await say(rt, "добавь простыню на резинке 160 на 200 серую")
    assert [(ln.variant_id, ln.quantity) for ln in r.cart.lines] == [("s160g", 1)]


async def test_change_to_the_big_ones_switches_the_line() -> None:
    rt = await shop()
    await say(rt, "добавь три разделочные доски средние")
    r = await say(rt, "поменяй на большие")
    assert [(ln.variant_id, ln.quantity) for ln in r.cart.lines] == [("b3", 3)]


async def test_a_count_in_its_own_clause_belongs_to_the_product_named_before_it() -> None:
    rt = await shop()
    await say(rt, "добавь доску 40х30")
    r = await say(rt, "и наволочки к ней, 2 упаковки белых")
    assert r.cart.quantities() == {"board": 1, "cases": 2}
    assert {ln.variant_id for ln in r.cart.lines} == {"b3", "cw"}


async def test_a_count_set_on_a_line_named_in_another_case_leaves_the_others() -> None:
    """"ёлочек многовато, сделай 2": the trees go to two; the gel in focus is not touched."""
    rt = await shop()
    await say(rt, "добавь 3 ёлочки")
    await say(rt, "и гелевый ароматизатор ken")
    r = await say(rt, "ёлочек многовато, сделай 2")
    assert r.cart.quantities() == {"tree": 2, "gel": 1}


async def test_snimi_takes_a_line_off() -> None:
    rt = await shop()
    await say(rt, "добавь доску 40х30")
    await say(rt, "и наволочки белые")
    r = await say(rt, "сними наволочки")
    assert r.cart.quantities() == {"board": 1}


def brush_shop() -> Catalog:
    return Catalog.of("garden", "RUB", [
        product("wash", "Щётка для мойки авто с телескопической ручкой", "Щётка на длинной ручке.",
                [_v("w", "Default Title", "1190.00")]),
        product("wheels", "Щётка для чистки колёсных дисков", "Узкая щётка.", [_v("d", "Default Title", "490.00")]),
        product("mats", "Коврики EVA универсальные", "Коврики в салон.", [
            _v("mb", "Чёрный", "2490.00", **{"Цвет": "Чёрный"}), _v("mc", "Коричневый", "2490.00", **{"Цвет": "Коричневый"})]),
    ])


async def test_a_noun_names_the_product_its_adjective_is_made_from() -> None:
    rt = await shop(brush_shop())
    r = await say(rt, "добавь щетку с телескопом")  # "телескопом" names "телескопической"
    assert r.cart.quantities() == {"wash": 1}, r.reply.text


async def test_and_another_thing_after_an_addition_adds_it_whatever_its_words() -> None:
    rt = await shop(brush_shop())
    await say(rt, "добавь коврики коричневые")
    await say(rt, "добавь еще щетку для дисков")
    r = await say(rt, "и щетку для мойки с телескопом")  # no verb: it continues the addition
    assert r.cart.quantities() == {"mats": 1, "wheels": 1, "wash": 1}, r.reply.text


async def test_what_the_shop_does_not_sell_is_quoted_in_russian() -> None:
    rt = await shop(brush_shop())
    r = await say(rt, "есть детские автокресла?")
    assert r.reply.text.startswith("К сожалению, по запросу «"), r.reply.text


def tea_shop() -> Catalog:
    return Catalog.of("garden", "RUB", [
        product("teapot", "Чайник заварочный стеклянный с ситом", "Стеклянный чайник.", [
            _v("t600", "600 мл", "890.00"), _v("t1000", "1000 мл", "1190.00")]),
        product("press", "Френч-пресс «Утро»", "Френч-пресс.", [_v("fp", "800 мл", "1390.00")]),
        product("candle", "Свеча ароматическая «Ваниль и сандал»", "Свеча в стекле.", [
            _v("c200", "200 мл", "990.00"), _v("c400", "400 мл", "1590.00")]),
    ])


async def test_a_litre_is_the_1000_ml_option() -> None:
    rt = await shop(tea_shop())
    await say(rt, "добавь френч-пресс")
    r = await say(rt, "и заварочный чайник на литр")
    assert r.cart.quantities() == {"press": 1, "teapot": 1}
    assert r.cart.lines[-1].variant_id == "t1000", r.reply.text


async def test_a_size_word_in_its_own_clause_picks_the_size_of_a_product_named_in_two() -> None:
    rt = await shop(tea_shop())
    r = await say(rt, "добавь свечку ваниль и сандал, большую")  # "и" splits the name; "большую" is its size
    assert [(ln.handle, ln.variant_id) for ln in r.cart.lines] == [("candle", "c400")], r.reply.text


async def test_a_message_opening_with_add_and_naming_a_product_adds_it_on_the_legacy_engine_too() -> None:
    """The legacy classifier reads little Russian: "добавь два полотенца велюр белых" was a product
    question to it, so the towels were never added and a later "убери одно" emptied the line."""
    rt = await runtime_with(settings=Settings(business_id="garden"))  # the default (legacy) engine
    await rt.import_catalog(home_shop())
    r = await say(rt, "добавь две наволочки серые")
    assert r.cart.quantities() == {"cases": 2}, r.decision.reason
