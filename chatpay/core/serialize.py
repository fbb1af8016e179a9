"""Plain-JSON views of replies and turn results, for the CLI, evals, transcripts and the TUI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatpay.core.money import Money
from chatpay.core.turns import Button, CartView, ProductCard, Reply

if TYPE_CHECKING:
    from chatpay.core.service import TurnResult


def money(m: Money) -> dict[str, str]:
    return {"amount": m.amount_str(), "currency": m.currency}


def button(b: Button) -> dict[str, str]:
    return {"label": b.label, **({"data": b.data} if b.data else {}), **({"url": b.url} if b.url else {})}


def card(c: ProductCard) -> dict[str, Any]:
    return {
        "handle": c.handle, "title": c.title, "price": money(c.price), "description": c.description,
        "image_url": c.image_url, "available": c.available, "buttons": [button(b) for b in c.buttons],
    }


def cart(view: CartView | None) -> dict[str, Any] | None:
    if view is None:
        return None
    return {
        "lines": [
            {"handle": ln.handle, "title": ln.title, "variant": ln.variant, "quantity": ln.quantity,
             "unit_price": ln.unit_price.amount_str(), "total": ln.total.amount_str()}
            for ln in view.lines
        ],
        "items": view.item_count,
        "subtotal": view.subtotal.amount_str(),
        "currency": view.subtotal.currency,
    }


def reply(r: Reply) -> dict[str, Any]:
    out: dict[str, Any] = {"text": r.text}
    if r.cards:
        out["cards"] = [card(c) for c in r.cards]
    if r.buttons:
        out["buttons"] = [[button(b) for b in row] for row in r.buttons]
    if r.quick_replies:
        out["quick_replies"] = list(r.quick_replies)
    if r.invoice:
        out["invoice"] = {"title": r.invoice.title, "currency": r.invoice.currency,
                          "prices": [list(p) for p in r.invoice.prices], "payload": r.invoice.payload}
    return out


def result(res: TurnResult, *, timings: bool = True) -> dict[str, Any]:
    """One turn as JSON: the reply, the routing decision, the cart after it, usage and trace."""
    catalog = res.catalog
    cart_view = None
    if catalog is not None:
        from chatpay.core.agents.cart import cart_view as make_view

        cart_view = make_view(res.cart, catalog)
    prompt = sum(u.prompt_tokens for u in res.usage)
    completion = sum(u.completion_tokens for u in res.usage)
    costs = [u.cost_usd for u in res.usage]
    out: dict[str, Any] = {
        "turn_id": res.turn.turn_id,
        "thread_id": res.turn.thread_id,
        "business_id": res.turn.business_id,
        "user": res.turn.text or res.turn.callback_data or "",
        "intent": res.decision.intent,
        "decision": res.decision.as_attrs(),
        "reply": reply(res.reply),
        "cart": cart(cart_view),
        "engine": res.engine,
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "cost_usd": None if any(c is None for c in costs) else str(sum(c for c in costs if c is not None)),
            "calls": sum(1 for u in res.usage if u.kind != "offline"),
        },
        "trace": res.trace.to_dict(timings=timings),
    }
    if res.error:
        out["error"] = res.error
    return out
