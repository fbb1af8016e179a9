"""In-memory twins of every port. Each records what it was asked in ``calls``."""

from __future__ import annotations

import asyncio
import copy
import json
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from chatpay.core.cart import Cart
from chatpay.core.catalog import Catalog
from chatpay.core.errors import ConcurrencyConflict, DuplicatePayment, ModelError, PaymentError
from chatpay.core.orders import Order, order_from_doc, order_to_doc
from chatpay.core.ports import (
    ChatRequest,
    ChatResponse,
    CheckoutStart,
    Delivery,
    Embeddings,
    OutgoingMessage,
    StoredVectors,
    Stores,
)
from chatpay.core.telemetry import Event, Usage, UsageRecord
from chatpay.core.turns import InvoiceRequest, Message

MAX_MESSAGES = 50


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def _rec(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))


class InMemoryCatalogStore(_Recorder):
    def __init__(self) -> None:
        super().__init__()
        self._catalogs: dict[str, Catalog] = {}

    async def get(self, business_id: str) -> Catalog | None:
        self._rec("get", business_id)
        return self._catalogs.get(business_id)

    async def replace(self, catalog: Catalog) -> Catalog:
        self._rec("replace", catalog.business_id, len(catalog))
        old = self._catalogs.get(catalog.business_id)
        stored = replace(catalog, version=(old.version if old else 0) + 1)
        self._catalogs[catalog.business_id] = stored
        return stored

    async def businesses(self) -> list[str]:
        return sorted(self._catalogs)


class InMemoryConversationStore(_Recorder):
    def __init__(self, max_messages: int = MAX_MESSAGES) -> None:
        super().__init__()
        self.max_messages = max_messages
        self._messages: dict[tuple[str, str], deque[Message]] = {}
        self._state: dict[tuple[str, str], dict[str, Any]] = {}

    async def append(self, business_id: str, thread_id: str, message: Message) -> None:
        self._rec("append", business_id, thread_id, message)
        self._messages.setdefault((business_id, thread_id), deque(maxlen=self.max_messages)).append(message)

    async def recent(self, business_id: str, thread_id: str, limit: int = 20) -> list[Message]:
        msgs = list(self._messages.get((business_id, thread_id), ()))
        return msgs[-limit:] if limit else []

    async def get_state(self, business_id: str, thread_id: str) -> dict[str, Any]:
        return copy.deepcopy(self._state.get((business_id, thread_id), {}))

    async def update_state(self, business_id: str, thread_id: str, changes: Mapping[str, Any]) -> None:
        self._rec("update_state", business_id, thread_id, dict(changes))
        # Round-trip through JSON so the twin stores exactly what a database could.
        self._state.setdefault((business_id, thread_id), {}).update(json.loads(json.dumps(dict(changes))))

    async def clear(self, business_id: str, thread_id: str) -> None:
        self._messages.pop((business_id, thread_id), None)
        self._state.pop((business_id, thread_id), None)


class InMemoryCartStore(_Recorder):
    def __init__(self) -> None:
        super().__init__()
        self._carts: dict[tuple[str, str], Cart] = {}

    async def get(self, business_id: str, thread_id: str) -> Cart:
        return self._carts.get((business_id, thread_id), Cart(business_id, thread_id))

    async def save(self, cart: Cart) -> Cart:
        self._rec("save", cart)
        key = (cart.business_id, cart.thread_id)
        current = self._carts.get(key)
        current_version = current.version if current else 0
        if current_version != cart.version:
            raise ConcurrencyConflict(f"cart {cart.thread_id}", cart.version)
        stored = replace(cart, version=cart.version + 1)
        self._carts[key] = stored
        return stored


