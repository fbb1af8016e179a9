"""Redis adapters: the reliable update queue and the state shared across worker processes.

- :class:`RedisQueue`: raw Telegram updates in per-user lanes, with heartbeats, reclaim of a
  dead worker's updates, dead letters and a fast path for pre-checkout queries.
- :class:`RedisStateStores`: carts, conversations and turn claims on Redis.
- :class:`StagedTurn`: one turn's writes, committed atomically with its outcome.

:func:`connect` makes a client the way these adapters need it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from chatpay.adapters.redis.queue import MAX_ATTEMPTS, MAX_FAILURES, Receipt, RedisQueue
from chatpay.adapters.redis.staging import CommitStatus, StagedTurn
from chatpay.adapters.redis.stores import (
    CLAIM_TTL_SECONDS,
    RedisCartStore,
    RedisConversationStore,
    RedisKeys,
    RedisStateStores,
    RedisTurnStore,
)

__all__ = [
    "CLAIM_TTL_SECONDS",
    "MAX_ATTEMPTS",
    "MAX_FAILURES",
    "HEALTH_CHECK_INTERVAL",
    "CommitStatus",
    "Receipt",
    "RedisCartStore",
    "RedisConversationStore",
    "RedisKeys",
    "RedisQueue",
    "RedisStateStores",
    "RedisTurnStore",
    "StagedTurn",
    "connect",
]


HEALTH_CHECK_INTERVAL = 1.0
"""Seconds a pooled connection may sit idle before it is checked (PING) ahead of its next command."""


@cache
def _fresh_connection_class() -> type:
    from redis.asyncio.connection import Connection
    from redis.exceptions import ConnectionError, TimeoutError

    class FreshConnection(Connection):
        """A pooled connection that is made again when its server went away while it sat idle.

        After a Redis restart every idle connection in the pool is dead. Without this, each one
        fails the first command given to it, long after Redis is back, and every such failure
        sends a turn back (and may repeat a message already sent). The failed health check runs
        before the command is written, so connecting again cannot run anything twice.
        """

        remaking = False

        async def check_health(self) -> None:
            try:
                await super().check_health()
            except (ConnectionError, TimeoutError):
                if self.remaking:  # the new connection's own handshake failed: Redis is down
                    raise
                self.remaking = True
                try:
                    await self.disconnect()
                    await self.connect()
                finally:
                    self.remaking = False

    return FreshConnection


def connect(url: str, **options: Any) -> Any:
    """A ``redis.asyncio.Redis`` for ``url`` that decodes replies and never retries on its own.

    The queue's scripts are not all idempotent, so a command must not be silently re-sent
    after a dropped connection; callers retry whole steps instead. A connection idle for over
    :data:`HEALTH_CHECK_INTERVAL` is checked before it carries a command and made again if its
    server went away (a restart), which is safe: nothing was sent on it. Nothing connects
    until the first command.
    """
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    settings: dict[str, Any] = {
        "decode_responses": True, "retry": Retry(NoBackoff(), 0), "socket_connect_timeout": 5.0,
        "socket_timeout": 15.0, "health_check_interval": HEALTH_CHECK_INTERVAL,
        "connection_class": _fresh_connection_class(),
    }
    settings.update(options)
    return Redis.from_url(url, **settings)
