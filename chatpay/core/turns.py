"""Conversation messages, turns and the channel-neutral reply."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Literal

from chatpay.core.money import Money


class Intent(str, Enum):  # noqa: UP042 (values are compared with plain strings)
    """The seven things a shopper can want in one turn."""

    ENQUIRY = "enquiry"
    CART_ADD = "cart_add"
    CART_REMOVE = "cart_remove"
    CART_VIEW = "cart_view"
    CART_CLEAR = "cart_clear"
    PAYMENTS = "payments"
    CHITCHAT = "chitchat"


INTENTS: tuple[str, ...] = tuple(i.value for i in Intent)


@dataclass(frozen=True)
class Message:
    """One line of a conversation as stored (bounded per thread)."""

    role: Literal["user", "assistant"]
    content: str
    turn_id: str = ""
    intent: str | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class PaymentEvent:
    """A payment update: Telegram's pre-checkout query or successful payment, or a payment another
    provider confirmed (a verified Stripe webhook, a USDC transfer found on chain), for the order
    ``payload`` names."""

    kind: Literal["pre_checkout", "successful_payment", "confirmed"]
    payload: str
    currency: str
    total_minor: int
    query_id: str | None = None
    provider_charge_id: str | None = None  # the payment's unique id at its provider
    provider: str | None = None  # who confirmed it, for ``confirmed``


@dataclass(frozen=True)
class Turn:
    """One shopper action: a text, a button press or a payment event.

    ``thread_id`` is the Telegram user id; ``chat_id`` is where replies go;
    ``update_id`` is Telegram's, for de-duplication.
    """

    business_id: str
    thread_id: str
    turn_id: str
    text: str = ""
    callback_data: str | None = None
    callback_query_id: str | None = None
    payment: PaymentEvent | None = None
    reply_to_text: str | None = None
    update_id: int | None = None
    chat_id: str | None = None
    at: datetime | None = None
    message_id: int | None = None  # Telegram's id of the shopper's message, the key of its edits
    edited: bool = False  # an edit of the message with ``message_id``: a correction, not a new command


@dataclass(frozen=True)
class Button:
    """A button under a message: a callback (``data``) or a link (``url``)."""

    label: str
    data: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class ProductCard:
    handle: str
    title: str
    price: Money
    description: str
    image_url: str | None = None
    available: bool = True
    buttons: tuple[Button, ...] = ()
    score: float | None = None


@dataclass(frozen=True)
class CartLineView:
    handle: str
    title: str
    variant: str
    quantity: int
    unit_price: Money
    total: Money


@dataclass(frozen=True)
class CartView:
    lines: tuple[CartLineView, ...]
    subtotal: Money

    @property
    def item_count(self) -> int:
        return sum(ln.quantity for ln in self.lines)


@dataclass(frozen=True)
class InvoiceRequest:
    """What the payments agent asks the channel to send; amounts from the cart only."""

    title: str
    description: str
    payload: str
    currency: str
    prices: tuple[tuple[str, int], ...]  # (label, minor units)
    provider_token: str = ""


@dataclass(frozen=True)
class Reply:
    """What a turn answers, independent of the channel.

    ``text`` is plain text; ``**bold**`` spans are the only markup and presenters
    render them natively. ``buttons`` are rows of inline buttons under the text;
    ``quick_replies`` become a reply keyboard.
    """

    text: str
    cards: tuple[ProductCard, ...] = ()
    buttons: tuple[tuple[Button, ...], ...] = ()
    quick_replies: tuple[str, ...] = ()
    cart: CartView | None = None
    invoice: InvoiceRequest | None = None
    callback_answer: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    image_png: bytes | None = None  # an image to upload with the reply (a payment QR code)
