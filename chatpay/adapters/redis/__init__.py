"""Redis adapters: the reliable update queue and the state shared across worker processes.

- :class:`RedisQueue`: raw Telegram updates in per-user lanes, with heartbeats, reclaim of a
  dead worker's updates, dead letters and a fast path for pre-checkout queries. One queue per
  business, named by :func:`queue_name`.
- :class:`RedisStateStores`: carts, conversations and turn claims on Redis.
- :class:`StagedTurn`: one turn's writes, committed atomically with its outcome.

Many businesses share one Redis (or one Redis Cluster) and nothing else: every key of a
business carries the hash tag ``{<business>}``::

    <CHATPAY_QUEUE>:{<business>}              the inbound list the webhook LPUSHes onto
    <CHATPAY_QUEUE>:{<business>}:<...>        the rest of the queue (chatpay.adapters.redis.scripts)
    chatpay:{<business>}:cart:<thread>        carts, conversations, claims (chatpay.adapters.redis.stores)
    chatpay:tg:{bot<id>}:<...>                Telegram's sending limits, per bot (chatpay.adapters.redis_ratelimit)

so each script and multi-key command touches one cluster slot.

:func:`connect` makes a client the way these adapters need it, for one server or a cluster.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from chatpay.adapters.redis.queue import MAX_ATTEMPTS, MAX_DEAD, MAX_FAILURES, Receipt, RedisQueue, queue_name
from chatpay.adapters.redis.staging import CommitStatus, StagedTurn
from chatpay.adapters.redis.stores import (
    CLAIM_TTL_SECONDS,
    RETENTION_SECONDS,
    RedisCartStore,
    RedisConversationStore,
    RedisKeys,
    RedisStateStores,
    RedisTurnStore,
    hash_tag,
)

__all__ = [
    "CLAIM_TTL_SECONDS",
    "HEALTH_CHECK_INTERVAL",
    "MAX_ATTEMPTS",
    "MAX_DEAD",
    "MAX_FAILURES",
    "RETENTION_SECONDS",
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
    "hash_tag",
    "queue_name",
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


def connect(url: str, *, cluster: bool = False, **options: Any) -> Any:
    """A client for ``url`` that decodes replies and never retries a command on its own.

    The queue's scripts are not all idempotent, so a command must not be silently re-sent
    after a dropped connection; callers retry whole steps instead. Nothing connects until the
    first command.

    With ``cluster=False`` (one server) it is a ``redis.asyncio.Redis``: a connection idle for
    over :data:`HEALTH_CHECK_INTERVAL` is checked before it carries a command and made again if
    its server went away (a restart), which is safe: nothing was sent on it.

    With ``cluster=True`` (``REDIS_CLUSTER=1``) it is a ``redis.asyncio.cluster.RedisCluster``
    that discovers the cluster from ``url``, any one node. It routes each command and script by
    its keys (one business's keys share a slot) and follows MOVED/ASK redirections, which are
    safe (the node did not run the command), without ever closing the client on a redirect (that
    would cut other tasks' commands in flight); a connection error or timeout is not retried but
    raised, and the next command reloads the cluster's layout first (a failover, a restart).

    Raises:
        ValueError: ``url`` is not a redis://, rediss:// (or, for one server, unix://) URL, or
            names a database other than 0 for a cluster.
    """
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    settings: dict[str, Any] = {
        "decode_responses": True, "retry": Retry(NoBackoff(), 0), "socket_connect_timeout": 5.0,
        "socket_timeout": 15.0, "health_check_interval": HEALTH_CHECK_INTERVAL,
    }
    if cluster:
        from redis.asyncio.cluster import RedisCluster
        from redis.exceptions import RedisClusterException

        # A MOVED reply is followed to the right node and the slot map patched. redis-py's default
        # (reinitialize_steps=5) also closes the whole client on every fifth MOVED, which cuts
        # every command other tasks have in flight ("Connection closed by server"): a worker's
        # blocking reads and scripts failed at random after a fresh client's first redirects.
        # 0 never does that; a layout that really changed is still learnt slot by slot from the
        # MOVED replies, and in full after a connection error.
        settings["reinitialize_steps"] = 0
        settings.update(options)
        try:
            return RedisCluster.from_url(url, **settings)
        except RedisClusterException as exc:  # e.g. a database other than 0, or a unix socket
            raise ValueError(str(exc)) from None
    from redis.asyncio import Redis

    settings["connection_class"] = _fresh_connection_class()
    settings.update(options)
    return Redis.from_url(url, **settings)
