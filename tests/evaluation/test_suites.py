"""The suite runners score what the engine did, per docs/formats.md."""

from __future__ import annotations

from chatpay.evaluation.cases import (
    Conversation,
    ConversationTurn,
    HistoryMessage,
    RetrievalCase,
    RoutingCase,
)
from chatpay.evaluation.suites import run_conversations, run_retrieval, run_routing
from tests.evaluation.fakes import CATALOG, FakeRuntime, Outcome, product

CONTRACT_KEYS = {"suite", "cases", "engine", "llm_calls", "prompt_tokens", "completion_tokens", "cost_usd",
                 "seconds", "failures"}


async def test_routing_replays_history_user_turns_on_the_case_thread_first() -> None:
    rt = FakeRuntime({"yes": Outcome("cart_add"), "hi": Outcome("chitchat")})
    case = RoutingCase("yes", "cart_add", (HistoryMessage("user", "tell me about the mug"),
                                           HistoryMessage("assistant", "Want it?")))
    summary = await run_routing([RoutingCase("hi", "chitchat"), case], rt)
    assert rt.ran == [("eval-routing-1", "hi"), ("eval-routing-2", "tell me about the mug"), ("eval-routing-2", "yes")]
    assert summary["accuracy"] == 1.0 and summary["turns_run"] == 2  # history turns are not scored


async def test_routing_scores_confusion_clarify_and_model_share() -> None:
    rt = FakeRuntime({
        "do you have mugs?": Outcome("enquiry", 0.9),
        "I want the mug": Outcome("enquiry", 0.55, would_call_model=True),
        "hmm": Outcome("chitchat", 0.2, clarify=True, would_call_model=True),
        "clear it": Outcome("cart_clear", 0.95),
    })
    cases = [RoutingCase("do you have mugs?", "enquiry"), RoutingCase("I want the mug", "cart_add"),
             RoutingCase("hmm", "chitchat"), RoutingCase("clear it", "cart_clear")]
    s = await run_routing(cases, rt)
    assert CONTRACT_KEYS <= set(s) and {"accuracy", "per_intent", "confusion"} <= set(s)
    assert s["suite"] == "routing" and s["cases"] == 4 and s["engine"] == "offline" and s["llm_calls"] == 0
    assert s["accuracy"] == 0.5
    assert s["confusion"]["cart_add"]["enquiry"] == 1
    assert s["confusion"]["chitchat"]["clarify"] == 1  # asking back is its own outcome, never a right answer
    assert "clarify" not in s["confusion"]  # ... and never an expected row
    assert s["per_intent"]["enquiry"]["precision"] == 0.5
    assert s["model_share"] == 0.5
    assert [f["case"]["text"] for f in s["failures"]] == ["I want the mug", "hmm"]
    assert s["failures"][0]["got"]["intent"] == "enquiry"
    assert sum(s["confidence_histogram"]["wrong"]) == 2 and s["confidence_histogram"]["right"][9] == 2


async def test_retrieval_hits_none_and_all_rules() -> None:
    rt = FakeRuntime({
        "mug": Outcome(kind="products", ranked=("mug", "cup")),
        "something to drink from": Outcome(kind="products", ranked=("kettle", "tea", "cup", "mug")),
        "returns?": Outcome(kind="policy", ranked=("policy:returns", "mug")),
        "wine": Outcome(kind="none"),
        "bicycle": Outcome(kind="products", ranked=("kettle",)),
        "what do you sell": Outcome(kind="overview", ranked=("mug", "kettle", "tea")),
        "anything?": Outcome(kind="overview", ranked=("mug", "kettle")),
        "a teapot": Outcome("cart_add"),  # routed away: the enquiry agent never ran
    })
    cases = [RetrievalCase("mug", ("mug",)), RetrievalCase("something to drink from", ("mug", "cup")),
             RetrievalCase("returns?", ("policy:returns",)), RetrievalCase("a teapot", ("kettle",)),
             RetrievalCase("wine", "NONE"), RetrievalCase("bicycle", "NONE"),
             RetrievalCase("what do you sell", "ALL"), RetrievalCase("anything?", "ALL")]
    s = await run_retrieval(cases, rt, through_router=True)
    assert set(rt.forced) == {None}
    assert {"hit_at_1", "hit_at_3", "mrr", "abstain_accuracy", "all_accuracy"} <= set(s)
    assert (s["hit_at_1"], s["hit_at_3"]) == (0.5, 0.75)
    assert s["mrr"] == round((1 + 1 / 3 + 1 + 0) / 4, 4)
    assert s["abstain_accuracy"] == 0.5 and s["all_accuracy"] == 0.5  # two of four products is not ALL
    assert s["retrieval_ran"] == 0.875
    rt.forced.clear()
    await run_retrieval(cases, rt)  # the contract: what the enquiry agent returns, so it runs every query
    assert rt.forced == ["enquiry"] * len(cases)
    routed_away = next(f for f in s["failures"] if f["case"]["query"] == "a teapot")
    assert routed_away["got"] == {"intent": "cart_add", "kind": None, "ranked": [], "products": 0}


