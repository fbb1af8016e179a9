"""What the TUI keeps about a session: turn results, their costs, and the export as an eval case.

Nothing here draws; the panes read these values, and the tests check them directly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from chatpay.core.agents.cart import cart_view
from chatpay.core.buttons import decode, resolve
from chatpay.core.catalog import Catalog
from chatpay.core.service import TurnResult
from chatpay.core.turns import CartView

BUTTON_PHRASES = {"view": "show my cart", "pay": "checkout", "clear": "clear my cart",
                  "confirm_clear": "clear my cart"}


@dataclass(frozen=True)
class TurnCost:
    """Tokens and cost of one turn. ``cost_usd`` is None when any call's price is unknown."""

    index: int
    engine: str
    models: tuple[str, ...]
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal | None

    @property
    def model_label(self) -> str:
        return ", ".join(self.models) if self.models else self.engine


@dataclass(frozen=True)
class SessionCost:
    turns: int
    calls: int
    prompt_tokens: int
    completion_tokens: int
    known_cost_usd: Decimal
    unknown_turns: int

    @property
    def cost_usd(self) -> Decimal | None:
        return None if self.unknown_turns else self.known_cost_usd


def turn_cost(index: int, result: TurnResult) -> TurnCost:
    """Sum a turn's usage records; offline records count as zero-token, zero-cost turns."""
    calls = [u for u in result.usage if u.kind != "offline"]
    costs = [u.cost_usd for u in result.usage]
    cost = None if any(c is None for c in costs) else sum((c for c in costs if c is not None), Decimal(0))
    models = tuple(dict.fromkeys(u.model for u in calls))
    return TurnCost(
        index=index, engine=result.engine, models=models, calls=len(calls),
        prompt_tokens=sum(u.prompt_tokens for u in result.usage),
        completion_tokens=sum(u.completion_tokens for u in result.usage), cost_usd=cost,
    )


def session_cost(costs: Sequence[TurnCost]) -> SessionCost:
    return SessionCost(
        turns=len(costs), calls=sum(c.calls for c in costs),
        prompt_tokens=sum(c.prompt_tokens for c in costs),
        completion_tokens=sum(c.completion_tokens for c in costs),
        known_cost_usd=sum((c.cost_usd for c in costs if c.cost_usd is not None), Decimal(0)),
        unknown_turns=sum(1 for c in costs if c.cost_usd is None),
    )


def format_usd(cost: Decimal | None) -> str:
    """``$0`` for free, six decimals below a cent, four above; ``unknown`` when not priced."""
    if cost is None:
        return "unknown"
    if cost == 0:
        return "$0"
    places = Decimal("0.000001") if cost < Decimal("0.01") else Decimal("0.0001")
    return f"${cost.quantize(places, rounding=ROUND_HALF_UP)}"


def result_cart(result: TurnResult) -> CartView | None:
    """The cart after a turn, priced by that turn's catalog (None without a catalog)."""
    if result.catalog is None:
        return None
    return cart_view(result.cart, result.catalog)


def user_text(result: TurnResult, label: str | None = None) -> str:
    """What the shopper did in a turn, as a line of the chat: their text or the button pressed."""
    turn = result.turn
    if turn.text:
        return turn.text
    if turn.callback_data:
        return f"[{label or turn.callback_data}]"
    return ""


def button_as_text(data: str, catalog: Catalog | None) -> str:
    """A typed equivalent of a button press, so an exported case replays through the text engine."""
    action = decode(data)
    if action is None:
        return data
    if action.kind in BUTTON_PHRASES:
        return BUTTON_PHRASES[action.kind]
    product = resolve(catalog, action.product) if catalog is not None else None
    if product is None:
        return data
    name = product.name
    if action.kind == "add":
        try:
            variant = product.variant(action.variant) if action.variant else None
        except KeyError:
            variant = None
        if variant is not None and not variant.is_default:
            name = f"{name} {variant.title}"
        return f"add {name} to my cart"
    if action.kind == "remove":
        return f"remove {name} from my cart"
    return f"tell me about {name}"


def conversation_case(name: str, results: Sequence[TurnResult]) -> dict[str, Any]:
    """The turns of one thread as a ``conversations`` eval case (see docs/formats.md).

    Each turn records the intent the router chose and the whole cart after it, with the
    subtotal as a decimal string, so replaying the case checks this session's behaviour.
    Button presses are written as the typed phrase they stand for.
    """
    turns: list[dict[str, Any]] = []
    for r in results:
        said = r.turn.text or (button_as_text(r.turn.callback_data, r.catalog) if r.turn.callback_data else "")
        if not said.strip():
            continue
        entry: dict[str, Any] = {"user": said, "intent": r.decision.intent}
        view = result_cart(r)
        if view is not None:
            quantities: dict[str, int] = {}
            for line in view.lines:
                quantities[line.handle] = quantities.get(line.handle, 0) + line.quantity
            entry["cart"] = quantities
            entry["subtotal"] = view.subtotal.amount_str()
        turns.append(entry)
    return {"name": name, "turns": turns}


def append_case(path: Path, case: dict[str, Any]) -> None:
    """Append one case as a JSON line (a cases file collects many sessions)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(case, ensure_ascii=False) + "\n")
