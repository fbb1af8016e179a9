"""The seams of ChatPay: small async protocols that adapters satisfy structurally.

Each port has an in-memory twin in :mod:`chatpay.adapters.memory` that records what it
was asked. Vector search is synchronous (pure CPU); everything that may touch the
network or a database is ``async``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from chatpay.core.cart import Cart
from chatpay.core.catalog import Catalog
from chatpay.core.orders import Order
from chatpay.core.telemetry import Event, Usage, UsageRecord
from chatpay.core.turns import InvoiceRequest, Message

# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class ChatRequest:
    """One chat-completion request. With ``json_schema`` the answer must be JSON of that shape."""

    messages: tuple[ChatMessage, ...]
    json_schema: Mapping[str, Any] | None = None
    schema_name: str = "answer"
    temperature: float = 0.0
    max_tokens: int = 400


@dataclass(frozen=True)
class ChatResponse:
    text: str
    usage: Usage
    model: str
    parsed: Any = None


@runtime_checkable
class ChatModel(Protocol):
    """An OpenAI-compatible chat model, or a scripted twin."""

    name: str

    async def complete(self, request: ChatRequest) -> ChatResponse: ...


@dataclass(frozen=True)
class Embeddings:
    """Unit-length vectors, one per input text, and what computing them cost."""

    vectors: Sequence[Sequence[float]]
    usage: Usage = field(default_factory=Usage)
    model: str = ""


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    async def embed(self, texts: Sequence[str]) -> Embeddings: ...


class VectorIndex(Protocol):
    """Nearest neighbours by cosine similarity over unit vectors."""

    def search(self, vector: Sequence[float], k: int) -> list[tuple[int, float]]: ...

    def __len__(self) -> int: ...


class VectorIndexFactory(Protocol):
    def __call__(self, vectors: Sequence[Sequence[float]]) -> VectorIndex: ...


# --------------------------------------------------------------------------- storage


class CatalogStore(Protocol):
    async def get(self, business_id: str) -> Catalog | None: ...

    async def replace(self, catalog: Catalog) -> Catalog:
        """Replace the business's whole catalog at once; returns it with a new ``version``."""
        ...

    async def businesses(self) -> list[str]: ...


class ConversationStore(Protocol):
    """Messages per thread (bounded) and a small per-thread state document."""

    async def append(self, business_id: str, thread_id: str, message: Message) -> None: ...

    async def recent(self, business_id: str, thread_id: str, limit: int = 20) -> list[Message]: ...

    async def get_state(self, business_id: str, thread_id: str) -> dict[str, Any]: ...

    async def update_state(self, business_id: str, thread_id: str, changes: Mapping[str, Any]) -> None:
        """Merge ``changes`` into the thread's state (e.g. ``last_shown``)."""
        ...

    async def clear(self, business_id: str, thread_id: str) -> None: ...


class CartStore(Protocol):
    async def get(self, business_id: str, thread_id: str) -> Cart:
        """The thread's cart; an empty cart at version 0 when none is stored."""
        ...

    async def save(self, cart: Cart) -> Cart:
        """Store ``cart`` if the stored version still equals ``cart.version``.

        Returns the cart with ``version + 1``; raises ``ConcurrencyConflict`` otherwise.
        """
        ...


class EventLog(Protocol):
    async def record(self, event: Event) -> None: ...

    async def list(self, business_id: str, thread_id: str | None = None, limit: int = 100) -> list[Event]: ...


class UsageLog(Protocol):
    async def record(self, record: UsageRecord) -> None: ...

    async def list(
        self, business_id: str, *, thread_id: str | None = None, turn_id: str | None = None
    ) -> list[UsageRecord]: ...

    async def total_tokens(self, business_id: str) -> int: ...


class TurnStore(Protocol):
    """Claims Telegram update ids once and keeps each turn's outcome for replay."""

    async def claim(self, business_id: str, update_id: int, turn_id: str) -> bool:
        """True the first time an update id is claimed, False ever after (for >= 24 h)."""
        ...

    async def record_outcome(self, business_id: str, update_id: int, outcome: Mapping[str, Any]) -> None: ...

    async def outcome(self, business_id: str, update_id: int) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class StoredVectors:
    """A catalog's product vectors as stored: ``rows`` x ``dim`` float16, row-major, little-endian."""

    data: bytes
    rows: int
    dim: int


