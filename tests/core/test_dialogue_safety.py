"""A cart the shopper can trust: nothing taken away on a guess, odd quantities asked about."""

from __future__ import annotations

import pytest

from chatpay.core.negation import negated_action
from tests.core.shop import garden_shop
from tests.core.test_service import runtime_with, say


@pytest.mark.parametrize(
    ("text", "verb"),
    [
        ("don't remove the shears", "remove"),
        ("please do not empty my cart", "empty"),
        ("don't clear my cart!", "clear"),
        ("не удаляй семена", "удаляй"),
        ("I don't want the shears anymore", None),  # a removal, not a negated command
        ("not sure yet, add the basil", None),  # the negation stays in its clause
        ("add 2 basil", None),
    ],
)
def test_negation_governs_the_action_it_precedes(text: str, verb: str | None) -> None:
    assert negated_action(text) == verb


@pytest.mark.parametrize("text", ["don't remove the basil seeds", "please do not empty my cart",
                                  "don't clear my cart"])
async def test_a_negated_command_changes_nothing(text: str) -> None:
    rt = await runtime_with()
    await say(rt, "add 2 basil seeds and a watering can")
    r = await say(rt, text)
    assert r.cart.quantities() == {"basil-seeds": 2, "watering-can": 1}
    assert r.decision.negated and "left your cart" in r.reply.text


async def test_emptying_a_cart_of_several_lines_asks_first_and_no_keeps_it() -> None:
    rt = await runtime_with()
    await say(rt, "add 2 basil seeds and a watering can")
    r = await say(rt, "empty my cart")
    assert r.cart.quantities() == {"basil-seeds": 2, "watering-can": 1}
    assert "Empty your cart (3 items)?" in r.reply.text
    assert [b.data for row in r.reply.buttons for b in row] == [f"cy|{r.cart.version}", "v"]
    r = await say(rt, "no")
    assert r.cart.quantities() == {"basil-seeds": 2, "watering-can": 1}
    r = await say(rt, "yes")  # the question no longer stands: nothing is emptied on a stale yes
    assert not r.cart.is_empty


async def test_the_confirm_button_empties_the_cart_it_was_shown_for() -> None:
    rt = await runtime_with()
    await say(rt, "add 2 basil seeds and a watering can")
    asked = await say(rt, "clear the cart")
    yes = asked.reply.buttons[0][0].data
    await say(rt, "add a tomato seeds")  # the cart changed after the question
    r = await say(rt, callback_data=yes)
    assert r.cart.quantities() == {"basil-seeds": 2, "watering-can": 1, "tomato-seeds": 1}
    assert "Empty your cart (4 items)?" in r.reply.text
    r = await say(rt, callback_data=r.reply.buttons[0][0].data)
    assert r.cart.is_empty


@pytest.mark.parametrize("data", ["a|no-such-product", "a|rose-fertiliser|no-such-variant", "r|nope", "i|nope",
                                  "zz|1", "s|x", "a", "a|" + "x" * 70])
async def test_a_forged_or_stale_button_gets_a_polite_answer_and_changes_nothing(data: str) -> None:
    rt = await runtime_with()
    await say(rt, "add 2 basil seeds")
    r = await say(rt, callback_data=data)
    assert r.error is None and r.reply.text
    assert r.cart.quantities() == {"basil-seeds": 2}


async def test_a_long_message_of_unknown_things_is_named_once_and_briefly() -> None:
    rt = await runtime_with()
    text = "add " + ", ".join(f"a purple flying unicorn number {i} with extra sparkles and glitter" for i in range(60))
    r = await say(rt, text[:4096])
    assert r.cart.is_empty and len(r.reply.text) < 600
    r = await rt.service.handle(rt.turn(text[:4096], thread_id="t2"), intent="cart_add")
    assert r.cart.is_empty
    assert r.reply.text.count("couldn't find") == 1 and "more in our catalog" in r.reply.text
    assert len(r.reply.text) < 600


