"""Carts, conversations and turn claims on Redis, shared by every worker process.

In production MongoDB is the system of record; these stores exist so that several worker
processes without MongoDB (the embedded store lives inside one process) still share
one shopper's cart, conversation and claimed update ids. Every write is atomic on the
server: a cart is saved by a Lua script that compares its version, a claim is ``SET NX``.

Keys, under a prefix (default ``chatpay``), with ``:`` and ``%`` in ids percent-encoded::

    <prefix>:cart:<business>:<thread>            hash {version, lines (JSON)}
    <prefix>:conv:<business>:<thread>:messages   list of JSON messages (bounded)
    <prefix>:conv:<business>:<thread>:state      hash field -> JSON value
    <prefix>:turn:<business>:<update_id>:claim   the claiming turn id (48 h)
    <prefix>:turn:<business>:<update_id>:outcome the recorded outcome, JSON (48 h)
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from chatpay.core.cart import Cart, CartLine
from chatpay.core.errors import ConcurrencyConflict, StorageError
from chatpay.core.turns import Message

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_MESSAGES = 50
CLAIM_TTL_SECONDS = 48 * 3600
"""How long an update id stays claimed, and its outcome kept (Telegram redelivers for 24 h)."""

SAVE_CART = """
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if current ~= tonumber(ARGV[1]) then return -1 end
redis.call('HSET', KEYS[1], 'version', current + 1, 'lines', ARGV[2])
return current + 1
"""


def part(value: str) -> str:
    """One key component, with ``%`` and ``:`` encoded so that ids never collide."""
    return value.replace("%", "%25").replace(":", "%3A")


@dataclass(frozen=True)
class RedisKeys:
    """Names of every state key, in one place, so the stores and the turn commit agree."""

    prefix: str = "chatpay"

    def cart(self, business_id: str, thread_id: str) -> str:
        return f"{self.prefix}:cart:{part(business_id)}:{part(thread_id)}"

    def messages(self, business_id: str, thread_id: str) -> str:
        return f"{self.prefix}:conv:{part(business_id)}:{part(thread_id)}:messages"

    def state(self, business_id: str, thread_id: str) -> str:
        return f"{self.prefix}:conv:{part(business_id)}:{part(thread_id)}:state"

    def claim(self, business_id: str, update_id: int) -> str:
        return f"{self.prefix}:turn:{part(business_id)}:{update_id}:claim"

    def outcome(self, business_id: str, update_id: int) -> str:
        return f"{self.prefix}:turn:{part(business_id)}:{update_id}:outcome"


async def translated(operation: str, call: Awaitable[T]) -> T:
    """Await a Redis call, turning its errors into :class:`StorageError` (no host, no password)."""
    try:
        return await call
    except RedisError as exc:
        log.warning("redis %s failed: %s", operation, type(exc).__name__)
        raise StorageError(operation, f"{type(exc).__name__} from redis") from exc


def lines_json(cart: Cart) -> str:
    return json.dumps([[ln.handle, ln.variant_id, ln.quantity] for ln in cart.lines])


def cart_from_hash(business_id: str, thread_id: str, doc: Mapping[str, str]) -> Cart:
    if not doc:
        return Cart(business_id, thread_id)
    lines = tuple(CartLine(str(h), str(v), int(q)) for h, v, q in json.loads(doc.get("lines") or "[]"))
    return Cart(business_id, thread_id, lines, int(doc.get("version") or 0))


def message_json(m: Message) -> str:
    return json.dumps({"role": m.role, "content": m.content, "turn_id": m.turn_id, "intent": m.intent,
                       "at": m.at.isoformat() if m.at else None})


def message_from_json(raw: str) -> Message:
    doc = json.loads(raw)
    at = doc.get("at")
    return Message(doc["role"], doc["content"], doc.get("turn_id", ""), doc.get("intent"),
                   datetime.fromisoformat(at) if at else None)


def plain(value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` as JSON stores it (tuples become lists), like every other store."""
    result: dict[str, Any] = json.loads(json.dumps(dict(value)))
    return result