class VectorStore(Protocol):
    """Product vectors computed once at import, per catalog version and encoder, for every process."""

    async def get(self, business_id: str, version: int, model: str) -> StoredVectors | None: ...

    async def put(self, business_id: str, version: int, model: str, vectors: StoredVectors) -> None:
        """Store the vectors of ``version``, dropping the business's older versions for ``model``."""
        ...


@dataclass
class Stores:
    """Every store a turn needs, from one backend."""

    catalogs: CatalogStore
    conversations: ConversationStore
    carts: CartStore
    events: EventLog
    usage: UsageLog
    turns: TurnStore
    vectors: VectorStore | None = None
    orders: OrderStore | None = None


# --------------------------------------------------------------------------- delivery


@dataclass(frozen=True)
class Delivery:
    """A raw update taken from the queue, to be acknowledged once its turn is done."""

    raw: str
    receipt: Any
    attempts: int = 1


class Queue(Protocol):
    async def push(self, raw: str) -> None: ...

    async def reserve(self, timeout: float) -> Delivery | None: ...

    async def ack(self, delivery: Delivery) -> None: ...

    async def dead_letter(self, delivery: Delivery, reason: str) -> None: ...


@dataclass(frozen=True)
class OutgoingMessage:
    """One Bot API call a presenter produced: ``method`` and its parameters."""

    method: str
    params: Mapping[str, Any]


class Channel(Protocol):
    async def send(self, chat_id: str, messages: Sequence[OutgoingMessage]) -> None: ...

    async def answer_callback(self, callback_query_id: str, text: str | None = None) -> None: ...


@dataclass(frozen=True)
class CheckoutStart:
    """How a provider lets the shopper pay one order.

    Exactly one of ``invoice`` (a Telegram invoice: fiat through a provider token, or Stars)
    and ``url`` (a link button: a hosted card checkout, a Solana Pay transfer request) is set,
    except for the sandbox, whose ``completes`` means the order is paid at once.
    """

    invoice: InvoiceRequest | None = None
    url: str | None = None
    label: str = ""  # the link button's text
    text: str = ""  # what to tell the shopper with it
    image_png: bytes | None = None  # e.g. a QR code of ``url``
    checkout_ref: str | None = None  # the provider's handle on this checkout, stored on the order
    completes: bool = False


class PaymentProvider(Protocol):
    """One way of taking money. Amounts come from the order, whose lines come from the catalog."""

    name: str
    sandbox: bool

    async def start(self, order: Order, *, shop_name: str) -> CheckoutStart:
        """Begin paying ``order`` (raises :class:`~chatpay.core.errors.PaymentError` when it cannot)."""
        ...

    async def refund(self, order: Order) -> str:
        """Give ``order``'s money back; returns what was done, in a sentence for the merchant."""
        ...


class OrderStore(Protocol):
    """Orders, in the system of record. ``(business_id, provider, provider_payment_id)`` is unique."""

    async def create(self, order: Order) -> Order:
        """Store a new order; an order with the same id already stored is returned instead."""
        ...

    async def get(self, business_id: str, order_id: str) -> Order | None: ...

    async def find(self, order_id: str) -> Order | None:
        """The order with this id in any business (the merchant's CLI, a provider's webhook)."""
        ...

    async def list(self, business_id: str | None = None, *, thread_id: str | None = None,
                   state: str | None = None, limit: int = 100) -> list[Order]:
        """Newest first."""
        ...

    async def update(self, order: Order, expected_state: str) -> Order:
        """Write ``order`` if the stored one is still in ``expected_state``.

        Raises:
            ConcurrencyConflict: the stored order moved on (another worker got there first).
            DuplicatePayment: another order already holds ``order.provider_payment_id``.
        """
        ...

    async def by_payment(self, business_id: str, provider: str, payment_id: str) -> Order | None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...
