"""Which product, option and reading a message means when the conversation gives it a choice:
a switch of the named line, sizes and option names, "one more", alternatives, cart words that name
products."""

from __future__ import annotations

import pytest

from tests.core.test_service import runtime_with, say


def _tee_shop():  # type: ignore[no-untyped-def]
    from chatpay.core.catalog import Catalog, Variant
    from chatpay.core.money import Money
    from tests.core.shop import product

    def tee(vid: str, size: str, colour: str, price: str, available: bool = True) -> Variant:
        return Variant(vid, f"{size} / {colour}", Money.parse(price, "EUR"), available=available,
                       options=(("Size", size), ("Colour", colour)))

    return Catalog.of("garden", "EUR", [product("tee", "Crew Tee", "A cotton tee.", [
        tee("l-white", "L", "White", "22.00"), tee("l-navy", "L", "Navy", "22.00"),
        tee("l-orange", "L", "Orange", "22.00", available=False), tee("s-black", "S", "Black", "22.00"),
        tee("l-black", "L", "Black", "22.00"), tee("xxl-white", "XXL", "White", "24.00", available=False),
        tee("xxl-navy", "XXL", "Navy", "24.00"),
    ])])


async def test_switching_one_option_keeps_the_others() -> None:
    """"switch it to XXL" from L / Navy is XXL / Navy, not the first XXL listed (a sold-out white)."""
    rt = await runtime_with()
    await rt.import_catalog(_tee_shop())
    await say(rt, "add the crew tee in navy L")
    r = await say(rt, "switch it to XXL")
    assert [(ln.variant_id, ln.quantity) for ln in r.cart.lines] == [("xxl-navy", 1)]


async def test_after_a_sold_out_option_a_new_colour_keeps_the_size_asked_for() -> None:
    rt = await runtime_with()
    await rt.import_catalog(_tee_shop())
    r = await say(rt, "add the crew tee, L in orange")
    assert r.cart.is_empty and "out of stock" in r.reply.text
    r = await say(rt, "black is fine")
    assert [ln.variant_id for ln in r.cart.lines] == ["l-black"]


async def test_a_question_the_search_cannot_place_is_about_the_product_in_the_conversation() -> None:
    """After the shears were shown, "would the shears cope with thick hawthorn stems?" is about
    them, not "we don't sell that"; a question naming nothing of the conversation is still declined."""
    rt = await runtime_with()
    await say(rt, "tell me about the bypass pruning shears")
    r = await say(rt, "would the shears cope with thick hawthorn stems for my elderly neighbour?")
    assert "Bypass Pruning Shears" in r.reply.text and "don't sell" not in r.reply.text
    r = await say(rt, "do you have a petrol hedge trimmer?")
    assert "don't sell" in r.reply.text


async def test_a_first_question_naming_one_product_by_its_word_is_about_it_and_add_it_adds_it() -> None:
    """"is the fertiliser ok for my nan's bonsai in cornwall?" opens the conversation: the abstainer
    cannot place it, but "is the fertiliser" presumes the one product that word names, so that is the
    answer (the search itself says so since 2026-12-01; the enquiry agent did before)."""
    from chatpay.config import Settings

    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    r = await say(rt, "is the fertiliser ok for my nan's bonsai in cornwall?")
    assert r.retrieval is not None and [h.handle for h in r.retrieval.products] == ["rose-fertiliser"]
    assert "Rose Fertiliser" in r.reply.text and "don't sell" not in r.reply.text, r.reply.text
    r = await say(rt, "great, add it please")
    assert r.cart.quantities() == {"rose-fertiliser": 1}


