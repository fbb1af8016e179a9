"""Checkout completes on the embedded default: the sandbox confirms a test order and empties the cart."""

from __future__ import annotations

from chatpay.core.turns import PaymentEvent
from tests.core.test_service import runtime_with, say


async def test_checkout_then_the_button_confirms_a_test_order_for_the_carts_total() -> None:
    rt = await runtime_with()
    await say(rt, "add 2 basil seeds and a watering can")
    r = await say(rt, "checkout")
    assert r.intent == "payments" and "test mode" in r.reply.text
    assert r.cart.quantities() == {"basil-seeds": 2, "watering-can": 1}
    r = await say(rt, callback_data="p")
    assert r.cart.is_empty
    assert "Test order" in r.reply.text and "no money moved" in r.reply.text and "€39.60" in r.reply.text
    paid = [e for e in r.events if e.name == "OrderPaid"]
    assert len(paid) == 1 and paid[0].data["total_minor"] == 3960 and paid[0].data["provider"] == "sandbox"


async def test_a_payment_that_does_not_match_the_cart_confirms_nothing() -> None:
    rt = await runtime_with()
    await say(rt, "add 2 basil seeds")
    forged = PaymentEvent(kind="successful_payment", payload="made-up", currency="EUR", total_minor=1,
                          provider_charge_id="x1")
    turn = rt.turn(thread_id="t1")
    from dataclasses import replace

    r = await rt.service.handle(replace(turn, payment=forged))
    assert "confirmed" not in r.reply.text and "doesn't match" in r.reply.text
    assert r.cart.quantities() == {"basil-seeds": 2}
