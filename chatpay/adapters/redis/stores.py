"""Carts, conversations and turn claims on Redis, shared by every worker process.

In production MongoDB is the system of record; these stores exist so that several worker
processes without MongoDB (the embedded store lives inside one process) still share
one shopper's cart, conversation and claimed update ids. Every write is atomic on the
server: a cart is saved by a Lua script that compares its version, a claim is ``SET NX``.

Keys, under a prefix (default ``chatpay``), with ``%``, ``:``, ``{`` and ``}`` in ids
percent-encoded. The business is a Redis Cluster hash tag, ``{<business>}``, so every key of
one business (these and its queue's, see :func:`chatpay.adapters.redis.queue.queue_name`)
lives in one slot and one script may touch them all; businesses share nothing::

    <prefix>:{<business>}:cart:<thread>            hash {version, lines (JSON)}     retention
    <prefix>:{<business>}:conv:<thread>:messages   list of JSON messages (bounded)  retention
    <prefix>:{<business>}:conv:<thread>:state      hash field -> JSON value          retention
    <prefix>:{<business>}:turn:<update_id>:claim   the claiming turn id              48 h
    <prefix>:{<business>}:turn:<update_id>:outcome the recorded outcome, JSON        48 h

Retention (``ttl_seconds``, the merchant's ``CHATPAY_RETENTION_DAYS``) is an expiry refreshed
on every write of a cart or a conversation (messages and state together), so an idle
shopper's data goes away by itself and an active one's never does.
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
RETENTION_SECONDS = 30 * 86400
"""Default expiry of an idle cart or conversation (``CHATPAY_RETENTION_DAYS`` defaults to 30)."""

# KEYS: cart.  ARGV: expected version, lines JSON, retention seconds ('0': no expiry).
SAVE_CART = """
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if current ~= tonumber(ARGV[1]) then return -1 end
redis.call('HSET', KEYS[1], 'version', current + 1, 'lines', ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return current + 1
"""

# KEYS: messages, state.  ARGV: retention seconds, max messages, then message JSONs to append.
APPEND = """
for i = 3, #ARGV do redis.call('RPUSH', KEYS[1], ARGV[i]) end
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
if tonumber(ARGV[1]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end
return 1
"""

# KEYS: messages, state.  ARGV: retention seconds, then field, JSON value pairs.
UPDATE_STATE = """
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
if tonumber(ARGV[1]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end
return 1
"""


def part(value: str) -> str:
    """One key component, with ``%``, ``:``, ``{`` and ``}`` encoded so that ids never collide.

    Braces are encoded too: a brace in an id must never open or close a Redis Cluster hash tag.
    """
    return value.replace("%", "%25").replace(":", "%3A").replace("{", "%7B").replace("}", "%7D")


def hash_tag(business_id: str) -> str:
    """``{<business>}``: the Redis Cluster hash tag that keeps all of one business's keys in one slot.

    The queue's keys and the state keys use this same tag, so that a turn's commit (its state
    and outcome, fenced on the queue's lease list) is one script on one slot.

    Raises:
        ValueError: ``business_id`` is empty (``{}`` is no hash tag: the keys would scatter).
    """
    if not business_id:
        raise ValueError("a business id is required to name its Redis keys")
    return "{" + part(business_id) + "}"


def _check_prefix(prefix: str) -> None:
    if not prefix or "{" in prefix or "}" in prefix:
        raise ValueError(f"a Redis key prefix must be non-empty and hold no braces: {prefix!r}")


@dataclass(frozen=True)
class RedisKeys:
    """Names of every state key, in one place, so the stores and the turn commit agree.

    Every key starts ``<prefix>:{<business>}:``, one hash tag per business (see :func:`hash_tag`).
    """

    prefix: str = "chatpay"

    def __post_init__(self) -> None:
        _check_prefix(self.prefix)

    def business(self, business_id: str) -> str:
        """The prefix every key of ``business_id`` starts with: ``<prefix>:{<business>}``."""
        return f"{self.prefix}:{hash_tag(business_id)}"

    def cart(self, business_id: str, thread_id: str) -> str:
        return f"{self.business(business_id)}:cart:{part(thread_id)}"

    def messages(self, business_id: str, thread_id: str) -> str:
        return f"{self.business(business_id)}:conv:{part(thread_id)}:messages"

    def state(self, business_id: str, thread_id: str) -> str:
        return f"{self.business(business_id)}:conv:{part(thread_id)}:state"

    def claim(self, business_id: str, update_id: int) -> str:
        return f"{self.business(business_id)}:turn:{update_id}:claim"

    def outcome(self, business_id: str, update_id: int) -> str:
        return f"{self.business(business_id)}:turn:{update_id}:outcome"


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
    """:class:`~chatpay.core.ports.CartStore` on a Redis hash per thread, saved by version.

    ``ttl_seconds`` (None: kept for ever) is the cart's expiry, refreshed on every save.
    """

    def __init__(self, client: Redis, keys: RedisKeys, *, ttl_seconds: int | None = RETENTION_SECONDS,
                 retention: Mapping[str, int] | None = None) -> None:
        self._r: Any = client
        self._keys = keys
        self.ttl_seconds = ttl_seconds
        self.retention = dict(retention or {})
        self._save = client.register_script(SAVE_CART)

    def ttl_for(self, business_id: str) -> int:
        """The business's retention in seconds (its own, else the default); 0: kept for ever."""
        return self.retention.get(business_id, self.ttl_seconds or 0)

    async def get(self, business_id: str, thread_id: str) -> Cart:
        doc = await translated("cart get", self._r.hgetall(self._keys.cart(business_id, thread_id)))
        return cart_from_hash(business_id, thread_id, doc)

    async def save(self, cart: Cart) -> Cart:
        key = self._keys.cart(cart.business_id, cart.thread_id)
        version = await translated("cart save", self._save(
            keys=[key], args=[cart.version, lines_json(cart), self.ttl_for(cart.business_id)]))
        if int(version) < 0:
            raise ConcurrencyConflict(f"cart {cart.thread_id}", cart.version)
        return replace(cart, version=int(version))


class RedisConversationStore:
    """:class:`~chatpay.core.ports.ConversationStore`: a bounded list and a state hash per thread.

    Every write refreshes the expiry (``ttl_seconds``; None: kept for ever) of both keys, so a
    conversation's messages and state go away together once it has been idle that long.
    """

    def __init__(self, client: Redis, keys: RedisKeys, *, max_messages: int = MAX_MESSAGES,
                 ttl_seconds: int | None = RETENTION_SECONDS, retention: Mapping[str, int] | None = None) -> None:
        self._r: Any = client
        self._keys = keys
        self.max_messages = max_messages
        self.ttl_seconds = ttl_seconds
        self.retention = dict(retention or {})
        self._append = client.register_script(APPEND)
        self._update_state = client.register_script(UPDATE_STATE)

    def ttl_for(self, business_id: str) -> int:
        """The business's retention in seconds (its own, else the default); 0: kept for ever."""
        return self.retention.get(business_id, self.ttl_seconds or 0)

    def _both(self, business_id: str, thread_id: str) -> list[str]:
        return [self._keys.messages(business_id, thread_id), self._keys.state(business_id, thread_id)]

    async def append(self, business_id: str, thread_id: str, message: Message) -> None:
        await translated("conversation append", self._append(
            keys=self._both(business_id, thread_id),
            args=[self.ttl_for(business_id), self.max_messages, message_json(message)]))

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
        pairs = [x for k, v in plain(changes).items() for x in (k, json.dumps(v))]
        if pairs:
            await translated("conversation update_state", self._update_state(
                keys=self._both(business_id, thread_id), args=[self.ttl_for(business_id), *pairs]))

    async def clear(self, business_id: str, thread_id: str) -> None:
        # One slot (the business's hash tag), so one DEL even on a cluster client.
        await translated("conversation clear", self._r.delete(*self._both(business_id, thread_id)))


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
    """The three stores that must be shared across worker processes, on one Redis (or one Cluster).

    Args:
        client: a ``redis.asyncio.Redis``, ``redis.asyncio.cluster.RedisCluster`` (or
            ``fakeredis.FakeAsyncRedis``) made with ``decode_responses=True``.
        prefix: the first component of every key.
        max_messages: messages kept per conversation.
        ttl_seconds: retention of carts and conversations, refreshed on every write (the
            merchant's ``CHATPAY_RETENTION_DAYS``); None keeps them for ever.
        claim_ttl_seconds: how long claims and outcomes are kept (48 h: Telegram redelivers for 24).
        retention: seconds per business where a business sets its own (``retention_days`` in
            CHATPAY_BUSINESSES); the others keep ``ttl_seconds``.
    """

    def __init__(self, client: Redis, *, prefix: str = "chatpay", max_messages: int = MAX_MESSAGES,
                 ttl_seconds: int | None = RETENTION_SECONDS, claim_ttl_seconds: int = CLAIM_TTL_SECONDS,
                 retention: Mapping[str, int] | None = None) -> None:
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive (or None to keep carts and conversations)")
        if retention and min(retention.values()) <= 0:
            raise ValueError("each business's retention must be positive")
        self.client: Any = client
        self.keys = RedisKeys(prefix)
        self.ttl_seconds = ttl_seconds
        self.carts = RedisCartStore(client, self.keys, ttl_seconds=ttl_seconds, retention=retention)
        self.conversations = RedisConversationStore(client, self.keys, max_messages=max_messages,
                                                    ttl_seconds=ttl_seconds, retention=retention)
        self.turns = RedisTurnStore(client, self.keys, ttl_seconds=claim_ttl_seconds)