async def test_switch_the_named_line_even_when_the_product_in_focus_has_that_option_already() -> None:
    """"switch the bed to the large" right after adding a large mat switches the bed, adds no mat."""
    from chatpay.config import Settings
    from chatpay.core.catalog import Catalog
    from tests.core.shop import product, variant

    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    await rt.import_catalog(Catalog.of("garden", "EUR", [
        product("bed", "Snoozeloaf Orthopedic Dog Bed", "A memory foam bed.",
                [variant("bed-m", "Medium", "60.00"), variant("bed-l", "Large", "90.00")]),
        product("mat", "ChillPad Cooling Gel Dog Mat", "A gel mat.",
                [variant("mat-m", "Medium", "30.00"), variant("mat-l", "Large", "40.00")]),
        product("cat-bed", "Cat Window Bed", "A bed on the window.", [variant("cb", "Default Title", "25.00")]),
        product("crate-bed", "Crate Bed Pad", "A pad for a crate.", [variant("cp", "Default Title", "35.00")]),
    ]))
    await say(rt, "add the orthopedic dog bed in medium")
    await say(rt, "also a cooling mat, the large")
    r = await say(rt, "hmm switch the bed to the large")
    assert sorted((ln.handle, ln.variant_id, ln.quantity) for ln in r.cart.lines) == [
        ("bed", "bed-l", 1), ("mat", "mat-l", 1)], r.reply.text


def test_a_size_word_after_a_list_sizes_the_product_in_focus_not_one_tagged_with_it() -> None:
    """"three of the small ones" after fish food was listed first: the small flakes, not the puppy
    food whose tags say "small breed"."""
    from chatpay.core.cartparse import CartParser
    from chatpay.core.catalog import Catalog
    from chatpay.core.mentions import MentionIndex
    from tests.core.shop import product, variant

    flakes = product("flakes", "FlakeFeast Tropical Fish Flakes", "Flakes for tropical fish.",
                     [variant("f1", "1 oz", "4.99"), variant("f2", "2.2 oz", "8.99")])
    puppy = product("puppy", "Trailhead Puppy Dry Dog Food", "Kibble for puppies.",
                    [variant("p4", "4 lb", "18.99"), variant("p15", "15 lb", "49.99")], tags=("small breed", "puppy"))
    parser = CartParser(MentionIndex(Catalog.of("garden", "EUR", [flakes, puppy])))
    command = parser.parse("three of the small ones please", "add", last_shown=["flakes", "puppy"],
                           last_product="flakes")
    assert [(t.handle, t.quantity, t.variant_id) for t in command.targets] == [("flakes", 3, "f1")]


async def test_one_more_for_someone_adds_one_more_of_the_product_in_focus() -> None:
    from chatpay.config import Settings

    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    await say(rt, "add the galvanised watering can")
    r = await say(rt, "one more for my partner")
    assert r.intent == "cart_add" and r.cart.quantities() == {"watering-can": 2}
    r = await say(rt, "one more question: is it galvanised inside too?")  # more talk, not more cans
    assert r.cart.quantities() == {"watering-can": 2}


async def test_a_count_before_a_product_name_asks_to_add_it_but_a_model_number_does_not() -> None:
    from chatpay.config import Settings

    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    r = await say(rt, "ok just 1 galvanised watering can")
    assert r.cart.quantities() == {"watering-can": 1}, r.decision.reason
    r = await say(rt, "type 5 rose fertiliser")  # a name with a number in it: a product question
    assert r.intent == "enquiry" and r.cart.quantities() == {"watering-can": 1}, r.decision.reason


async def test_whats_similar_after_a_sold_out_product_lists_in_stock_alternatives() -> None:
    from chatpay.config import Settings
    from chatpay.core.catalog import Catalog
    from tests.core.shop import product, variant

    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    await rt.import_catalog(Catalog.of("garden", "EUR", [
        product("santoku", "Ashford Santoku Knife", "A Japanese-style kitchen knife.",
                [variant("s", "Default Title", "59.00", available=False)], ptype="Kitchen Knife"),
        product("gyuto", "Kurogane Gyuto Chef's Knife", "A Japanese chef's knife.",
                [variant("g", "Default Title", "129.00")], ptype="Kitchen Knife"),
        product("apron", "Canvas Apron", "A kitchen apron.", [variant("a", "Default Title", "29.00")], ptype="Apron"),
    ]))
    r = await say(rt, "add the santoku knife")
    assert r.cart.is_empty and "out of stock" in r.reply.text
    r = await say(rt, "ok whats similar then")
    assert r.intent == "enquiry" and r.cart.is_empty
    assert r.reply.text.startswith("In stock and close to **Ashford Santoku Knife**"), r.reply.text
    assert [c.handle for c in r.reply.cards][:1] == ["gyuto"]
    assert all(c.available for c in r.reply.cards)


