"""Fixtures for the production tests: a real redis-server (or Redis Cluster), the Bot API double, a started runtime.

``redis_url`` is one redis-server, emptied per test. ``any_redis_url`` is parametrized: once
one redis-server, once a real three-master Redis Cluster (a :class:`RedisUrl` that says so);
a module overrides ``redis_url`` with it to run all its tests on both.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from chatpay.adapters.redis import RedisQueue, RedisStateStores, connect, queue_name
from chatpay.adapters.redis_ratelimit import RedisRateLimiter, bot_id_of
from chatpay.adapters.telegram import TelegramChannel
from chatpay.adapters.telegram_http import AiohttpRequest
from chatpay.bootstrap import Runtime, build
from chatpay.config import Settings
from chatpay.worker import Worker, WorkerOptions
from tests.production.helpers import TOKEN
from tests.support.botapi import BotApiDouble
from tests.support.redis_cluster import LocalCluster, RedisUrl, is_cluster
from tests.support.redis_cluster import redis_cluster as redis_cluster  # (fixture)
from tests.support.redis_server import RedisServer

QUEUE_BASE = "chatpay_queue"  # CHATPAY_QUEUE's default; each business's queue is queue_name(QUEUE_BASE, business)


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    redis_server.flushall()
    return RedisUrl(redis_server.url, cluster=False)


@pytest.fixture(params=["redis-server", "redis-cluster"])
def any_redis_url(request: pytest.FixtureRequest) -> RedisUrl:
    """One redis-server, then a three-master Redis Cluster; emptied for this test."""
    if request.param == "redis-server":
        server: RedisServer = request.getfixturevalue("redis_server")
        server.flushall()
        return RedisUrl(server.url, cluster=False)
    cluster: LocalCluster = request.getfixturevalue("redis_cluster")
    cluster.flushall()
    return cluster.url


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
    limiter: RedisRateLimiter


@asynccontextmanager
async def running_worker(runtime: Runtime, redis_url: str, bot_api: BotApiDouble, *, worker_id: str = "w1",
                         shared_state: bool = True, token: str = TOKEN, **options: Any) -> AsyncIterator[Running]:
    """A worker serving the queue of the runtime's business in this event loop, stopped (drained) on exit.

    It is wired as ``chatpay.worker.serve`` wires one: a cluster client for a cluster's
    :class:`RedisUrl`, the queue ``queue_name(QUEUE_BASE, business)``, a rate limiter for the
    bot of ``token``. ``shared_state=False`` runs turns on the runtime's own stores, as with MongoDB.
    """
    client = connect(redis_url, cluster=is_cluster(redis_url))
    state = RedisStateStores(client)
    queue = RedisQueue(client, queue_name(QUEUE_BASE, runtime.settings.business_id), worker_id=worker_id,
                       heartbeat_ttl=options.pop("heartbeat_ttl", 5.0))
    limiter = RedisRateLimiter(client, bot_id=bot_id_of(token), per_chat=100, overall=1000)
    request = AiohttpRequest(connections=8)
    channel = TelegramChannel(token, base_url=bot_api.base_url, rate_limiter=limiter, retry_delays=(0.05, 0.1),
                              request=request)
    worker = Worker(runtime, queue, channel, state=state if shared_state else None,
                    options=WorkerOptions(**{"concurrency": 4, "poll": 0.2, **options}))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield Running(worker, queue, state, client, limiter)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await channel.close()
        await client.aclose()
