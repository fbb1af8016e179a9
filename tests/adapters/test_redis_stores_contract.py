"""The storage contract suite, run again with carts, conversations and claims on Redis.

The worker keeps those three stores on Redis when there is no MongoDB (see ``chatpay.worker``);
they must behave exactly as every other backend does. Catalogs, events and usage stay on the
in-memory twins here, as they stay in each worker's embedded store. Each test runs on fakeredis,
one redis-server and a three-master Redis Cluster.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import fakeredis
import pytest

from chatpay.adapters.memory import in_memory_stores
from chatpay.adapters.redis import RedisStateStores, connect
from chatpay.core.ports import Stores
from tests.contracts.test_stores import *  # noqa: F403  (the contract's tests, collected here too)
from tests.support.redis_cluster import redis_cluster as redis_cluster  # (fixture)
from tests.support.redis_server import RedisServer


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(params=["fakeredis", "redis-server", "redis-cluster"])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
    if request.param == "fakeredis":
        client = fakeredis.FakeAsyncRedis(decode_responses=True)
    elif request.param == "redis-cluster":
        cluster = request.getfixturevalue("redis_cluster")
        cluster.flushall()
        client = connect(cluster.url, cluster=True)
    else:
        server = request.getfixturevalue("redis_server")
        server.flushall()
        client = connect(server.url)
    state = RedisStateStores(client)
    yield replace(in_memory_stores(), carts=state.carts, conversations=state.conversations, turns=state.turns)
    await client.aclose()