def _jeans_shop():  # type: ignore[no-untyped-def]
    from chatpay.core.catalog import Catalog, Variant
    from chatpay.core.money import Money
    from tests.core.shop import product

    def sized(handle: str, name: str, first: str, second: str, values: list[tuple[str, str]], price: str):  # type: ignore[no-untyped-def]
        waist = "a high waist, 34 in the leg" if handle == "mom" else "a classic cut"  # only one says "waist"
        return product(handle, name, f"{name}: jeans with {waist}.", [
            Variant(f"{handle}-{a}-{b}", f"{a} / {b}", Money.parse(price, "USD"), options=((first, a), (second, b)))
            for a, b in values], ptype="Jeans")

    pairs = [(w, ln) for w in ("30", "32", "34") for ln in ("32", "34")]
    return Catalog.of("garden", "USD", [
        sized("selvedge", "Straight Leg Selvedge Jeans", "Waist", "Length", pairs, "128.00"),
        sized("carpenter", "Relaxed Carpenter Jeans", "Waist", "Length", pairs, "88.00"),
        sized("bootcut", "Classic Bootcut Jeans", "Waist", "Length", pairs, "78.00"),
        sized("mom", "High-Rise Mom Jeans", "Size", "Wash", [("32", "Vintage Blue"), ("34", "Washed Black")], "72.00"),
        sized("slim", "Slim Fit Stretch Jeans", "Waist", "Length", pairs, "68.00"),
    ])


def test_a_value_beside_its_option_name_says_which_option_it_is() -> None:
    from chatpay.core.options import match_variant
    from chatpay.core.text import tokens

    jeans = _jeans_shop().get("selvedge")
    assert jeans is not None
    assert match_variant(jeans, tokens("32 waist 34 length"))[0] == "selvedge-32-34"
    assert match_variant(jeans, tokens("waist 34 length 32"))[0] == "selvedge-34-32"
    assert match_variant(jeans, tokens("34 waist, 32 length"))[0] == "selvedge-34-32"


async def test_naming_one_of_the_kind_offered_with_its_sizes_adds_it_and_only_it() -> None:
    """After "some jeans" got four suggestions, "the selvedge ones, 32 waist 34 length" picks the
    selvedge jeans (not suggested) in 32 / 34; the sizes are not another pair's, nor a count of 34."""
    from chatpay.config import Settings

    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    await rt.import_catalog(_jeans_shop())
    await say(rt, "add some jeans")
    r = await say(rt, "the selvedge ones, 32 waist 34 length")
    assert [(ln.handle, ln.variant_id, ln.quantity) for ln in r.cart.lines] == [("selvedge", "selvedge-32-34", 1)], \
        r.reply.text


@pytest.mark.parametrize(("text", "product"), [
    ("poop bags", True), ("got the puppy food in the 15 lb bag?", True), ("banneton proving basket", True),
    ("корзина для белья", True), ("bag to carry my knitting about in", True),
    ("whats in my bag", False), ("show me my shopping cart", False), ("bag?", False), ("что в корзине", False),
    ("покажи корзину", False), ("view basket please", False), ("add it to my cart", False),
])
def test_a_cart_word_names_a_product_when_it_is_modified_or_for_something(text: str, product: bool) -> None:
    from chatpay.core.negation import cart_word_names_a_product

    assert cart_word_names_a_product(text) is product


async def test_a_product_named_with_a_cart_word_is_a_product_question() -> None:
    from chatpay.config import Settings

    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    r = await say(rt, "banneton proving basket")  # the classifier reads "basket" as the cart
    assert r.intent == "enquiry", r.decision.reason


