"""Orders: what a shopper bought, frozen from the cart at checkout, and the life it goes through.

An :class:`Order` is made ``pending`` when the shopper presses Checkout: its lines (handle,
variant, title, unit price, quantity) are copied from the cart and priced from the catalog, so
nothing the shopper or a model says can change what is charged. Every later change is a
:meth:`Order.to` transition, checked against :data:`TRANSITIONS` and kept in the order's
history; the payments service turns each one into an event.

::

    pending ──► paid ──► fulfilled
       │          │          │
       │          └──────────┴──► refunded
       ├──► cancelled
       └──► expired ──► paid   (money that arrives late is still recorded, and flagged)

A payment is identified by ``(provider, provider_payment_id)``; the order store keeps that pair
unique, so a payment delivered twice pays one order once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from chatpay.core.errors import ChatPayError, InvalidInput
from chatpay.core.money import Money

OrderState = Literal["pending", "paid", "fulfilled", "refunded", "cancelled", "expired"]
STATES: tuple[OrderState, ...] = ("pending", "paid", "fulfilled", "refunded", "cancelled", "expired")

TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"paid", "cancelled", "expired"}),
    "paid": frozenset({"fulfilled", "refunded"}),
    "fulfilled": frozenset({"refunded"}),
    "expired": frozenset({"paid"}),
    "refunded": frozenset(),
    "cancelled": frozenset(),
}

# Flags a merchant must act on; shown by ``chatpay orders`` and kept on the order.
REFUND_NEEDED = "refund_needed"


class OrderError(ChatPayError):
    """An order change that its state does not allow (paying a refunded order, refunding a pending one)."""

    def __init__(self, order_id: str, message: str) -> None:
        super().__init__(f"order {order_id}: {message}")
        self.order_id = order_id


@dataclass(frozen=True)
class OrderLine:
    """One line as bought: prices in the order's currency's minor units, from the catalog."""

    handle: str
    variant_id: str
    title: str
    variant: str
    unit_minor: int
    quantity: int

    def __post_init__(self) -> None:
        if self.quantity < 1:
            raise InvalidInput("an order line needs a quantity of at least 1", field=f"{self.handle}.quantity")
        if self.unit_minor < 0:
            raise InvalidInput("an order line's price cannot be negative", field=f"{self.handle}.unit_price")

    @property
    def total_minor(self) -> int:
        return self.unit_minor * self.quantity


@dataclass(frozen=True)
class Transition:
    state: str
    at: datetime
    reason: str = ""


@dataclass(frozen=True)
class Order:
    """One checkout of one cart. ``total`` is always the sum of the lines (it is computed, not stored)."""

    id: str
    business_id: str
    thread_id: str
    currency: str
    lines: tuple[OrderLine, ...]
    cart_version: int
    provider: str
    created_at: datetime
    state: OrderState = "pending"
    chat_id: str | None = None
    provider_payment_id: str | None = None
    checkout_ref: str | None = None  # the provider's own handle on the checkout (session id, reference key)
    paid_minor: int | None = None
    flags: tuple[str, ...] = ()
    history: tuple[Transition, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # provider details a refund needs (e.g. the payer)

    @property
    def total_minor(self) -> int:
        return sum(ln.total_minor for ln in self.lines)

    @property
    def total(self) -> Money:
        return Money(self.total_minor, self.currency)

    @property
    def item_count(self) -> int:
        return sum(ln.quantity for ln in self.lines)

    @property
    def number(self) -> str:
        """How the shopper and the merchant name the order (the id, in capitals)."""
        return self.id.upper()

    def can_become(self, state: str) -> bool:
        return state in TRANSITIONS.get(self.state, frozenset())

    def to(self, state: OrderState, at: datetime, reason: str = "", **changes: Any) -> Order:
        """This order in ``state``; raises :class:`OrderError` when the state machine forbids it."""
        if state not in STATES:
            raise OrderError(self.id, f"unknown state {state!r}")
        if not self.can_become(state):
            raise OrderError(self.id, f"cannot go from {self.state} to {state}")
        return replace(self, state=state, history=(*self.history, Transition(state, at, reason)), **changes)

    def flagged(self, flag: str) -> Order:
        return self if flag in self.flags else replace(self, flags=(*self.flags, flag))


def order_id(business_id: str, thread_id: str, cart_version: int, created_at: datetime) -> str:
    """A short id, unique per checkout: the same cart checked out twice in one instant is one order."""
    seed = f"{business_id}|{thread_id}|{cart_version}|{created_at.isoformat()}"
    return "o" + hashlib.sha256(seed.encode()).hexdigest()[:11]


def order_as_json(order: Order) -> dict[str, Any]:
    """The order as ``chatpay orders --json`` prints it (docs/formats.md, "Orders: JSON and CSV")."""
    money = lambda minor: Money(minor, order.currency).amount_str()  # noqa: E731
    return {
        "id": order.id,
        "business_id": order.business_id,
        "thread_id": order.thread_id,
        "state": order.state,
        "currency": order.currency,
        "total": money(order.total_minor),
        "lines": [{"handle": ln.handle, "variant": ln.variant, "variant_id": ln.variant_id, "title": ln.title,
                   "quantity": ln.quantity, "unit_price": money(ln.unit_minor)} for ln in order.lines],
        "provider": order.provider,
        "provider_payment_id": order.provider_payment_id,
        "paid": money(order.paid_minor) if order.paid_minor is not None else None,
        "flags": list(order.flags),
        "created_at": order.created_at.isoformat(),
        "history": [{"state": t.state, "at": t.at.isoformat(), "reason": t.reason} for t in order.history],
    }


@dataclass(frozen=True)
class ConfirmedPayment:
    """Money a provider says arrived for an order, in the provider's own terms.

    ``payment_id`` is the provider's unique id of the payment (Telegram's charge id, Stripe's
    payment intent, a Solana transaction signature); the order store keeps it unique.
    """

    provider: str
    order_id: str
    payment_id: str
    currency: str
    total_minor: int
    payer: str | None = None  # Telegram user id, for a Stars refund


def order_to_doc(order: Order) -> dict[str, Any]:
    """The order as a plain document (MongoDB and the in-memory twin store exactly this)."""
    return {
        "id": order.id, "business_id": order.business_id, "thread_id": order.thread_id, "chat_id": order.chat_id,
        "currency": order.currency, "state": order.state, "cart_version": order.cart_version,
        "provider": order.provider, "provider_payment_id": order.provider_payment_id,
        "checkout_ref": order.checkout_ref, "paid_minor": order.paid_minor, "total_minor": order.total_minor,
        "created_at": order.created_at, "flags": list(order.flags), "extra": dict(order.extra),
        "lines": [{"handle": ln.handle, "variant_id": ln.variant_id, "title": ln.title, "variant": ln.variant,
                   "unit_minor": ln.unit_minor, "quantity": ln.quantity} for ln in order.lines],
        "history": [{"state": t.state, "at": t.at, "reason": t.reason} for t in order.history],
    }


def order_from_doc(doc: dict[str, Any]) -> Order:
    """Read a stored order back; ``total_minor`` in the document is for queries, never trusted over the lines."""
    return Order(
        id=doc["id"], business_id=doc["business_id"], thread_id=doc["thread_id"], currency=doc["currency"],
        lines=tuple(OrderLine(ln["handle"], ln["variant_id"], ln["title"], ln.get("variant", ""),
                              int(ln["unit_minor"]), int(ln["quantity"])) for ln in doc["lines"]),
        cart_version=int(doc["cart_version"]), provider=doc["provider"], created_at=doc["created_at"],
        state=doc["state"], chat_id=doc.get("chat_id"), provider_payment_id=doc.get("provider_payment_id"),
        checkout_ref=doc.get("checkout_ref"), paid_minor=doc.get("paid_minor"), flags=tuple(doc.get("flags", ())),
        history=tuple(Transition(t["state"], t["at"], t.get("reason", "")) for t in doc.get("history", ())),
        extra=dict(doc.get("extra") or {}),
    )