async def test_a_single_line_cart_empties_at_once() -> None:
    rt = await runtime_with()
    await say(rt, "add a watering can")
    r = await say(rt, "empty my cart")
    assert r.cart.is_empty


@pytest.mark.parametrize("text", ["add -5 basil seeds", "add 0.5 basil seeds", "add 1e9 basil seeds",
                                  "add 1,000 basil seeds", "add 0 basil seeds", "add 250 basil seeds"])
async def test_a_quantity_no_cart_can_hold_gets_a_question_not_a_silent_one(text: str) -> None:
    rt = await runtime_with()
    r = await say(rt, text)
    assert r.cart.is_empty
    assert "How many" in r.reply.text and "1 to 99" in r.reply.text


async def test_a_number_that_is_an_option_value_names_the_variant() -> None:
    rt = await runtime_with()
    r = await say(rt, "add the rose fertiliser 5 kg")
    assert r.cart.quantities() == {"rose-fertiliser": 1}
    line = r.cart.lines[0]
    assert line.variant_id == "rf-5" and line.quantity == 1


async def test_switching_the_variant_keeps_the_line_and_its_quantity() -> None:
    rt = await runtime_with()
    await say(rt, "add 2 rose fertiliser 1kg")
    r = await say(rt, "switch it to the 5kg")
    assert [(ln.variant_id, ln.quantity) for ln in r.cart.lines] == [("rf-5", 2)]
    assert r.reply.cart is not None and r.reply.cart.subtotal.amount_str() == "58.00"


@pytest.mark.parametrize("text", ["actually make it the 5kg", "make that the 5 kg one"])
async def test_make_it_the_option_switches_the_line_rather_than_adding_one(text: str) -> None:
    """"make it the compact" names an option to switch to, where "make it 2" sets a count."""
    rt = await runtime_with()
    await say(rt, "add 2 rose fertiliser 1kg")
    r = await say(rt, text)
    assert [(ln.variant_id, ln.quantity) for ln in r.cart.lines] == [("rf-5", 2)]


async def test_one_more_adds_to_the_variant_already_in_the_cart() -> None:
    rt = await runtime_with()
    await say(rt, "add the rose fertiliser 5kg")
    r = await say(rt, "one more rose fertiliser")
    assert [(ln.variant_id, ln.quantity) for ln in r.cart.lines] == [("rf-5", 2)]


def test_the_shop_used_here_has_variants_to_choose_from() -> None:
    assert len(garden_shop().get("rose-fertiliser").variants) == 2  # type: ignore[union-attr]


@pytest.mark.parametrize("text", ["will it clear the weeds out?", "can I remove the blades of the shears?",
                                  "does the watering can come apart to clean?"])
async def test_a_question_that_borrows_an_actions_verb_takes_nothing_away(text: str) -> None:
    rt = await runtime_with()
    await say(rt, "add the pruning shears and a watering can")
    r = await say(rt, text)
    assert r.cart.quantities() == {"pruning-shears": 1, "watering-can": 1}


async def test_can_you_remove_is_still_a_request() -> None:
    rt = await runtime_with()
    await say(rt, "add the pruning shears and a watering can")
    r = await say(rt, "can you remove the watering can?")
    assert r.cart.quantities() == {"pruning-shears": 1}


async def test_a_removal_acts_on_the_cart_line_its_words_fit_best() -> None:
    rt = await runtime_with()
    await say(rt, "add tomato seeds and basil seeds")
    r = await say(rt, "remove the seeds")  # two lines fit equally: ask, remove nothing
    assert r.cart.quantities() == {"tomato-seeds": 1, "basil-seeds": 1}
    assert "Which one should I remove" in r.reply.text
    r = await say(rt, "take the basil seeds off")
    assert r.cart.quantities() == {"tomato-seeds": 1}


async def test_russian_number_words_are_quantities() -> None:
    rt = await runtime_with()
    r = await say(rt, "add 3 basil seeds")
    r = await say(rt, "remove две basil seeds")
    assert r.cart.quantities() == {"basil-seeds": 1}