class RedisCartStore:
    """:class:`~chatpay.core.ports.CartStore` on a Redis hash per thread, saved by version."""

    def __init__(self, client: Redis, keys: RedisKeys) -> None:
        self._r: Any = client
        self._keys = keys
        self._save = client.register_script(SAVE_CART)

    async def get(self, business_id: str, thread_id: str) -> Cart:
        doc = await translated("cart get", self._r.hgetall(self._keys.cart(business_id, thread_id)))
        return cart_from_hash(business_id, thread_id, doc)

    async def save(self, cart: Cart) -> Cart:
        key = self._keys.cart(cart.business_id, cart.thread_id)
        version = await translated("cart save", self._save(keys=[key], args=[cart.version, lines_json(cart)]))
        if int(version) < 0:
            raise ConcurrencyConflict(f"cart {cart.thread_id}", cart.version)
        return replace(cart, version=int(version))


class RedisConversationStore:
    """:class:`~chatpay.core.ports.ConversationStore`: a bounded list and a state hash per thread."""

    def __init__(self, client: Redis, keys: RedisKeys, *, max_messages: int = MAX_MESSAGES) -> None:
        self._r: Any = client
        self._keys = keys
        self.max_messages = max_messages

    async def append(self, business_id: str, thread_id: str, message: Message) -> None:
        key = self._keys.messages(business_id, thread_id)
        pipe = self._r.pipeline(transaction=True)
        pipe.rpush(key, message_json(message))
        pipe.ltrim(key, -self.max_messages, -1)
        await translated("conversation append", pipe.execute())

    async def recent(self, business_id: str, thread_id: str, limit: int = 20) -> list[Message]:
        if limit <= 0:
            return []
        raws = await translated(
            "conversation recent", self._r.lrange(self._keys.messages(business_id, thread_id), -limit, -1)
        )
        return [message_from_json(r) for r in raws]

    async def get_state(self, business_id: str, thread_id: str) -> dict[str, Any]:
        doc = await translated("conversation get_state", self._r.hgetall(self._keys.state(business_id, thread_id)))
        return {k: json.loads(v) for k, v in doc.items()}

    async def update_state(self, business_id: str, thread_id: str, changes: Mapping[str, Any]) -> None:
        fields = {k: json.dumps(v) for k, v in plain(changes).items()}
        if fields:
            await translated("conversation update_state",
                             self._r.hset(self._keys.state(business_id, thread_id), mapping=fields))

    async def clear(self, business_id: str, thread_id: str) -> None:
        await translated("conversation clear", self._r.delete(
            self._keys.messages(business_id, thread_id), self._keys.state(business_id, thread_id)))


class RedisTurnStore:
    """:class:`~chatpay.core.ports.TurnStore`: ``SET NX`` claims and JSON outcomes, kept 48 h."""

    def __init__(self, client: Redis, keys: RedisKeys, *, ttl_seconds: int = CLAIM_TTL_SECONDS) -> None:
        self._r: Any = client
        self._keys = keys
        self.ttl_seconds = ttl_seconds

    async def claim(self, business_id: str, update_id: int, turn_id: str) -> bool:
        key = self._keys.claim(business_id, update_id)
        won = await translated("turn claim", self._r.set(key, turn_id, nx=True, ex=self.ttl_seconds))
        return bool(won)

    async def record_outcome(self, business_id: str, update_id: int, outcome: Mapping[str, Any]) -> None:
        key = self._keys.outcome(business_id, update_id)
        await translated("turn record_outcome", self._r.set(key, json.dumps(plain(outcome)), ex=self.ttl_seconds))

    async def outcome(self, business_id: str, update_id: int) -> dict[str, Any] | None:
        raw = await translated("turn outcome", self._r.get(self._keys.outcome(business_id, update_id)))
        if raw is None:
            return None
        result: dict[str, Any] = json.loads(raw)
        return copy.deepcopy(result)


class RedisStateStores:
    """The three stores that must be shared across worker processes, on one Redis.

    Args:
        client: a ``redis.asyncio.Redis`` (or ``fakeredis.FakeAsyncRedis``) made with
            ``decode_responses=True``.
        prefix: the first component of every key.
    """

    def __init__(self, client: Redis, *, prefix: str = "chatpay", max_messages: int = MAX_MESSAGES,
                 ttl_seconds: int = CLAIM_TTL_SECONDS) -> None:
        self.client: Any = client
        self.keys = RedisKeys(prefix)
        self.carts = RedisCartStore(client, self.keys)
        self.conversations = RedisConversationStore(client, self.keys, max_messages=max_messages)
        self.turns = RedisTurnStore(client, self.keys, ttl_seconds=ttl_seconds)