class InMemoryEventLog(_Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[Event] = []

    async def record(self, event: Event) -> None:
        self.events.append(event)

    async def list(self, business_id: str, thread_id: str | None = None, limit: int = 100) -> list[Event]:
        found = [
            e for e in self.events
            if e.business_id == business_id and (thread_id is None or e.thread_id == thread_id)
        ]
        return found[-limit:]


class InMemoryUsageLog(_Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[UsageRecord] = []

    async def record(self, record: UsageRecord) -> None:
        self.records.append(record)

    async def list(
        self, business_id: str, *, thread_id: str | None = None, turn_id: str | None = None
    ) -> list[UsageRecord]:
        return [
            r for r in self.records
            if r.business_id == business_id
            and (thread_id is None or r.thread_id == thread_id)
            and (turn_id is None or r.turn_id == turn_id)
        ]

    async def total_tokens(self, business_id: str) -> int:
        return sum(r.total_tokens for r in self.records if r.business_id == business_id)


class InMemoryTurnStore(_Recorder):
    def __init__(self) -> None:
        super().__init__()
        self._claims: dict[tuple[str, int], str] = {}
        self._outcomes: dict[tuple[str, int], dict[str, Any]] = {}

    async def claim(self, business_id: str, update_id: int, turn_id: str) -> bool:
        self._rec("claim", business_id, update_id, turn_id)
        if (business_id, update_id) in self._claims:
            return False
        self._claims[(business_id, update_id)] = turn_id
        return True

    async def record_outcome(self, business_id: str, update_id: int, outcome: Mapping[str, Any]) -> None:
        self._outcomes[(business_id, update_id)] = json.loads(json.dumps(dict(outcome)))

    async def outcome(self, business_id: str, update_id: int) -> dict[str, Any] | None:
        return copy.deepcopy(self._outcomes.get((business_id, update_id)))


class InMemoryOrderStore(_Recorder):
    """The order store twin: documents as MongoDB would hold them, with the same unique keys."""

    def __init__(self) -> None:
        super().__init__()
        self.docs: dict[tuple[str, str], dict[str, Any]] = {}

    def _payment_holder(self, order: Order) -> tuple[str, str] | None:
        if order.provider_payment_id is None:
            return None
        for key, doc in self.docs.items():
            if (doc["business_id"], doc["provider"], doc["provider_payment_id"]) == (
                    order.business_id, order.provider, order.provider_payment_id) and doc["id"] != order.id:
                return key
        return None

    async def create(self, order: Order) -> Order:
        self._rec("create", order.id)
        key = (order.business_id, order.id)
        if key in self.docs:
            return order_from_doc(copy.deepcopy(self.docs[key]))
        if self._payment_holder(order) is not None:
            raise DuplicatePayment(order.provider, str(order.provider_payment_id))
        self.docs[key] = copy.deepcopy(order_to_doc(order))
        return order

    async def get(self, business_id: str, order_id: str) -> Order | None:
        doc = self.docs.get((business_id, order_id))
        return order_from_doc(copy.deepcopy(doc)) if doc is not None else None

    async def find(self, order_id: str) -> Order | None:
        for (_, oid), doc in self.docs.items():
            if oid == order_id:
                return order_from_doc(copy.deepcopy(doc))
        return None

    async def list(self, business_id: str | None = None, *, thread_id: str | None = None,
                   state: str | None = None, limit: int = 100) -> list[Order]:
        found = [d for d in self.docs.values()
                 if (business_id is None or d["business_id"] == business_id)
                 and (thread_id is None or d["thread_id"] == thread_id) and (state is None or d["state"] == state)]
        found.sort(key=lambda d: (d["created_at"], d["id"]), reverse=True)
        return [order_from_doc(copy.deepcopy(d)) for d in found[:limit]]

    async def update(self, order: Order, expected_state: str) -> Order:
        self._rec("update", order.id, expected_state, order.state)
        key = (order.business_id, order.id)
        current = self.docs.get(key)
        if current is None or current["state"] != expected_state:
            raise ConcurrencyConflict(f"order {order.id}", 0)
        if self._payment_holder(order) is not None:
            raise DuplicatePayment(order.provider, str(order.provider_payment_id))
        self.docs[key] = copy.deepcopy(order_to_doc(order))
        return order

    async def by_payment(self, business_id: str, provider: str, payment_id: str) -> Order | None:
        for doc in self.docs.values():
            if (doc["business_id"], doc["provider"], doc["provider_payment_id"]) == (business_id, provider, payment_id):
                return order_from_doc(copy.deepcopy(doc))
        return None


class InMemoryVectorStore(_Recorder):
    """The vector store twin: one entry per business and model, the latest version kept."""

    def __init__(self) -> None:
        super().__init__()
        self.saved: dict[tuple[str, str], tuple[int, StoredVectors]] = {}

    async def get(self, business_id: str, version: int, model: str) -> StoredVectors | None:
        self._rec("get", business_id, version, model)
        found = self.saved.get((business_id, model))
        return found[1] if found is not None and found[0] == version else None

    async def put(self, business_id: str, version: int, model: str, vectors: StoredVectors) -> None:
        self._rec("put", business_id, version, model, vectors.rows)
        self.saved[(business_id, model)] = (version, vectors)


def in_memory_stores() -> Stores:
    return Stores(
        catalogs=InMemoryCatalogStore(),
        conversations=InMemoryConversationStore(),
        carts=InMemoryCartStore(),
        events=InMemoryEventLog(),
        usage=InMemoryUsageLog(),
        turns=InMemoryTurnStore(),
        vectors=InMemoryVectorStore(),
        orders=InMemoryOrderStore(),
    )


class InMemoryQueue(_Recorder):
    """A reliable queue twin: reserved deliveries stay pending until acked."""

    def __init__(self) -> None:
        super().__init__()
        self.items: deque[str] = deque()
        self.pending: dict[int, Delivery] = {}
        self.dead: list[tuple[str, str]] = []
        self._next = 0
        self._ready = asyncio.Event()

    async def push(self, raw: str) -> None:
        self._rec("push", raw)
        self.items.appendleft(raw)
        self._ready.set()

    async def reserve(self, timeout: float) -> Delivery | None:
        if not self.items:
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                return None
        if not self.items:
            return None
        raw = self.items.pop()
        self._next += 1
        delivery = Delivery(raw, self._next)
        self.pending[self._next] = delivery
        return delivery

    async def ack(self, delivery: Delivery) -> None:
        self._rec("ack", delivery.receipt)
        self.pending.pop(delivery.receipt, None)

    async def dead_letter(self, delivery: Delivery, reason: str) -> None:
        self._rec("dead_letter", delivery.receipt, reason)
        self.pending.pop(delivery.receipt, None)
        self.dead.append((delivery.raw, reason))


class InMemoryChannel(_Recorder):
    """Records every message it was asked to send, per chat."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, OutgoingMessage]] = []
        self.callback_answers: list[tuple[str, str | None]] = []

    async def send(self, chat_id: str, messages: Sequence[OutgoingMessage]) -> None:
        for m in messages:
            self.sent.append((chat_id, m))

    async def answer_callback(self, callback_query_id: str, text: str | None = None) -> None:
        self.callback_answers.append((callback_query_id, text))


class ScriptedChatModel(_Recorder):
    """A chat model that answers from a queue of scripted replies and records requests.

    A reply may be a string, a dict (returned as JSON and as ``parsed``), an exception
    to raise, or a callable taking the request.
    """

    def __init__(
        self,
        replies: Sequence[Any] = (),
        *,
        name: str = "scripted",
        usage: Usage = Usage(10, 5),
        delay: float = 0.0,
    ) -> None:
        super().__init__()
        self.name = name
        self.replies: deque[Any] = deque(replies)
        self.usage = usage
        self.delay = delay
        self.requests: list[ChatRequest] = []

    def queue(self, *replies: Any) -> None:
        self.replies.extend(replies)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if not self.replies:
            raise ModelError("scripted model has no reply left")
        reply = self.replies.popleft()
        if callable(reply) and not isinstance(reply, (str, dict)):
            reply = reply(request)
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, dict):
            return ChatResponse(json.dumps(reply), self.usage, self.name, parsed=reply)
        return ChatResponse(str(reply), self.usage, self.name)


class HashingEmbedder(_Recorder):
    """A deterministic bag-of-character-trigrams embedder: no model, for tests."""

    def __init__(self, dim: int = 256) -> None:
        super().__init__()
        self.name = "hashing"
        self.dim = dim

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        self._rec("embed", len(texts))
        import zlib

        out = []
        for text in texts:
            vec = [0.0] * self.dim
            t = f"  {text.lower()}  "
            for i in range(len(t) - 2):
                vec[zlib.crc32(t[i : i + 3].encode()) % self.dim] += 1.0
            norm = math.sqrt(sum(x * x for x in vec)) or 1.0
            out.append([x / norm for x in vec])
        return Embeddings(out, Usage(), self.name)


class PythonVectorIndex:
    """The naive index: scores every stored vector in a Python loop."""

    def __init__(self, vectors: Sequence[Sequence[float]]) -> None:
        self._vectors = [list(map(float, v)) for v in vectors]

    def __len__(self) -> int:
        return len(self._vectors)

    def search(self, vector: Sequence[float], k: int) -> list[tuple[int, float]]:
        q = list(map(float, vector))
        scored = [(i, sum(a * b for a, b in zip(q, v, strict=False))) for i, v in enumerate(self._vectors)]
        scored.sort(key=lambda t: -t[1])
        return scored[:k]


class InMemoryPaymentProvider(_Recorder):
    """A payment provider twin that sends a Telegram-style invoice for every order and records it."""

    sandbox = False

    def __init__(self, *, name: str = "test", currency_only: str | None = None) -> None:
        super().__init__()
        self.name = name
        self.currency_only = currency_only

    async def start(self, order: Order, *, shop_name: str) -> CheckoutStart:
        self._rec("start", order.id)
        if self.currency_only and order.currency != self.currency_only:
            raise PaymentError(self.name, f"only {self.currency_only} can be paid here")
        prices = tuple((ln.title, ln.total_minor) for ln in order.lines)
        return CheckoutStart(invoice=InvoiceRequest(shop_name, f"Order {order.number}", order.id, order.currency,
                                                    prices))

    async def refund(self, order: Order) -> str:
        self._rec("refund", order.id)
        return f"refunded {order.id}"


class FixedClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
