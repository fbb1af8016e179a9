"""Checkout and settlement: orders made from carts, checked before money moves, paid exactly once.

The payments agent and every provider's confirmation path (Telegram's ``successful_payment``,
a verified Stripe webhook, a USDC transfer found on chain, the sandbox) meet here, so one set
of rules decides what a payment does:

* :func:`order_from_cart` freezes the cart's lines with their catalog prices into a ``pending``
  order; nothing else sets an amount.
* :func:`precheck` says why an order must not be paid now (Telegram asks before charging): the
  total or currency differ from the order, the cart changed since the invoice, a price changed,
  or something sold out.
* :func:`settle` records a confirmed payment against its order once. The provider's payment id
  is unique in the order store, so the same payment delivered again finds the order already
  paid and does nothing (no second receipt). A payment whose amount or currency differs pays
  nothing and is flagged; one for an order that can no longer be honoured (a line sold out
  since) is kept as paid and flagged for a refund, since the money has moved.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from chatpay.core.cart import Cart
from chatpay.core.catalog import Catalog
from chatpay.core.errors import ConcurrencyConflict, DuplicatePayment
from chatpay.core.money import Money
from chatpay.core.orders import REFUND_NEEDED, ConfirmedPayment, Order, OrderError, OrderLine, order_id
from chatpay.core.ports import OrderStore, PaymentProvider
from chatpay.core.telemetry import Event

PAYMENT_MISMATCH = "payment_mismatch"
SECOND_PAYMENT = "second_payment"


def order_from_cart(cart: Cart, catalog: Catalog, *, provider: str, at: datetime,
                    chat_id: str | None = None) -> Order:
    """A pending order with the cart's lines priced from the catalog (lines no longer sold are left out)."""
    lines = tuple(
        OrderLine(pl.product.handle, pl.line.variant_id, pl.product.name, pl.variant_title, pl.unit_price.minor,
                  pl.line.quantity)
        for pl in cart.priced(catalog)
    )
    oid = order_id(cart.business_id, cart.thread_id, cart.version, at)
    return Order(oid, cart.business_id, cart.thread_id, catalog.currency, lines, cart.version, provider, at,
                 chat_id=chat_id, history=())


def stock_problems(order: Order, catalog: Catalog) -> list[str]:
    """What in ``order`` the shop can no longer sell at the ordered price, one sentence each."""
    problems: list[str] = []
    for ln in order.lines:
        product = catalog.get(ln.handle)
        name = f"{ln.title}{f' ({ln.variant})' if ln.variant else ''}"
        if product is None:
            problems.append(f"{name} is no longer sold")
            continue
        try:
            variant = product.variant(ln.variant_id)
        except KeyError:
            problems.append(f"{name} is no longer sold")
            continue
        if not variant.available:
            problems.append(f"{name} has sold out")
        elif variant.price.minor != ln.unit_minor or variant.price.currency != order.currency:
            was, now = Money(ln.unit_minor, order.currency).format(), variant.price.format()
            problems.append(f"the price of {name} changed from {was} to {now}")
    return problems


def precheck(order: Order | None, *, currency: str, total_minor: int, cart: Cart, catalog: Catalog) -> str | None:
    """Why the order may not be charged now (a sentence for the shopper), or ``None`` when it may."""
    if order is None:
        return "This invoice is not one of ours any more; please check out again."
    if order.state != "pending":
        return {"paid": "This order is already paid.", "expired": "This invoice has expired; please check out again.",
                }.get(order.state, "This order can no longer be paid; please check out again.")
    if currency != order.currency or total_minor != order.total_minor:
        return "The amount of this invoice does not match your order; please check out again."
    if cart.version != order.cart_version:
        return "Your cart changed since this invoice was made; please check out again."
    problems = stock_problems(order, catalog)
    if problems:
        return "Sorry, " + "; ".join(problems) + ". Please check out again."
    return None


@dataclass(frozen=True)
class Settlement:
    """What a confirmed payment did. ``outcome`` says which of the cases in the module doc applied."""

    outcome: Literal["paid", "duplicate", "mismatch", "unknown_order", "second_payment"]
    order: Order | None
    problems: tuple[str, ...] = ()

    @property
    def new(self) -> bool:
        """Whether this call made a change the shopper must hear about (a receipt or a problem)."""
        return self.outcome != "duplicate"