async def test_retrieval_through_the_router_asks_each_query_on_a_thread_of_its_own() -> None:
    rt = FakeRuntime({"mug": Outcome(kind="products", ranked=("mug",)), "cup": Outcome(kind="products", ranked=("cup",))})
    cases = [RetrievalCase("mug", ("mug",)), RetrievalCase("cup", ("cup",))]
    await run_retrieval(cases, rt)
    await run_retrieval(cases, rt, through_router=True)  # the eval runs both on one runtime
    threads = [thread for thread, _ in rt.ran]
    assert len(set(threads)) == 4, rt.ran  # never the second turn of a thread that already asked it


async def test_all_means_every_product_of_a_store_smaller_than_three() -> None:
    from chatpay.core.catalog import Catalog

    small = Catalog.of("shop", "EUR", [product("mug"), product("cup")])
    rt = FakeRuntime({"what do you sell": Outcome(kind="overview", ranked=("mug", "cup"))}, catalog=small)
    s = await run_retrieval([RetrievalCase("what do you sell", "ALL")], rt)
    assert s["all_accuracy"] == 1.0 and s["hit_at_1"] is None and s["abstain_accuracy"] is None


async def test_conversations_check_whole_cart_decimal_subtotal_and_reply_text() -> None:
    rt = FakeRuntime({
        "add two mugs": Outcome("cart_add", cart={"mug": 2}, text="Added **2 × Mug**."),
        "and a cup": Outcome("cart_add", cart={"mug": 2, "cup": 1}, cards=("cup",)),
        "show cart": Outcome("cart_view", cart={"mug": 2, "cup": 1}, text="Here you go"),
    })
    good = Conversation("good", (
        ConversationTurn("add two mugs", "cart_add", {"mug": 2}, "17.0", ("2 × mug",)),
        ConversationTurn("and a cup", None, {"mug": 2, "cup": 1}, None, ("CARD CUP",)),
        ConversationTurn("show cart", "cart_view", None, "22.00", ("subtotal",)),  # the cart's own text counts
    ))
    bad = Conversation("bad", (
        ConversationTurn("add two mugs", "cart_remove", {"mug": 2}),
        ConversationTurn("and a cup", "cart_add", {"cup": 1}, "5.00", ("kettle",)),
        ConversationTurn("show cart", "cart_view"),
    ))
    s = await run_conversations([good, bad], rt)
    assert {"conversations_passed", "turns", "turns_passed", "turn_accuracy"} <= set(s)
    assert (s["conversations_passed"], s["turns"], s["turns_passed"]) == (1, 6, 4)
    assert s["turn_accuracy"] == round(4 / 6, 4)
    [failure] = s["failures"]
    assert failure["case"]["name"] == "bad"
    problems = {g["turn"]: g["problems"] for g in failure["got"]}
    assert problems[0] == ["intent cart_add instead of cart_remove"]
    assert problems[1] == ["cart {'mug': 2, 'cup': 1} instead of {'cup': 1}", "subtotal 22.00 instead of 5.00",
                           "reply lacks 'kettle'"]
    assert len(rt.ran) == 6 and rt.ran[3][0] != rt.ran[0][0]  # each conversation on a thread of its own


def test_the_fake_catalog_prices_are_what_the_checks_expect() -> None:
    assert CATALOG.get("mug").price.amount_str() == "8.50"  # type: ignore[union-attr]


async def test_emptying_a_cart_when_asked_is_no_destructive_error_but_a_removal_on_a_guess_is() -> None:
    rt = FakeRuntime({
        "add two mugs": Outcome("cart_add", cart={"mug": 2}),
        "empty my cart": Outcome("cart_clear", cart={}),
        "what mugs do you have": Outcome("enquiry", cart={}),
    })
    asked = Conversation("asked", (
        ConversationTurn("add two mugs", "cart_add", {"mug": 2}),
        # The case expected a question first; a one-line cart is emptied at once, as asked.
        ConversationTurn("empty my cart", "cart_clear", {"mug": 2}),
    ))
    guessed = Conversation("guessed", (
        ConversationTurn("add two mugs", "cart_add", {"mug": 2}),
        ConversationTurn("what mugs do you have", "enquiry", {"mug": 2}),
    ))
    assert (await run_conversations([asked], rt))["destructive_errors"] == 0
    assert (await run_conversations([guessed], rt))["destructive_errors"] == 1