async def test_a_clause_that_only_names_an_option_chooses_it_for_the_product_named_before() -> None:
    rt = await runtime_with()
    r = await say(rt, "add the rose fertiliser, 5kg")
    assert [(ln.variant_id, ln.quantity) for ln in r.cart.lines] == [("rf-5", 1)]


@pytest.mark.parametrize("text", ["keep my seeds dry in the shed", "something to help the bees",
                                  "I want to grow tomatoes on a balcony"])
async def test_a_description_without_an_action_word_is_searched_not_added(text: str) -> None:
    from chatpay.config import Settings

    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    r = await say(rt, text)
    assert r.cart.is_empty
    assert r.intent in ("enquiry", "chitchat")


@pytest.mark.parametrize(("text", "intent", "stands_"), [
    ("add the basil", "cart_add", True),
    ("2x basil seeds", "cart_add", True),
    ("the second one", "cart_add", True),
    ("basil seeds under 5 euros", "cart_add", False),
    ("I want to help the bees", "cart_add", False),
    ("will everything arrive in one parcel", "cart_clear", False),
    ("remove everything", "cart_clear", True),
    ("убери базилик", "cart_remove", True),
    ("keep all my tools together", "cart_clear", False),
])
def test_an_action_needs_words_that_ask_for_it(text: str, intent: str, stands_: bool) -> None:
    from chatpay.core.evidence import stands

    assert stands(text, intent) is stands_


async def test_the_n_one_after_a_product_picks_the_option_with_that_number() -> None:
    rt = await runtime_with()
    await say(rt, "tell me about the rose fertiliser")
    r = await say(rt, "the 5 one please")
    assert [(ln.variant_id, ln.quantity) for ln in r.cart.lines] == [("rf-5", 1)]


async def test_switch_it_to_an_option_changes_the_line_in_the_cart() -> None:
    rt = await runtime_with()
    await say(rt, "add the pruning shears")
    await say(rt, "add 2 rose fertiliser 1kg")
    r = await say(rt, "switch the fertiliser to 5kg")
    assert r.intent == "cart_add"
    assert {(ln.handle, ln.variant_id, ln.quantity) for ln in r.cart.lines} == {
        ("pruning-shears", "ps-r", 1), ("rose-fertiliser", "rf-5", 2)}


async def test_lowering_a_quantity_is_reported_as_a_removal() -> None:
    rt = await runtime_with()
    await say(rt, "add 3 basil seeds")
    r = await say(rt, "make it 1 basil seeds")
    assert r.cart.quantities() == {"basil-seeds": 1} and r.intent == "cart_remove"


async def test_a_decimal_comma_is_a_fraction_not_two_clauses() -> None:
    rt = await runtime_with()
    r = await say(rt, "add 0,5 basil seeds")
    assert r.cart.is_empty and "How many" in r.reply.text


async def test_russian_pronouns_and_one_more_refer_to_the_product_in_focus() -> None:
    rt = await runtime_with()
    await say(rt, "add the watering can")
    r = await say(rt, "ещё одну")
    assert r.cart.quantities() == {"watering-can": 2}


async def test_two_readings_the_classifier_cannot_tell_apart_get_a_button_each() -> None:
    from chatpay.config import Settings

    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    await say(rt, "add 2 basil seeds")
    r = await say(rt, "basil seeds")  # a bare name with the product in the cart: remove it, or ask about it?
    assert r.decision.clarify and r.cart.quantities() == {"basil-seeds": 2}
    datas = [b.data for row in r.reply.buttons for b in row]
    assert datas == ["r|basil-seeds", "i|basil-seeds"]
    r = await say(rt, callback_data="r|basil-seeds")
    assert r.cart.is_empty


async def test_removing_a_product_not_in_the_cart_takes_nothing_else() -> None:
    rt = await runtime_with()
    await say(rt, "add 2 basil seeds")
    r = await say(rt, "remove tomato seeds")
    assert r.cart.quantities() == {"basil-seeds": 2} and "isn't in your cart" in r.reply.text