async def settle(orders: OrderStore, payment: ConfirmedPayment, *, business_id: str, catalog: Catalog | None,
                 at: datetime) -> Settlement:
    """Record ``payment`` against its order, exactly once."""
    held = await orders.by_payment(business_id, payment.provider, payment.payment_id)
    if held is not None:
        return Settlement("duplicate", held)
    order = await orders.get(business_id, payment.order_id)
    if order is None:
        return Settlement("unknown_order", None)
    if order.state not in ("pending", "expired"):
        # Paid already under another payment id: the shopper paid twice. Keep the record; refund it.
        flagged = replace(order.flagged(SECOND_PAYMENT).flagged(REFUND_NEEDED),
                          extra={**order.extra, "second_payments": [*order.extra.get("second_payments", []),
                                                                    payment.payment_id]})
        await _write(orders, flagged, order.state)
        return Settlement("second_payment", flagged)
    if payment.currency != order.currency or payment.total_minor != order.total_minor:
        flagged = replace(order.flagged(PAYMENT_MISMATCH),
                          extra={**order.extra, "mismatched_payment": {
                              "id": payment.payment_id, "currency": payment.currency,
                              "total_minor": payment.total_minor}})
        await _write(orders, flagged, order.state)
        return Settlement("mismatch", flagged)
    late = " after it expired" if order.state == "expired" else ""
    paid = order.to("paid", at, f"{payment.provider} payment {payment.payment_id}{late}",
                    provider_payment_id=payment.payment_id, paid_minor=payment.total_minor,
                    extra={**order.extra, **({"payer": payment.payer} if payment.payer else {})})
    problems = tuple(stock_problems(order, catalog)) if catalog is not None else ()
    if problems:
        paid = paid.flagged(REFUND_NEEDED)
    try:
        stored = await orders.update(paid, order.state)
    except (DuplicatePayment, ConcurrencyConflict):
        again = await orders.by_payment(business_id, payment.provider, payment.payment_id)
        if again is not None:
            return Settlement("duplicate", again)
        raise
    return Settlement("paid", stored, problems)


async def _write(orders: OrderStore, order: Order, expected: str) -> None:
    try:
        await orders.update(order, expected)
    except ConcurrencyConflict:
        pass  # another worker moved the order on; the flag is advisory and the newer write stands


def cart_after(cart: Cart, order: Order) -> Cart:
    """The cart once ``order`` is paid: emptied when it is still the checked-out cart, else the
    ordered quantities taken out of it (what the shopper added since stays)."""
    if cart.version == order.cart_version:
        return cart.clear()
    for ln in order.lines:
        have = cart.quantity_of(ln.handle, ln.variant_id)
        if have:
            cart = cart.remove(ln.handle, min(have, ln.quantity), ln.variant_id)
    return cart


async def refund(orders: OrderStore, provider: PaymentProvider, order: Order, at: datetime) -> tuple[Order, str]:
    """Give a paid (or fulfilled) order's money back through its provider and record it on the order.

    Raises:
        OrderError: the order is not in a state that can be refunded (nothing was paid).
        PaymentError: the provider refused; the order is left as it was.
    """
    if not order.can_become("refunded"):
        raise OrderError(order.id, f"a {order.state} order cannot be refunded")
    if provider.name != order.provider:
        raise OrderError(order.id, f"was paid through {order.provider}, but this deployment's provider is "
                                   f"{provider.name}")
    note = await provider.refund(order)
    done = order.to("refunded", at, note)
    return await orders.update(done, order.state), note


# Stripe Checkout sessions expire after 24 hours by default, and a Telegram invoice is only worth
# paying while the cart it froze is current; after a day an unpaid order is expired, so the
# merchant's list shows what is really open. (A payment that still arrives is recorded: expired
# orders can become paid.)
PENDING_FOR = timedelta(hours=24)


async def expire_stale(orders: OrderStore, *, now: datetime, older_than: timedelta = PENDING_FOR,
                       providers: frozenset[str] | None = None) -> list[Order]:
    """Expire pending orders created before ``now - older_than``; the orders expired."""
    done: list[Order] = []
    for order in await orders.list(state="pending", limit=10_000):
        if providers is not None and order.provider not in providers:
            continue
        if order.created_at > now - older_than:
            continue
        try:
            done.append(await orders.update(order.to("expired", now, f"unpaid after {older_than}"), "pending"))
        except ConcurrencyConflict:
            continue  # paid (or expired) by someone else meanwhile
    return done


def transition_event(order: Order, *, source: str) -> Event:
    """The event an order's latest transition is, for the event log (``OrderExpired``, ``OrderRefunded``)."""
    last = order.history[-1] if order.history else None
    return Event(order.business_id, order.thread_id, source, f"Order{order.state.capitalize()}",
                 {"order": order.id, "state": order.state, "reason": last.reason if last else "",
                  "total_minor": order.total_minor, "currency": order.currency, "provider": order.provider},
                 last.at if last else None)