async def test_which_options_a_named_product_comes_in_answers_that_product_so_the_second_one_is_its_option() -> None:
    from chatpay.config import Settings
    from chatpay.core.catalog import Catalog
    from tests.core.shop import product, variant

    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    await rt.import_catalog(Catalog.of("garden", "EUR", [
        product("ink50", "Tide Fountain Pen Ink 50ml", "Dye ink.", [variant("blue", "Blue", "12.50"),
                                                                   variant("red", "Oxblood", "12.50")]),
        product("ink30", "Tide Sheen Ink 30ml", "Sheen ink.", [variant("g", "Emerald", "15.00")]),
        product("ink100", "Tide Fountain Pen Ink 100ml Refill", "Dye ink refill.", [variant("b", "Blue", "19.00")]),
    ]))
    r = await say(rt, "what colours does the tide fountain pen ink 50ml come in")
    assert "Oxblood" in r.reply.text and "Refill" not in r.reply.text
    r = await say(rt, "add the second one")
    assert [(ln.handle, ln.variant_id) for ln in r.cart.lines] == [("ink50", "red")]


async def test_removing_by_an_option_takes_the_cart_line_that_has_it() -> None:
    """Two lines of one tee; "remove the black one" is the L / Black line, though "black" alone
    first names S / Black."""
    rt = await runtime_with()
    await rt.import_catalog(_tee_shop())
    await say(rt, "add the crew tee in navy L")
    r = await say(rt, "and one in black, size L")
    assert {ln.variant_id for ln in r.cart.lines} == {"l-navy", "l-black"}
    r = await say(rt, "remove the black one")
    assert [ln.variant_id for ln in r.cart.lines] == ["l-navy"]


async def test_take_out_after_a_refusal_removes_whatever_else_leans_to_adding() -> None:
    """"fine, take out the 4.5mm then, I'll wait" after the 5mm was sold out removes the 4.5mm
    ("I'll" and "then" lean to adding but ask for nothing)."""
    from chatpay.config import Settings
    from chatpay.core.catalog import Catalog
    from tests.core.shop import product, variant

    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    await rt.import_catalog(Catalog.of("garden", "EUR", [product(
        "zing", "KnitPro Zing Straight Needles 35cm", "Aluminium needles.",
        [variant("z4", "4mm", "6.40"), variant("z45", "4.5mm", "6.60"), variant("z5", "5mm", "6.80", available=False)],
        ptype="Knitting Needles")]))
    await say(rt, "add the knitpro zing straight needles 4mm")
    await say(rt, "and 4.5mm")
    r = await say(rt, "and 5mm")
    assert "out of stock" in r.reply.text
    r = await say(rt, "fine, take out the 4.5mm then, I'll wait")
    assert [(ln.variant_id, ln.quantity) for ln in r.cart.lines] == [("z4", 1)], r.reply.text


@pytest.mark.parametrize(("text", "question"), [
    ("can i use it with the niacinamide serum?", True), ("can i wash the cover?", True),
    ("can I get two?", False), ("can you add it?", False), ("could i order it today?", False),
    ("can i get four screen protectors for the iphone 16 pro", False),
    ("would the flux cable charge my macbook through the hub", True), ("can it hold a 16 inch laptop?", True),
    ("would you remove it?", False),
])
def test_can_i_do_something_with_a_product_is_a_question_and_can_i_get_is_a_request(text: str, question: bool) -> None:
    from chatpay.core.negation import asks_rather_than_requests

    assert asks_rather_than_requests(text) is question


def test_an_option_only_one_product_has_names_that_product() -> None:
    """"add two bottles of midnight blue" after talk of a pen and its converter: the ink, the one
    product with a Midnight Blue; "in black", which several have, names none."""
    from chatpay.core.cartparse import CartParser
    from chatpay.core.catalog import Catalog
    from chatpay.core.mentions import MentionIndex
    from tests.core.shop import product, variant

    catalog = Catalog.of("garden", "EUR", [
        product("pen", "Kestrel Brass Fountain Pen", "A pen that fills from bottles with its converter.",
                [variant("pm", "Medium", "58.00"), variant("pb", "Black", "58.00")]),
        product("converter", "Kestrel Piston Ink Converter", "Fill your pen from ink bottles.",
                [variant("c", "Default Title", "4.50")]),
        product("ink", "Tidewater Fountain Pen Ink 50ml", "Bottled ink.",
                [variant("im", "Midnight Blue", "12.50"), variant("ib", "Black", "12.50")]),
    ])
    parser = CartParser(MentionIndex(catalog))
    [t] = parser.parse("add two bottles of midnight blue", "add", last_shown=["pen", "converter"]).targets
    assert (t.handle, t.variant_id, t.quantity) == ("ink", "im", 2)
    assert not [t for t in parser.parse("add two in black", "add").targets if t.handle == "ink"]