async def test_a_word_only_a_description_holds_never_names_a_cart_line_for_removal() -> None:
    rt = await runtime_with()
    await say(rt, "add a watering can")  # its description mentions a brass rose
    r = await say(rt, "remove the brass")
    assert r.cart.quantities() == {"watering-can": 1}


async def test_and_add_after_a_removal_adds() -> None:
    rt = await runtime_with()
    await say(rt, "add 2 basil seeds and a watering can")
    await say(rt, "remove the watering can")
    r = await say(rt, "and add tomato seeds")
    assert r.cart.quantities() == {"basil-seeds": 2, "tomato-seeds": 1}


async def test_a_second_clause_that_says_which_one_adds_one_product_not_two() -> None:
    rt = await runtime_with()
    await say(rt, "what seeds do you have?")
    r = await say(rt, "add the basil one, 2 packs")
    assert len(r.cart.lines) <= 1  # never a second product nobody named


async def test_a_count_is_not_an_option_that_merely_contains_the_number() -> None:
    rt = await runtime_with()
    r = await say(rt, "add 5 of the rose fertiliser")  # options 1kg and 5kg: 5 counts here
    assert r.cart.quantities() == {"rose-fertiliser": 5}


async def test_switch_it_to_a_measurement_changes_the_cart_line_not_a_product_named_with_it() -> None:
    """'switch it to the 10 inch' replaces the skillet's option; a knife called '... 10 in' is not added."""
    from chatpay.adapters.memory import FixedClock, in_memory_stores
    from chatpay.bootstrap import build
    from chatpay.config import Settings
    from chatpay.core.catalog import Catalog, Product, Variant
    from chatpay.core.money import Money

    def usd(cents: int) -> Money:
        return Money(cents, "USD")

    catalog = Catalog.of("kitchen", "USD", [
        Product("skillet", "Cast Iron Skillet", "Pre-seasoned.", (Variant("s8", "8 in", usd(2900)),
                                                                 Variant("s10", "10 in", usd(3900)))),
        Product("bread-knife", "Serrated Bread Knife 10 in", "For crusty loaves.", (Variant("bk", "Default Title",
                                                                                             usd(4500)),)),
    ])
    rt = build(Settings(business_id="kitchen"), stores=in_memory_stores(), no_embedder=True, clock=FixedClock())
    await rt.import_catalog(catalog)
    await rt.service.handle(rt.turn("add the cast iron skillet", thread_id="t"))
    r = await rt.service.handle(rt.turn("switch it to the 10 inch", thread_id="t"))
    assert r.cart.quantities() == {"skillet": 1} and r.cart.lines[0].variant_id == "s10", r.reply.text


@pytest.mark.parametrize(("text", "asks"), [
    ("will the battery from the kit fit the saw too", True),
    ("should i get the clay mask or the sleep mask", True),
    ("does it charge my phone through the case?", True),
    ("подойдёт ли крышка к сковороде?", True),
    ("can i get four screen protectors", False),  # a polite request
    ("could you add two more", False),
    ("how do i pay for this lot", False),  # asks to act
    ("add 2 more", False),
])
def test_a_yes_no_question_about_products_is_told_from_a_request(text: str, asks: bool) -> None:
    from chatpay.core.negation import asks_rather_than_requests

    assert asks_rather_than_requests(text) is asks


async def test_a_kind_of_product_asks_which_one_and_adds_nothing_on_a_guess() -> None:
    """'add some seeds' in a shop with two seed packets asks which; it neither refuses nor picks one."""
    from tests.core.test_service import runtime_with, say

    rt = await runtime_with()
    r = await say(rt, "add some seeds")
    assert r.cart.is_empty and r.reply.text.startswith("Which one")
    assert "Tomato Seeds" in r.reply.text and "Basil Seeds" in r.reply.text
    labels = [b.label for row in r.reply.buttons for b in row]
    assert any("Tomato" in label for label in labels) and any("Basil" in label for label in labels)


