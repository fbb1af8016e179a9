"""A Redis client for the webhook whose commands wait for a connection instead of failing at once.

Split from :mod:`chatpay.webhook`, which re-exports these names.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from chatpay.adapters.redis import connect
from chatpay.config import Settings

POOL_SIZE = 64
"""Redis connections the webhook holds at most; an LPUSH takes well under a millisecond, so 64
carry thousands of updates a second, and Redis never sees a connection per HTTP request."""
REDIS_WAIT = 5.0
"""Seconds a request waits for a free Redis connection before it is answered 503."""


class BoundedRedis:
    """The webhook's Redis commands, at most ``size`` at a time, each waiting up to ``wait`` s for a turn.

    redis-py's pool (plain or cluster) raises "Too many connections" the moment its
    ``max_connections`` are busy, and a burst of a thousand webhook requests is a thousand
    LPUSHes at once: the ones past the pool's size failed at once with 503. With this gate in
    front of a pool of the same size, a burst queues for a connection (an LPUSH takes well under
    a millisecond), Redis sees at most ``size`` connections from this process, and only a
    Redis slower than ``wait`` seconds turns into 503 (:class:`TimeoutError`).
    """

    def __init__(self, client: Any, *, size: int = POOL_SIZE, wait: float = REDIS_WAIT) -> None:
        self.client = client
        self.wait = wait
        self._slots = asyncio.Semaphore(size)

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        async with asyncio.timeout(self.wait):
            await self._slots.acquire()
        try:
            yield
        finally:
            self._slots.release()

    async def push(self, queue: str, raw: str) -> None:
        """``LPUSH queue raw``."""
        async with self._slot():
            await self.client.lpush(queue, raw)

    async def ping(self) -> bool:
        """Whether Redis answers PING."""
        async with self._slot():
            return bool(await self.client.ping())


def redis_client(settings: Settings, *, size: int = POOL_SIZE) -> Any:
    """The webhook's Redis client: :func:`chatpay.adapters.redis.connect` with a pool of ``size``.

    A cluster client with ``REDIS_CLUSTER=1``. Raises ValueError for a URL that is not Redis's.
    """
    assert settings.redis_url
    return connect(settings.redis_url, cluster=settings.redis_cluster, max_connections=size)