class _ReadsRemovals:
    """A classifier that reads every message but an "add ..." command as a removal."""

    def predict(self, text: str) -> list[tuple[str, float]]:
        return [("cart_add", 0.9), ("cart_remove", 0.1)] if text.startswith("add") else [
            ("cart_remove", 0.9), ("cart_add", 0.1)]


async def test_and_a_product_after_a_removal_adds_it_when_the_cart_does_not_hold_it() -> None:
    """"one less", then "and the sweet basil seeds": a removal names a line of the cart, so a product
    the cart lacks is the next thing to add, however the classifier reads it."""
    rt = await runtime_with(classifier=_ReadsRemovals())
    await say(rt, "add 3 tomato seeds")
    await say(rt, "one less")
    r = await say(rt, "and the sweet basil seeds")
    assert r.cart.quantities() == {"tomato-seeds": 2, "basil-seeds": 1}, r.decision.reason


async def test_yes_to_a_question_about_one_option_adds_that_option() -> None:
    """"do you have the rose fertiliser in the 5kg bag?" ... "yes please": the 5kg, not the first size."""
    rt = await runtime_with()
    await say(rt, "do you have the rose fertiliser in the 5kg bag?")
    r = await say(rt, "yes please")
    assert [(ln.variant_id, ln.quantity) for ln in r.cart.lines] == [("rf-5", 1)], r.reply.text


def _gift_card_shop():  # type: ignore[no-untyped-def]
    from chatpay.core.catalog import Catalog, PolicyDoc
    from tests.core.shop import garden_shop, product, variant

    card = product("gift-card", "Green Thumb Gift Card", "A card to spend in the shop.",
                   [variant("g20", "€20", "20.00"), variant("g50", "€50", "50.00")], "Gift cards")
    return Catalog.of("garden", "EUR", [*garden_shop(), card], store_name="Green Thumb", policies=(
        PolicyDoc("shipping", "Shipping", "We ship within the EU in 2-4 days; free over €50.", ("shipping", "delivery")),
        PolicyDoc("gift-cards", "Gift cards", "Gift cards never expire and are emailed at once.",
                  ("gift card", "gift cards", "voucher", "expire"))))


async def test_a_policy_answer_that_names_one_product_keeps_it_in_focus() -> None:
    """"do your gift cards expire?" is the gift-card policy's question; "the 50 one then" picks that
    product's option, not "I couldn't find it"."""
    rt = await runtime_with()
    await rt.import_catalog(_gift_card_shop())
    r = await say(rt, "do your gift cards expire?")
    assert "never expire" in r.reply.text, r.reply.text
    r = await say(rt, "the 50 one then")
    assert [(ln.variant_id, ln.quantity) for ln in r.cart.lines] == [("g50", 1)], r.reply.text


async def test_a_policy_word_outweighs_a_pointer_to_the_product_shown() -> None:
    """"is delivery free on that?" after the watering can was shown asks the delivery policy."""
    rt = await runtime_with()
    await say(rt, "tell me about the galvanised watering can")
    r = await say(rt, "is delivery free on that?")
    assert "free over €50" in r.reply.text, r.reply.text
    r = await say(rt, "how much is that?")  # no policy word: still the can
    assert "Galvanised Watering Can" in r.reply.text, r.reply.text


