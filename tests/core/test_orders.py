"""Orders and payments through the turn service: money moves once, for the order's own total.

Telegram-style invoices come from the in-memory provider twin; the same flows run through the
worker, a real redis-server and the Bot API stand-in in ``tests/worker/test_payments_e2e.py``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatpay.adapters.memory import InMemoryOrderStore, InMemoryPaymentProvider
from chatpay.adapters.mongo import embedded_database, mongo_stores
from chatpay.core.cart import Cart
from chatpay.core.checkout import order_from_cart, settle
from chatpay.core.orders import REFUND_NEEDED, ConfirmedPayment, Order, OrderError
from chatpay.core.turns import PaymentEvent
from tests.core.shop import garden_shop, product, variant
from tests.core.test_service import runtime_with, say

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def pay(rt, kind: str, payload: str, total: int, *, charge: str = "ch-1", currency: str = "EUR",
              thread: str = "t1"):  # type: ignore[no-untyped-def]
    event = PaymentEvent(kind=kind, payload=payload, currency=currency, total_minor=total,  # type: ignore[arg-type]
                         query_id="q1" if kind == "pre_checkout" else None,
                         provider_charge_id=None if kind == "pre_checkout" else charge)
    return await rt.service.handle(replace(rt.turn(thread_id=thread), payment=event))


async def invoiced(rt):  # type: ignore[no-untyped-def]
    await say(rt, "add 2 basil seeds and a watering can")
    r = await say(rt, callback_data="p")
    assert r.reply.invoice is not None
    return r.reply.invoice


async def test_checkout_makes_a_pending_order_whose_invoice_has_the_exact_total() -> None:
    rt = await runtime_with(payments=InMemoryPaymentProvider())
    invoice = await invoiced(rt)
    [order] = await rt.stores.orders.list("garden")  # type: ignore[union-attr]
    assert order.state == "pending" and invoice.payload == order.id
    assert sum(a for _, a in invoice.prices) == order.total_minor == 2 * 280 + 3400
    assert [(ln.handle, ln.quantity, ln.unit_minor) for ln in order.lines] == [("basil-seeds", 2, 280),
                                                                             ("watering-can", 1, 3400)]


async def test_a_payment_delivered_three_times_makes_one_paid_order_one_receipt_and_an_empty_cart() -> None:
    rt = await runtime_with(payments=InMemoryPaymentProvider())
    invoice = await invoiced(rt)
    pre = await pay(rt, "pre_checkout", invoice.payload, 3960)
    assert pre.reply.data == {"pre_checkout_ok": True}
    replies = [await pay(rt, "successful_payment", invoice.payload, 3960) for _ in range(3)]
    assert "Payment received" in replies[0].reply.text and "€39.60" in replies[0].reply.text
    assert [r.reply.text for r in replies[1:]] == ["", ""]  # nothing sent for a repeat
    assert replies[-1].cart.is_empty
    [order] = await rt.stores.orders.list("garden")  # type: ignore[union-attr]
    assert (order.state, order.provider_payment_id, order.paid_minor) == ("paid", "ch-1", 3960)
    r = await say(rt, "/orders")
    assert order.number in r.reply.text and "paid" in r.reply.text
    r = await say(rt, "did my payment go through?")
    assert r.intent == "payments" and f"Your latest order **{order.number}**" in r.reply.text


async def test_a_price_changed_between_invoice_and_pre_checkout_is_refused_with_the_reason() -> None:
    rt = await runtime_with(payments=InMemoryPaymentProvider())
    invoice = await invoiced(rt)
    dearer = garden_shop()
    products = dict(dearer.products)
    products["basil-seeds"] = product("basil-seeds", "Sweet Basil Seeds", "Genovese basil.",
                                      [variant("bs", "Default Title", "3.10")], "Seeds")
    await rt.import_catalog(replace(dearer, products=products))
    r = await pay(rt, "pre_checkout", invoice.payload, 3960)
    assert r.reply.data["pre_checkout_ok"] is False
    assert "price of Sweet Basil Seeds changed from €2.80 to €3.10" in r.reply.data["error"]


async def test_pre_checkout_refuses_a_changed_cart_a_wrong_total_and_an_unknown_invoice() -> None:
    rt = await runtime_with(payments=InMemoryPaymentProvider())
    invoice = await invoiced(rt)
    r = await pay(rt, "pre_checkout", invoice.payload, 3959)
    assert r.reply.data["pre_checkout_ok"] is False and "amount" in r.reply.data["error"]
    r = await pay(rt, "pre_checkout", "made-up", 3960)
    assert r.reply.data["pre_checkout_ok"] is False
    await say(rt, "add a tomato seeds")
    r = await pay(rt, "pre_checkout", invoice.payload, 3960)
    assert r.reply.data["pre_checkout_ok"] is False and "cart changed" in r.reply.data["error"]


async def test_a_forged_or_short_payment_confirms_nothing_and_keeps_the_cart() -> None:
    rt = await runtime_with(payments=InMemoryPaymentProvider())
    invoice = await invoiced(rt)
    r = await pay(rt, "successful_payment", "made-up", 1, charge="forged")
    assert "confirmed" not in r.reply.text and "doesn't match any order" in r.reply.text
    r = await pay(rt, "successful_payment", invoice.payload, 1, charge="short")
    assert "not confirmed" in r.reply.text and r.cart.quantities() == {"basil-seeds": 2, "watering-can": 1}
    [order] = await rt.stores.orders.list("garden")  # type: ignore[union-attr]
    assert order.state == "pending" and "payment_mismatch" in order.flags


async def test_a_paid_order_whose_item_sold_out_meanwhile_is_flagged_for_a_refund() -> None:
    rt = await runtime_with(payments=InMemoryPaymentProvider())
    invoice = await invoiced(rt)
    gone = garden_shop()
    products = dict(gone.products)
    products["watering-can"] = product("watering-can", "Galvanised Watering Can", "Ten litre can.",
                                       [variant("wc", "Default Title", "34.00", available=False)], "Tools")
    await rt.import_catalog(replace(gone, products=products))
    r = await pay(rt, "successful_payment", invoice.payload, 3960)
    assert "sold out" in r.reply.text and "refund" in r.reply.text
    [order] = await rt.stores.orders.list("garden")  # type: ignore[union-attr]
    assert order.state == "paid" and REFUND_NEEDED in order.flags


async def test_the_sandbox_order_is_stored_and_listed() -> None:
    rt = await runtime_with()
    await say(rt, "add 2 basil seeds")
    r = await say(rt, callback_data="p")
    assert "Test order" in r.reply.text and r.cart.is_empty
    [order] = await rt.stores.orders.list("garden")  # type: ignore[union-attr]
    assert (order.state, order.provider, order.total_minor) == ("paid", "sandbox", 560)
    r = await say(rt, "where is my order?")
    assert r.intent == "payments" and order.number in r.reply.text


async def test_paysupport_and_terms_answer_as_telegram_requires() -> None:
    rt = await runtime_with()
    assert "order number" in (await say(rt, "/paysupport")).reply.text
    assert "prices" in (await say(rt, "/terms")).reply.text.lower()


def test_the_state_machine_refuses_what_a_merchant_could_not_explain() -> None:
    cart = Cart("b", "t").add(garden_shop().get("basil-seeds"), None, 2)  # type: ignore[arg-type]
    order = order_from_cart(cart, garden_shop(), provider="sandbox", at=NOW)
    with pytest.raises(OrderError, match="cannot go from pending to refunded"):
        order.to("refunded", NOW)
    paid = order.to("paid", NOW, "x")
    assert [t.state for t in paid.to("fulfilled", NOW).to("refunded", NOW).history] == ["paid", "fulfilled",
                                                                                         "refunded"]
    with pytest.raises(OrderError):
        paid.to("pending", NOW)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- property

EVENT = st.tuples(st.sampled_from(["pay", "pay", "short", "other_order"]), st.sampled_from(["c1", "c2", "c3"]))
LINES = st.lists(st.tuples(st.sampled_from(["basil-seeds", "tomato-seeds", "watering-can", "rose-fertiliser"]),
                           st.integers(1, 5)), min_size=1, max_size=4)


@pytest.mark.parametrize("backend", ["memory", "mongomock"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=LINES, events=st.lists(EVENT, min_size=1, max_size=8))
async def test_payments_in_any_order_never_double_an_order_and_totals_equal_lines(
        backend: str, lines: list[tuple[str, int]], events: list[tuple[str, str]]) -> None:
    orders = InMemoryOrderStore() if backend == "memory" else mongo_stores(embedded_database()).orders
    assert orders is not None
    catalog = garden_shop()
    cart = Cart("garden", "t")
    for handle, qty in lines:
        cart = cart.add(catalog.get(handle), None, qty)  # type: ignore[arg-type]
    order: Order = await orders.create(order_from_cart(cart, catalog, provider="telegram", at=NOW))
    for kind, charge in events:
        total = order.total_minor - (1 if kind == "short" else 0)
        target = order.id if kind != "other_order" else "nope"
        await settle(orders, ConfirmedPayment("telegram", target, charge, "EUR", total), business_id="garden",
                     catalog=catalog, at=NOW)
    [stored] = await orders.list("garden")
    assert stored.total_minor == sum(ln.unit_minor * ln.quantity for ln in stored.lines) == cart.subtotal(
        catalog).minor
    paid_events = [(k, c) for k, c in events if k == "pay"]
    if paid_events:
        assert stored.state == "paid" and stored.provider_payment_id == paid_events[0][1]
        assert stored.paid_minor == stored.total_minor
        first = events.index(paid_events[0])
        later = [c for k, c in events[first + 1:] if k != "other_order" and c != paid_events[0][1]]
        assert ("second_payment" in stored.flags) == bool(later)  # money that arrived twice is kept for a refund
    else:
        assert stored.state == "pending" and stored.provider_payment_id is None
    for _, charge in paid_events:
        holder = await orders.by_payment("garden", "telegram", charge)
        assert holder is None or holder.id == stored.id


async def test_unpaid_orders_expire_after_a_day_and_a_late_payment_is_still_recorded() -> None:
    from datetime import timedelta

    from chatpay.core.checkout import expire_stale

    orders = InMemoryOrderStore()
    catalog = garden_shop()
    cart = Cart("garden", "t").add(catalog.get("basil-seeds"), None, 2)  # type: ignore[arg-type]
    old = await orders.create(order_from_cart(cart, catalog, provider="telegram", at=NOW))
    young = await orders.create(order_from_cart(replace(cart, version=5), catalog, provider="telegram",
                                                at=NOW + timedelta(hours=23)))
    later = NOW + timedelta(hours=25)
    assert [o.id for o in await expire_stale(orders, now=later, providers=frozenset({"telegram"}))] == [old.id]
    assert (await orders.get("garden", young.id)).state == "pending"  # type: ignore[union-attr]
    result = await settle(orders, ConfirmedPayment("telegram", old.id, "late-1", "EUR", 560), business_id="garden",
                          catalog=catalog, at=later)
    assert result.outcome == "paid" and result.order is not None and result.order.state == "paid"
    assert "after it expired" in result.order.history[-1].reason
