"""Fixtures for the production tests: a real redis-server, the Bot API double, a started runtime."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from telegram.request import HTTPXRequest

from chatpay.adapters.redis import RedisQueue, RedisStateStores, connect
from chatpay.adapters.redis_ratelimit import RedisRateLimiter
from chatpay.adapters.telegram import TelegramChannel
from chatpay.bootstrap import Runtime, build
from chatpay.config import Settings
from chatpay.worker import Worker, WorkerOptions
from tests.production.helpers import QUEUE, TOKEN
from tests.support.botapi import BotApiDouble
from tests.support.redis_server import RedisServer


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    redis_server.flushall()
    return redis_server.url


@pytest.fixture
def bot_api() -> Iterator[BotApiDouble]:
    with BotApiDouble() as double:
        yield double


def started(runtime: Runtime) -> Runtime:
    asyncio.run(runtime.start())
    return runtime


@pytest.fixture(scope="session")
def runtime() -> Runtime:
    """The demo store on the embedded runtime (its carts and claims are unused: turns go to Redis)."""
    return started(build(Settings(business_id="demo")))


@dataclass
class Running:
    worker: Worker
    queue: RedisQueue
    state: RedisStateStores
    client: Any


@asynccontextmanager
async def running_worker(runtime: Runtime, redis_url: str, bot_api: BotApiDouble, *, worker_id: str = "w1",
                         shared_state: bool = True, **options: Any) -> AsyncIterator[Running]:
    """A worker serving the queue in this event loop, stopped (drained) on exit.

    ``shared_state=False`` runs turns on the runtime's own stores, as with MongoDB.
    """
    client = connect(redis_url)
    state = RedisStateStores(client)
    queue = RedisQueue(client, QUEUE, worker_id=worker_id, heartbeat_ttl=options.pop("heartbeat_ttl", 5.0))
    limiter = RedisRateLimiter(client, per_chat=100, overall=1000)
    request = HTTPXRequest(connection_pool_size=8, pool_timeout=30.0)
    channel = TelegramChannel(TOKEN, base_url=bot_api.base_url, rate_limiter=limiter, retry_delays=(0.05, 0.1),
                              request=request)
    worker = Worker(runtime, queue, channel, state=state if shared_state else None,
                    options=WorkerOptions(**{"concurrency": 4, "poll": 0.2, **options}))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield Running(worker, queue, state, client)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await channel.close()
        await client.aclose()