def test_an_option_word_of_a_product_just_shown_is_that_option_not_another_products_name() -> None:
    """"давай длинную, телескопическую" after snow brushes were listed: the snow brush's telescopic
    option, not the wash brush whose name holds the word in another case; "и щётку для мойки"
    still names that one."""
    from chatpay.core.cartparse import CartParser
    from chatpay.core.catalog import Catalog
    from chatpay.core.mentions import MentionIndex
    from tests.core.shop import product, variant

    parser = CartParser(MentionIndex(Catalog.of("garden", "EUR", [
        product("snow", "Щётка-сметка для снега со скребком", "Чистит снег.",
                [variant("s60", "60 см", "490.00"), variant("s90", "90 см, телескопическая", "690.00")]),
        product("wash", "Щётка для мойки с телескопической ручкой", "Подключается к шлангу.",
                [variant("w", "Default Title", "1190.00")]),
        product("wheel", "Щётка для колёсных дисков", "Для литых дисков.", [variant("r", "Default Title", "450.00")]),
    ])))
    shown = ["snow", "wheel", "wash"]
    [t] = parser.parse("давай длинную, телескопическую", "add", last_shown=shown).targets
    assert (t.handle, t.variant_id) == ("snow", "s90")
    [t] = parser.parse("и щётку для мойки", "add", last_shown=shown).targets
    assert t.handle == "wash"


class _ReadsQuestions:
    """A classifier that reads every message but an "add ..." or "one less" command as a question."""

    def predict(self, text: str) -> list[tuple[str, float]]:
        if text.startswith("add"):
            return [("cart_add", 0.9), ("enquiry", 0.1)]
        if text.startswith("one less"):
            return [("cart_remove", 0.9), ("enquiry", 0.1)]
        return [("enquiry", 0.9), ("cart_view", 0.1)]


async def test_how_much_is_it_now_after_a_change_shows_the_cart() -> None:
    """"how much is it now" after the cart changed asks its new total, however the classifier reads it."""
    rt = await runtime_with(classifier=_ReadsQuestions())
    await say(rt, "add 2 tomato seeds and a watering can")
    await say(rt, "one less tomato seeds")
    r = await say(rt, "how much is it now")
    assert r.intent == "cart_view" and "€37.20" in r.reply.text, r.reply.text


async def test_a_request_after_a_question_in_one_message_is_acted_on() -> None:
    """"do you have the shears in red? add them then" asks, then asks to add: the red shears go in."""
    rt = await runtime_with()
    await say(rt, "tell me about the bypass pruning shears")
    r = await say(rt, "is there a red one? add it then")
    assert [(ln.variant_id, ln.quantity) for ln in r.cart.lines] == [("ps-r", 1)], r.decision.reason


async def test_a_declined_question_offers_the_closest_products_its_words_name() -> None:
    """"seeds of doubt, the novel" is no seed packet: the reply says so and offers the seeds as the
    closest; with a cart held, the same question is declined plainly (it is rather about the cart)."""
    from chatpay.config import Settings

    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    r = await say(rt, "seeds of doubt, the novel")
    assert "closest" in r.reply.text and "Heirloom Tomato Seeds" in [c.title for c in r.reply.cards], r.reply.text
    await say(rt, "add the galvanised watering can")
    r = await say(rt, "seeds of doubt, the novel")
    assert "don't sell" in r.reply.text and not r.reply.cards, r.reply.text


async def _pen_shop():  # type: ignore[no-untyped-def]
    from chatpay.config import Settings
    from chatpay.core.catalog import Catalog
    from tests.core.shop import product, variant

    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    await rt.import_catalog(Catalog.of("garden", "EUR", [
        product("pen", "Kestrel Scholar Fountain Pen", "A light resin pen. Takes standard cartridges or the "
                "Kestrel Piston Converter. Comes with a 5-year guarantee.", [variant("p", "Default Title", "22.00")]),
        product("conv", "Kestrel Piston Converter", "Fill your fountain pen from ink bottles.",
                [variant("c", "Default Title", "4.50")]),
        product("ink", "Tidewater Ink 50ml", "Bottled ink in deep blue.", [variant("i", "Default Title", "12.50")]),
    ]))
    return rt


