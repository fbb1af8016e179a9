"""Redis adapters: the reliable update queue and the state shared across worker processes.

- :class:`RedisQueue`: raw Telegram updates in per-user lanes, with heartbeats, reclaim of a
  dead worker's updates, dead letters and a fast path for pre-checkout queries.
- :class:`RedisStateStores`: carts, conversations and turn claims on Redis.
- :class:`StagedTurn`: one turn's writes, committed atomically with its outcome.

:func:`connect` makes a client the way these adapters need it.
"""

from __future__ import annotations

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


def connect(url: str, **options: Any) -> Any:
    """A ``redis.asyncio.Redis`` for ``url`` that decodes replies and never retries on its own.

    The queue's scripts are not all idempotent, so a command must not be silently re-sent
    after a dropped connection; callers retry whole steps instead. Nothing connects until
    the first command.
    """
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    settings: dict[str, Any] = {
        "decode_responses": True, "retry": Retry(NoBackoff(), 0), "socket_connect_timeout": 5.0,
        "socket_timeout": 15.0, "health_check_interval": 10,
    }
    settings.update(options)
    return Redis.from_url(url, **settings)
