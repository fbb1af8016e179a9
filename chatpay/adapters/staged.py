"""A turn's cart and conversation writes held in memory until the turn commits them in one step.

Both exactly-once commits use these: the Redis one (:mod:`chatpay.adapters.redis.staging`, one
script fenced on the lease) and the MongoDB journal (:mod:`chatpay.adapters.mongo.journal`). The
turn reads through them and sees its own writes; nothing reaches the store until its owner
commits, so a turn abandoned half-way leaves no trace.

The owner (``turn``) provides ``staged`` (a :class:`StagedWrites`, or a subclass holding more)
and ``read(awaitable)``, which awaits a read of the underlying store and keeps its first error.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Protocol, TypeVar

from chatpay.core.cart import Cart
from chatpay.core.errors import ConcurrencyConflict, StorageError
from chatpay.core.ports import CartStore, ConversationStore
from chatpay.core.turns import Message

Key = tuple[str, str]  # (business, thread)
T = TypeVar("T")


@dataclass
class StagedWrites:
    """What one turn wrote to carts and conversations, not yet committed."""

    read_versions: dict[Key, int] = field(default_factory=dict)  # the version each cart had when first read
    carts: dict[Key, Cart] = field(default_factory=dict)
    cleared: set[Key] = field(default_factory=set)
    appends: dict[Key, list[Message]] = field(default_factory=dict)
    state: dict[Key, dict[str, Any]] = field(default_factory=dict)
    error: StorageError | None = None


class Owner(Protocol):
    @property
    def staged(self) -> StagedWrites: ...

    async def read(self, call: Awaitable[T]) -> T: ...


W = TypeVar("W", bound=StagedWrites)


class ReadThrough(Generic[W]):
    """The owner side of :class:`Owner`: reads of the store go through :meth:`read`, which keeps the first error."""

    staged: W

    async def read(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except StorageError as exc:
            self.staged.error = self.staged.error or exc
            raise


class StagedCarts:
    """A :class:`~chatpay.core.ports.CartStore` over ``source`` whose saves wait for the commit."""

    def __init__(self, turn: Owner, source: CartStore) -> None:
        self._turn = turn
        self._source = source

    async def get(self, business_id: str, thread_id: str) -> Cart:
        staged = self._turn.staged
        key = (business_id, thread_id)
        if key in staged.carts:
            return staged.carts[key]
        cart = await self._turn.read(self._source.get(business_id, thread_id))
        staged.read_versions.setdefault(key, cart.version)
        return cart

    async def save(self, cart: Cart) -> Cart:
        current = await self.get(cart.business_id, cart.thread_id)
        if current.version != cart.version:
            raise ConcurrencyConflict(f"cart {cart.thread_id}", cart.version)
        stored = replace(cart, version=cart.version + 1)
        self._turn.staged.carts[(cart.business_id, cart.thread_id)] = stored
        return stored


class StagedConversations:
    """A :class:`~chatpay.core.ports.ConversationStore` over ``source`` whose writes wait for the commit.

    ``clean`` turns a state change into what the store keeps (and refuses what it would refuse),
    so that a bad change fails inside the turn, not at the commit.
    """

    def __init__(self, turn: Owner, source: ConversationStore,
                 clean: Callable[[Mapping[str, Any]], dict[str, Any]]) -> None:
        self._turn = turn
        self._source = source
        self._clean = clean

    async def append(self, business_id: str, thread_id: str, message: Message) -> None:
        self._turn.staged.appends.setdefault((business_id, thread_id), []).append(message)

    async def recent(self, business_id: str, thread_id: str, limit: int = 20) -> list[Message]:
        if limit <= 0:
            return []
        key = (business_id, thread_id)
        stored: list[Message] = []
        if key not in self._turn.staged.cleared:
            stored = await self._turn.read(self._source.recent(business_id, thread_id, limit))
        return (stored + self._turn.staged.appends.get(key, []))[-limit:]

    async def get_state(self, business_id: str, thread_id: str) -> dict[str, Any]:
        key = (business_id, thread_id)
        state: dict[str, Any] = {}
        if key not in self._turn.staged.cleared:
            state = await self._turn.read(self._source.get_state(business_id, thread_id))
        state.update(copy.deepcopy(self._turn.staged.state.get(key, {})))
        return state

    async def update_state(self, business_id: str, thread_id: str, changes: Mapping[str, Any]) -> None:
        self._turn.staged.state.setdefault((business_id, thread_id), {}).update(self._clean(changes))

    async def clear(self, business_id: str, thread_id: str) -> None:
        key = (business_id, thread_id)
        self._turn.staged.cleared.add(key)
        self._turn.staged.appends.pop(key, None)
        self._turn.staged.state.pop(key, None)