async def test_a_question_the_product_cannot_answer_points_at_the_product_its_description_names() -> None:
    """"can i fill it from a bottle?" of a pen that "takes cartridges or the Piston Converter": the
    converter, which fills from bottles, is suggested; "does it have a guarantee?" is answered by
    the pen's own text and suggests nothing, and offers no second pen: one is in the cart."""
    rt = await _pen_shop()
    await say(rt, "add the kestrel scholar fountain pen")
    r = await say(rt, "can i fill it from a bottle?")
    assert r.reply.text.startswith("**Kestrel Scholar Fountain Pen**"), r.reply.text
    assert "You may also want **Kestrel Piston Converter**" in r.reply.text, r.reply.text
    r = await say(rt, "does it have a guarantee?")
    assert r.reply.text.startswith("**Kestrel Scholar Fountain Pen**") and "You may also want" not in r.reply.text
    assert "add it to your cart" not in r.reply.text  # it is in the cart already: nothing to offer
    r = await say(rt, "ok lets pay")
    assert r.intent == "payments" and r.cart.quantities() == {"pen": 1}, r.reply.text


async def test_yes_to_a_suggestion_beside_a_product_already_in_the_cart_adds_the_suggestion() -> None:
    """The pen is in the cart, so the converter suggested for filling it from a bottle is the offer:
    "yes please" added a second pen before."""
    rt = await _pen_shop()
    await say(rt, "add the kestrel scholar fountain pen")
    r = await say(rt, "can i fill it from a bottle?")
    assert r.reply.text.rstrip().endswith("add it to your cart?"), r.reply.text
    r = await say(rt, "yes please")
    assert r.cart.quantities() == {"pen": 1, "conv": 1}


async def test_a_russian_pronoun_points_at_the_product_in_focus() -> None:
    """"а на сколько его хватит?" right after adding the can asks about the can ("его", "него" were not
    read as pointers, and the question got "nothing found")."""
    from chatpay.config import Settings

    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    await say(rt, "add the galvanised watering can")
    r = await say(rt, "а на сколько его хватит?")
    assert r.reply.text.startswith("**Galvanised Watering Can**"), r.reply.text


async def test_a_bare_russian_order_verb_takes_the_product_in_focus() -> None:
    """"берем" after a product was shown adds it, as "I'll take it" does; it used to answer "not found:
    берем", the verb read as a product's name."""
    rt = await runtime_with()
    await say(rt, "tell me about the galvanised watering can")
    r = await say(rt, "берем")
    assert r.cart.quantities() == {"watering-can": 1}, r.reply.text


async def test_a_clause_headed_by_an_option_chooses_that_option_of_the_product_in_focus() -> None:
    """"ok add that, the kit with the battery": "the kit" is the drill's kit option and "with the
    battery" describes it; before, the battery sold on its own was added beside the bare drill."""
    from chatpay.core.catalog import Catalog
    from tests.core.shop import product, variant

    rt = await runtime_with()
    await rt.import_catalog(Catalog.of("garden", "EUR", [
        product("drill", "Compact Drill Driver", "A light 12V drill.",
                [variant("skin", "Skin Only", "99.00"), variant("kit", "2.0Ah Kit", "149.00")]),
        product("battery", "18V Li-ion Battery", "A spare battery.", [variant("b", "Default Title", "69.00")]),
    ]))
    await say(rt, "tell me about the compact drill driver")
    r = await say(rt, "ok add that, the kit with the battery")
    assert [(ln.handle, ln.variant_id) for ln in r.cart.lines] == [("drill", "kit")], r.reply.text


async def test_an_ok_that_names_another_product_is_not_a_yes_to_the_offer() -> None:
    """After the basil seeds were offered, "ok add the tomato seeds" adds the tomato seeds, not the
    basil; "yes please, add them" still takes the offer."""
    rt = await runtime_with()
    await say(rt, "tell me about the sweet basil seeds")
    r = await say(rt, "ok add the heirloom tomato")
    assert r.cart.quantities() == {"tomato-seeds": 1}, r.reply.text
    await say(rt, "tell me about the sweet basil seeds")
    r = await say(rt, "yes please, add them")
    assert r.cart.quantities() == {"tomato-seeds": 1, "basil-seeds": 1}, r.reply.text


async def test_a_greeting_before_a_question_about_the_goods_is_a_product_question() -> None:
    """"hey, just moved in. what do you have for that?" asks for products after the greeting; it was
    answered with the welcome. "hi! how are you?" stays small talk."""
    rt = await runtime_with()
    r = await say(rt, "hey, starting a veg patch this spring. what seeds do you have for that?")
    assert r.intent == "enquiry", r.reply.text
    r = await say(rt, "hi! how are you?")
    assert r.intent == "chitchat"