@pytest.mark.parametrize(("answer", "handle"), [("the heirloom ones", "tomato-seeds"), ("sweet", "basil-seeds")])
async def test_a_word_only_one_offered_product_has_picks_it(answer: str, handle: str) -> None:
    """After "Which one would you like: A, B?" a word of one name is the choice, whatever the classifier thinks."""
    rt = await runtime_with()
    await say(rt, "add some seeds")
    r = await say(rt, answer)
    assert r.intent == "cart_add" and r.decision.layer == "context"
    assert r.cart.quantities() == {handle: 1}


async def test_a_question_about_an_offered_product_adds_nothing() -> None:
    rt = await runtime_with()
    await say(rt, "add some seeds")
    r = await say(rt, "the heirloom ones, are they organic?")
    assert r.cart.is_empty


async def test_the_option_asked_about_is_the_one_added() -> None:
    """'is the 5kg one ...?' after the rose feed was shown, then 'ok add that': the 5kg, not the default 1kg."""
    from tests.core.test_service import runtime_with, say

    rt = await runtime_with()
    await say(rt, "do you have rose fertiliser?")
    r = await say(rt, "is the 5kg one enough for a big garden?")
    assert r.intent == "enquiry" and "Rose Fertiliser" in r.reply.text
    r = await say(rt, "ok add that")
    assert r.cart.quantities() == {"rose-fertiliser": 1} and r.cart.lines[0].variant_id == "rf-5", r.reply.text


async def test_the_second_one_after_a_products_options_were_listed_is_the_second_option() -> None:
    from tests.core.test_service import runtime_with, say

    rt = await runtime_with()
    r = await say(rt, "what sizes does the rose fertiliser come in?")
    assert "1kg" in r.reply.text and "5kg" in r.reply.text
    r = await say(rt, "add the second one")
    assert r.cart.quantities() == {"rose-fertiliser": 1} and r.cart.lines[0].variant_id == "rf-5", r.reply.text


async def test_and_some_of_a_kind_after_an_add_continues_adding() -> None:
    """'and some seeds' right after an add is another add (several seeds: it asks which), not a search."""
    from tests.core.test_service import runtime_with, say

    rt = await runtime_with()
    await say(rt, "add a watering can")
    r = await say(rt, "and some seeds")
    assert r.intent == "cart_add" and r.reply.text.startswith("Which one"), r.reply.text
    assert r.cart.quantities() == {"watering-can": 1}


async def test_a_question_in_the_shops_own_policy_words_is_answered_from_the_policy() -> None:
    """The garden shop's shipping policy names 'shipping': 'is shipping free?' is no small talk."""
    from tests.core.test_service import runtime_with, say

    rt = await runtime_with()
    r = await say(rt, "hey, is shipping free?")
    assert r.intent == "enquiry", r.decision.reason


@pytest.mark.parametrize(("first", "then", "expected"), [
    (3, "сделай 1", 1),  # down: reported as a removal
    (1, "сделай 4", 4),  # up, with no noun and no pronoun
    (1, "make it 2", 2),
])
async def test_a_set_quantity_moves_the_line_either_way(first: int, then: str, expected: int) -> None:
    rt = await runtime_with()
    await say(rt, f"add {first} basil seeds")
    r = await say(rt, then)
    assert r.cart.quantities() == {"basil-seeds": expected}
    assert r.intent == ("cart_remove" if expected < first else "cart_add")


def test_a_russian_word_in_another_case_names_the_product() -> None:
    """"компрессора" is the word "компрессор", not a typo of it."""
    from chatpay.core.catalog import Catalog
    from chatpay.core.mentions import MentionIndex
    from tests.core.shop import product, variant

    catalog = Catalog.of("cars", "EUR", [
        product("pump", "Компрессор автомобильный", "Компрессор.", [variant("p", "Default Title", "49.00")]),
        product("brush", "Щётка для снега", "Щётка.", [variant("b", "Default Title", "9.00")]),
    ])
    index = MentionIndex(catalog)
    assert index.lookup("компрессора") == (("компрессор", 1.0),)
    assert [m.handle for m in index.find("две щетки")] == ["brush"]


