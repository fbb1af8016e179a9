"""The businesses one worker process serves: each one's queue and bot, and a bounded cache of their runtimes."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chatpay.adapters.redis import RedisQueue
from chatpay.bootstrap import Runtime

if TYPE_CHECKING:
    from chatpay.worker.options import BotChannel

log = logging.getLogger("chatpay.worker.service")  # the worker's one logger name, as before the split


@dataclass(frozen=True)
class Tenant:
    """One business a worker serves: its queue (its own keys) and its own bot."""

    business_id: str
    queue: RedisQueue
    channel: BotChannel
    payments: str = "sandbox"


class Runtimes:
    """Each business's wired runtime, built once and kept in a bounded cache (least recently used out).

    A runtime holds a business's engine: its retrieval index and models. Indexes follow catalog
    versions by themselves (each turn reads the catalog, and the retriever re-indexes a new version),
    so a merchant's re-import is served without a restart. ``load`` builds and starts one runtime;
    two turns of one business arriving together build it once.
    """

    def __init__(self, load: Callable[[str], Awaitable[Runtime]], *, capacity: int = 32) -> None:
        self._load = load
        self.capacity = max(1, capacity)
        self._cache: OrderedDict[str, Runtime] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self.loads = 0

    @classmethod
    def fixed(cls, runtime: Runtime) -> Runtimes:
        """One started runtime for its one business (tests, benchmarks, the one-business shortcut)."""

        async def load(business_id: str) -> Runtime:
            return runtime

        cache = cls(load)
        cache._cache[runtime.settings.business_id] = runtime
        return cache

    async def get(self, business_id: str) -> Runtime:
        cached = self._cache.get(business_id)
        if cached is not None:
            self._cache.move_to_end(business_id)
            return cached
        async with self._locks.setdefault(business_id, asyncio.Lock()):
            cached = self._cache.get(business_id)
            if cached is None:
                cached = await self._load(business_id)
                self.loads += 1
                self._cache[business_id] = cached
                while len(self._cache) > self.capacity:
                    evicted, _ = self._cache.popitem(last=False)
                    log.info("business runtime evicted from the cache", extra={"business_id": evicted})
            return cached

    def loaded(self) -> list[str]:
        return list(self._cache)
