"""Telegram's sending limits, shared by every worker process through Redis.

Telegram allows about one message per second to a chat and about thirty per second in all;
past that it answers 429 with ``retry_after``. :class:`RedisRateLimiter` hands out sending slots
from Redis so that the limits hold across all workers, and a 429 seen by one worker pauses them
all. Nothing is ever dropped: :meth:`RedisRateLimiter.acquire` waits until a slot is free.

How: each chat has a "next free slot" time, there is a shared "paused until" time, and a sorted
set holds the slots taken by all chats. One Lua script (atomic on Redis, and on fakeredis with
its ``lua`` extra) starts from the latest of now, the chat's next slot and the pause, moves on to
the earliest time at least one global interval away from every taken slot (so a busy chat's
future slot does not hold the other chats back), takes it, and returns how long to wait. Times
come from Redis's clock, so workers on different machines agree. Keys expire once idle.

The limits are Telegram's per bot, so the keys are per bot, and carry the bot as a Redis
Cluster hash tag (one slot for each script)::

    chatpay:tg:{bot<id>}:chat:<chat>   the chat's next free slot
    chatpay:tg:{bot<id>}:all           slots taken by all of the bot's chats
    chatpay:tg:{bot<id>}:paused        until when a 429 holds the bot's sends

``<id>`` is the bot's numeric id, the part of its token before ``:`` (:func:`bot_id_of`); the
secret part never becomes a key. Businesses with bots of their own never wait for each other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError

from chatpay.core.errors import QueueError

log = logging.getLogger(__name__)

# KEYS: chat's next slot (string), slots taken by all chats (sorted set), paused-until (string);
# times are microseconds of Redis time. ARGV: chat interval, global interval (microseconds).
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slot = now
local chat = tonumber(redis.call('GET', KEYS[1]) or '0')
if chat > slot then slot = chat end
local paused = tonumber(redis.call('GET', KEYS[3]) or '0')
if paused > slot then slot = paused end
local gap = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - gap)
local taken = redis.call('ZRANGEBYSCORE', KEYS[2], slot - gap + 1, '+inf', 'WITHSCORES')
for i = 2, #taken, 2 do
  local other = tonumber(taken[i])
  if other >= slot + gap then break end
  if other + gap > slot then slot = other + gap end
end
local chat_next = slot + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%d', chat_next), 'PX', math.ceil((chat_next - now) / 1000) + 1000)
redis.call('ZADD', KEYS[2], slot, string.format('%d', slot))
redis.call('PEXPIRE', KEYS[2], math.ceil((slot - now) / 1000) + 1000)
return {now, slot}
"""

# KEYS: paused-until; ARGV: pause length (microseconds, 0 to only read). Returns microseconds left.
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local wanted = now + tonumber(ARGV[1])
if tonumber(ARGV[1]) > 0 and wanted > current then
  redis.call('SET', KEYS[1], string.format('%d', wanted), 'PX', math.ceil(tonumber(ARGV[1]) / 1000) + 1000)
  current = wanted
end
if current > now then return current - now end
return 0
"""


def bot_id_of(token: str) -> str:
    """The bot's numeric id: the part of its token before ``:`` (the secret part is never used).

    Raises:
        ValueError: the token does not start with a numeric id.
    """
    bot_id = token.split(":", 1)[0].strip()
    if not bot_id.isdigit():
        raise ValueError("a Telegram bot token starts with the bot's numeric id and ':'")
    return bot_id


class RedisRateLimiter:
    """Sending slots for Telegram, shared through one Redis by every worker.

    Args:
        client: A ``redis.asyncio.Redis``, ``RedisCluster`` (or fakeredis ``FakeAsyncRedis``) client.
        bot_id: The bot's numeric id (:func:`bot_id_of` its token); limiters of one bot share
            the limits and the pauses, other bots' limiters never see them.
        per_chat: Messages per second to one chat (Telegram: 1).
        overall: Messages per second in all (Telegram: about 30).
        prefix: Key prefix, before the bot's hash tag.
        sleep: How to wait (tests may pass their own).

    Raises:
        ValueError: a rate is not positive, or ``bot_id`` is not a bot's numeric id (a whole
            token is refused: its secret must not end up in a key name).
    """

    def __init__(
        self,
        client: Any,
        *,
        bot_id: str | int,
        per_chat: float = 1.0,
        overall: float = 30.0,
        prefix: str = "chatpay:tg",
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if per_chat <= 0 or overall <= 0:
            raise ValueError("rates must be positive")
        if not str(bot_id).isdigit():
            raise ValueError("bot_id is the numeric part of the bot token before ':' (use bot_id_of)")
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError(f"a Redis key prefix must be non-empty and hold no braces: {prefix!r}")
        self.per_chat = per_chat
        self.overall = overall
        self.bot_id = str(bot_id)
        # One hash tag per bot keeps the keys of a script in one Redis Cluster slot.
        self._prefix = f"{prefix}:{{bot{self.bot_id}}}"
        self._chat_us = round(1_000_000 / per_chat)
        self._global_us = round(1_000_000 / overall)
        self._acquire = client.register_script(_ACQUIRE)
        self._pause = client.register_script(_PAUSE)
        self._sleep = sleep

    @property
    def key_prefix(self) -> str:
        """``chatpay:tg:{bot<id>}``: every key of this bot's limits starts with it."""
        return self._prefix

    @property
    def _pause_key(self) -> str:
        return f"{self._prefix}:paused"

    async def acquire(self, chat_id: str) -> None:
        """Wait until a message to ``chat_id`` may be sent, and take that slot.

        Raises:
            QueueError: Redis could not be reached.
        """
        while True:
            now, slot = await self.reserve(chat_id)
            if slot <= now:
                return
            await self._sleep(slot - now)
            # A 429 seen elsewhere after our slot was reserved still holds everyone back:
            # take a fresh slot after the pause rather than all rushing in when it ends.
            if await self.paused_for() <= 0:
                return

    async def reserve(self, chat_id: str) -> tuple[float, float]:
        """Take the next free slot for ``chat_id`` without waiting for it.

        Returns:
            ``(now, slot)`` in seconds of Redis's clock: the message may go at ``slot``.

        Raises:
            QueueError: Redis could not be reached.
        """
        keys = [f"{self._prefix}:chat:{chat_id}", f"{self._prefix}:all", self._pause_key]
        try:
            now_us, slot_us = await self._acquire(keys=keys, args=[self._chat_us, self._global_us])
        except RedisError as exc:
            raise QueueError(f"rate limiter: {type(exc).__name__}") from exc
        return int(now_us) / 1_000_000, int(slot_us) / 1_000_000

    async def pause(self, seconds: float) -> None:
        """Hold every worker's sending for ``seconds`` (Telegram's ``retry_after``).

        Raises:
            QueueError: Redis could not be reached.
        """
        if seconds <= 0:
            return
        log.warning("pausing all Telegram sends", extra={"seconds": seconds})
        try:
            await self._pause(keys=[self._pause_key], args=[round(seconds * 1_000_000)])
        except RedisError as exc:
            raise QueueError(f"rate limiter: {type(exc).__name__}") from exc

    async def paused_for(self) -> float:
        """Seconds left of a shared pause (0 when sending is allowed)."""
        try:
            left = int(await self._pause(keys=[self._pause_key], args=[0]))
        except RedisError as exc:
            raise QueueError(f"rate limiter: {type(exc).__name__}") from exc
        return left / 1_000_000