async def test_a_message_that_opens_with_a_count_of_a_product_orders_it() -> None:
    """"2 packets of sweet basil seeds pls" asks for two, as "add 2 ..." does; a count that opens a
    question ("2 packets of basil seeds enough for a bed?") is still a question."""
    from chatpay.config import Settings

    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    r = await say(rt, "2 packets of sweet basil seeds, genovese pls")
    assert r.cart.quantities() == {"basil-seeds": 2}, r.reply.text
    r = await say(rt, "2 packets of heirloom tomato seeds enough for a raised bed?")
    assert r.intent == "enquiry" and r.cart.quantities() == {"basil-seeds": 2}, r.reply.text


async def test_the_bare_name_of_a_thing_not_sold_is_answered_as_not_sold() -> None:
    """"wheelbarrow" in a garden shop that has none was answered with the welcome, as small talk; the
    shopper asked for it, so the answer says the shop does not sell it. "lol" stays small talk."""
    from chatpay.config import Settings

    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    r = await say(rt, "wheelbarrow")
    assert r.intent == "enquiry" and "don't sell" in r.reply.text, r.reply.text
    r = await say(rt, "lol")
    assert r.intent == "chitchat", r.reply.text


async def test_one_question_between_additions_does_not_end_the_list() -> None:
    """"add the can", "how many litres does it hold?", then "and some basil seeds for the windowsill"
    goes on adding (it was answered as a question); "and what about basil seeds" still asks."""
    rt = await runtime_with()
    await say(rt, "add the galvanised watering can")
    await say(rt, "how many litres does it hold?")
    r = await say(rt, "and some basil seeds for the windowsill")
    assert r.cart.quantities() == {"watering-can": 1, "basil-seeds": 1}, r.reply.text
    rt = await runtime_with()
    await say(rt, "add the galvanised watering can")
    await say(rt, "how many litres does it hold?")
    r = await say(rt, "and what about basil seeds")
    assert r.intent == "enquiry" and r.cart.quantities() == {"watering-can": 1}, r.reply.text


async def test_a_comparison_a_name_after_a_verb_and_a_pointer_at_nothing_ask_rather_than_act() -> None:
    """Three readings that changed a cart: "the shears vs the kneeler" added the shears, a thing
    named after a verb ("weed remover") read as a removal, and "the bypass pruning one" on a fresh
    thread added the shears though nothing was shown to point at."""
    from chatpay.config import Settings

    settings = Settings(business_id="garden", nlu="fitted")
    rt = await runtime_with(settings=settings)
    r = await say(rt, "the bypass pruning one")
    assert r.intent == "enquiry" and r.cart.is_empty, r.reply.text
    r = await say(rt, "the bypass pruning one")  # now the shears were shown: a pick
    assert r.cart.quantities() == {"pruning-shears": 1}, r.reply.text
    rt = await runtime_with(settings=settings)
    await say(rt, "add the sweet basil seeds")
    r = await say(rt, "bypass pruning shears vs the garden kneeler")
    assert r.intent == "enquiry" and r.cart.quantities() == {"basil-seeds": 1}, r.reply.text
    r = await say(rt, "weed remover")
    assert r.intent != "cart_remove" and r.cart.quantities() == {"basil-seeds": 1}, r.reply.text


async def test_advice_between_two_a_wish_to_do_and_a_long_need_are_product_questions() -> None:
    """"shears or the kneeler, which would you get?" added the shears; "I'd like to prune the roses
    myself" was read as a request to add; a long need that never says cart was read as "show my
    cart". Each is a product question now."""
    from chatpay.config import Settings

    settings = Settings(business_id="garden", nlu="fitted")
    for text in ("tidying the borders - the bypass pruning shears or the garden kneeler, which would you get?",
                 "the gardener charges 40 a visit, I'd like to prune the roses myself",
                 "my knees ache after an afternoon weeding the beds, anything that makes kneeling down there easier?"):
        rt = await runtime_with(settings=settings)
        r = await say(rt, text)
        assert r.intent == "enquiry" and r.cart.is_empty, (text, r.intent, r.reply.text)
