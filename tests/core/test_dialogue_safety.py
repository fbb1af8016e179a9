"""A cart the shopper can trust: nothing taken away on a guess, odd quantities asked about."""

from __future__ import annotations

import pytest

from chatpay.config import Settings
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


async def test_fewer_without_a_number_asks_how_many_to_leave_and_the_answer_sets_it() -> None:
    """"too many basil seeds, fewer please" takes nothing on a guess (it used to empty the line)."""
    rt = await runtime_with()
    await say(rt, "add 3 basil seeds and a watering can")
    r = await say(rt, "that's too many basil seeds, fewer please")
    assert r.cart.quantities() == {"basil-seeds": 3, "watering-can": 1}
    assert "How many should I leave" in r.reply.text
    r = await say(rt, "just 2")
    assert r.cart.quantities() == {"basil-seeds": 2, "watering-can": 1}


async def test_a_removal_verb_misspelt_by_a_dropped_or_swapped_letter_still_removes() -> None:
    """"rmove", "delet": the classifier reads a removal; the words that must ask for it allow a slip
    (six-letter cues, a letter dropped or two swapped), never a different word such as "remote"."""
    from chatpay.core.evidence import has_cue

    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    await say(rt, "add 2 basil seeds and a watering can")
    r = await say(rt, "rmove the watering can")
    assert r.cart.quantities() == {"basil-seeds": 2}
    assert has_cue("remvoe the can", "cart_remove") and not has_cue("the remote one", "cart_remove")


async def test_a_count_corrected_with_not_sets_the_line_to_the_count_kept() -> None:
    """"only 1 basil seeds not 3" lowers the line to 1; the corrected count is not taken as a second
    quantity ("actually just one ... not five" left five before)."""
    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    await say(rt, "add 3 basil seeds and a watering can")
    r = await say(rt, "only 1 basil seeds not 3")
    assert r.cart.quantities() == {"basil-seeds": 1, "watering-can": 1}
    await say(rt, "add 4 more basil seeds")
    r = await say(rt, "actually just one basil seeds not five")
    assert r.cart.quantities() == {"basil-seeds": 1, "watering-can": 1}


@pytest.mark.parametrize("nlu", ["legacy", "fitted"])
async def test_a_quantity_set_on_words_naming_other_products_leaves_the_line_in_focus_alone(nlu: str) -> None:
    """"make it 1 seed packet" while seeds are being chosen says nothing about the watering cans in focus:
    it set the cans to 1 (a destructive error) before."""
    rt = await runtime_with(settings=Settings(business_id="garden", nlu=nlu))
    await say(rt, "add 3 watering cans")
    await say(rt, "add seeds")
    r = await say(rt, "make it 1 seed packet")
    assert r.cart.quantities()["watering-can"] == 3


@pytest.mark.parametrize("nlu", ["legacy", "fitted"])
@pytest.mark.parametrize("text", ["take everything out of the basket", "throw it all out", "bin the lot",
                                  "delete my whole cart", "убери всё из корзины"])
async def test_a_verb_that_takes_away_and_everything_asks_to_empty_the_cart(nlu: str, text: str) -> None:
    """A particle apart from its verb ("take everything out") or "the lot" for everything: the classifier
    read these as product questions or was unsure. Emptying a cart of several lines still asks first."""
    rt = await runtime_with(settings=Settings(business_id="garden", nlu=nlu))
    await say(rt, "add 2 basil seeds and a watering can")
    r = await say(rt, text)
    assert r.intent == "cart_clear" and r.cart.quantities() == {"basil-seeds": 2, "watering-can": 1}
    assert "3" in r.reply.text and r.reply.buttons[0][0].data.startswith("cy|")  # "Empty your cart (3 items)?"


@pytest.mark.parametrize(("text", "empties"), [
    ("take everything out", True), ("chuck it all out", True),
    ("take it all", False),  # buys it all
    ("clear it", False),  # the line in focus
    ("remove all the basil seeds", False),  # one line
    ("take everything", False),
])
def test_what_asks_to_empty_the_cart(text: str, empties: bool) -> None:
    from chatpay.core.evidence import asks_to_empty

    assert asks_to_empty(text) is empties


@pytest.mark.parametrize("text", ["how's your day going", "see ya"])
async def test_small_talk_without_small_talk_words_is_not_told_we_do_not_sell_it(text: str) -> None:
    """With the fitted engine the search decides whether small talk describes something sold; before,
    a greeting without a word from the small-talk list was sent to product search and declined."""
    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    r = await say(rt, text)
    assert r.intent == "chitchat"


async def test_a_removal_names_the_line_of_its_own_clause_not_of_the_reason_given() -> None:
    """"remove the watering can, the seeds already came with one" takes the can out; the seeds, named
    in the clause that gives the reason, stay (it asked which of the two before)."""
    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    await say(rt, "add 2 basil seeds and a watering can")
    r = await say(rt, "actually remove the watering can, the basil seeds kit already has a can")
    assert r.cart.quantities() == {"basil-seeds": 2}, r.reply.text


@pytest.mark.parametrize("nlu", ["legacy", "fitted"])
async def test_a_count_of_a_named_product_asked_for_politely_is_added_not_queried(nlu: str) -> None:
    rt = await runtime_with(settings=Settings(business_id="garden", nlu=nlu))
    r = await say(rt, "can i get four watering cans for the allotment")
    assert r.cart.quantities() == {"watering-can": 4}, r.reply.text


async def test_a_count_that_counts_something_else_adds_nothing() -> None:
    """"a watering can for a 4 year old?" counts years: a question, not an order of four."""
    rt = await runtime_with(settings=Settings(business_id="garden", nlu="fitted"))
    r = await say(rt, "a watering can for a 4 year old?")
    assert r.cart.is_empty and r.intent != "cart_add"