def test_an_option_in_another_case_is_an_option() -> None:
    """"коричневые" is the option "Коричневый": the router sees VARIANT, not a product question."""
    from chatpay.core.catalog import Catalog
    from chatpay.core.mentions import MentionIndex
    from tests.core.shop import product, variant

    catalog = Catalog.of("cars", "EUR", [
        product("mats", "Коврики EVA", "Коврики.", [variant("m1", "Чёрный", "19.00"), variant("m2", "Коричневый", "19.00")]),
    ])
    delex = MentionIndex(catalog).delexicalise("ну тогда коричневые")
    assert delex.variant_words == ("коричневые",) and delex.text == "ну тогда VARIANT"


async def test_a_bare_product_name_is_answered_not_queried() -> None:
    """No word asks to add "the heirloom tomato seeds": the answer is about the product, with its
    add button, not "add it or tell you more?" (the classifier is unsure of this one)."""
    from chatpay.config import Settings

    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    r = await say(rt, "the heirloom tomato seeds")
    assert r.intent == "enquiry" and not r.decision.clarify and r.cart.is_empty
    assert "Tomato" in r.reply.text


async def test_a_yes_to_an_offer_that_names_an_option_adds_that_option() -> None:
    rt = await runtime_with()
    r = await say(rt, "tell me about the rose fertiliser")
    assert "add it to your cart" in r.reply.text
    r = await say(rt, "ok, the 5kg one then")
    assert r.cart.quantities() == {"rose-fertiliser": 1}
    assert [line.variant_id for line in r.cart.lines] == ["rf-5"]  # not the first option, 1kg


@pytest.mark.parametrize(("text", "added"), [("the red shears", False), ("can i get the red shears", True)])
async def test_a_name_and_an_option_with_nothing_shown_yet_asks_for_nothing(text: str, added: bool) -> None:
    """With no offer or list standing, "the red shears" is a product question; "can i get ..." asks."""
    from chatpay.config import Settings

    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    r = await say(rt, text)
    assert (r.cart.quantities() == {"pruning-shears": 1}) is added


async def test_a_count_of_things_without_a_name_means_the_product_in_focus() -> None:
    """"three packets please" after a product was shown: three of it, not "couldn't find"."""
    rt = await runtime_with()
    await say(rt, "tell me about the heirloom tomato seeds")
    r = await say(rt, "three packets please")
    assert r.cart.quantities() == {"tomato-seeds": 3}


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
    """"is the fertiliser ok for my nan's bonsai in cornwall?" opens the conversation: the search
    declines what it cannot place, but "fertiliser" names one product, so that is the answer."""
    from chatpay.config import Settings

    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    r = await say(rt, "is the fertiliser ok for my nan's bonsai in cornwall?")
    assert r.retrieval is not None and r.retrieval.kind == "none"  # what the search said
    assert "Rose Fertiliser" in r.reply.text and "don't sell" not in r.reply.text, r.reply.text
    r = await say(rt, "great, add it please")
    assert r.cart.quantities() == {"rose-fertiliser": 1}


async def test_fewer_without_a_number_asks_how_many_to_leave_and_the_answer_sets_it() -> None:
    """"too many basil seeds, fewer please" takes nothing on a guess (it used to empty the line)."""
    rt = await runtime_with()
    await say(rt, "add 3 basil seeds and a watering can")
    r = await say(rt, "that's too many basil seeds, fewer please")
    assert r.cart.quantities() == {"basil-seeds": 3, "watering-can": 1}
    assert "How many should I leave" in r.reply.text
    r = await say(rt, "just 2")
    assert r.cart.quantities() == {"basil-seeds": 2, "watering-can": 1}


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
