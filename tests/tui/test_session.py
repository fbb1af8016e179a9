"""Session bookkeeping: costs per turn and session, and the export as an eval case."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from chatpay.core.cart import Cart
from chatpay.core.routing import RouteDecision
from chatpay.core.service import TurnResult
from chatpay.core.telemetry import Trace, UsageRecord
from chatpay.core.turns import Reply, Turn
from chatpay_tui.costs import sparkline
from chatpay_tui.session import button_as_text, conversation_case, format_usd, session_cost, turn_cost

from .conftest import small_shop

AT = datetime(2026, 1, 1, tzinfo=UTC)


def usage(kind: str, model: str, prompt: int, completion: int, cost: Decimal | None) -> UsageRecord:
    return UsageRecord("demo", "t", "turn", "enquiry", kind, model, model, prompt, completion,  # type: ignore[arg-type]
                       cost, 1.0, AT)


def result(text: str = "hi", *, callback: str | None = None, records: list[UsageRecord] | None = None,
           cart: Cart | None = None, intent: str = "chitchat", engine: str = "offline") -> TurnResult:
    turn = Turn("demo", "t", "turn", text=text, callback_data=callback)
    return TurnResult(turn=turn, reply=Reply("ok"), decision=RouteDecision(intent, 0.9), trace=Trace("turn"),
                      cart=cart or Cart("demo", "t"), catalog=small_shop(), engine=engine, usage=records or [])


def test_an_offline_turn_costs_nothing_and_names_the_offline_engine() -> None:
    cost = turn_cost(1, result(records=[usage("offline", "offline", 0, 0, Decimal(0))]))
    assert (cost.model_label, cost.calls, cost.prompt_tokens, cost.cost_usd) == ("offline", 0, 0, Decimal(0))
    assert format_usd(cost.cost_usd) == "$0"


def test_model_turns_add_tokens_and_cost_and_an_unpriced_call_makes_the_cost_unknown() -> None:
    priced = turn_cost(1, result(engine="gpt-4o-mini", records=[
        usage("chat", "gpt-4o-mini", 100, 20, Decimal("0.000027")),
        usage("chat", "gpt-4o-mini", 50, 10, Decimal("0.0000135")),
    ]))
    assert (priced.models, priced.calls, priced.prompt_tokens, priced.completion_tokens) == (("gpt-4o-mini",), 2, 150, 30)
    assert priced.cost_usd == Decimal("0.0000405") and format_usd(priced.cost_usd) == "$0.000041"
    unknown = turn_cost(2, result(records=[usage("chat", "local-llama", 10, 5, None)]))
    assert unknown.cost_usd is None and format_usd(unknown.cost_usd) == "unknown"
    total = session_cost([priced, unknown])
    assert total.cost_usd is None and total.known_cost_usd == Decimal("0.0000405") and total.unknown_turns == 1
    assert (total.turns, total.calls, total.prompt_tokens, total.completion_tokens) == (2, 3, 160, 35)


def test_sparkline_is_one_bar_per_turn_scaled_from_zero() -> None:
    assert sparkline([0.0, 0.0, 0.0], 10) == "▁▁▁"
    assert sparkline([0.0, 0.5, 1.0], 10) == "▁▅█"
    assert sparkline([1.0] * 30, 5) == "█" * 5


def test_buttons_are_exported_as_the_phrase_they_stand_for() -> None:
    catalog = small_shop()
    assert button_as_text("a|sunrise-light-roast", catalog) == "add Sunrise Light Roast to my cart"
    assert button_as_text("a|sunrise-light-roast|sl-1k", catalog) == "add Sunrise Light Roast 1kg to my cart"
    assert button_as_text("r|house-espresso", catalog) == "remove House Espresso Blend from my cart"
    assert button_as_text("i|house-espresso", catalog) == "tell me about House Espresso Blend"
    assert button_as_text("v", catalog) == "show my cart"
    assert button_as_text("p", catalog) == "checkout"


def test_the_case_records_intent_whole_cart_and_subtotal_after_each_turn() -> None:
    catalog = small_shop()
    espresso = catalog.get("house-espresso")
    assert espresso is not None
    one = Cart("demo", "t").add(espresso, None, 2)
    case = conversation_case("two espressos", [
        result("hello"),
        result("", callback="a|house-espresso", cart=one, intent="cart_add"),
    ])
    assert case == {"name": "two espressos", "turns": [
        {"user": "hello", "intent": "chitchat", "cart": {}, "subtotal": "0.00"},
        {"user": "add House Espresso Blend to my cart", "intent": "cart_add", "cart": {"house-espresso": 2},
         "subtotal": "20.00"},
    ]}
