"""``connect``: a client that rides out a Redis restart without failing commands afterwards, or a cluster client."""

from __future__ import annotations

import asyncio

import pytest
import redis.exceptions

from chatpay.adapters.redis import HEALTH_CHECK_INTERVAL, connect
from tests.production.helpers import PersistentRedis
from tests.support.redis_cluster import LocalCluster
from tests.support.redis_cluster import redis_cluster as redis_cluster  # (fixture)

pytestmark = pytest.mark.timeout(60)

POOLED = 6


async def test_idle_connections_made_before_a_restart_serve_commands_after_it() -> None:
    with PersistentRedis() as server:
        client = connect(server.url)
        try:
            # Six commands at once leave six connections in the pool, all idle through the restart.
            await asyncio.gather(*(client.blpop([f"nothing:{i}"], timeout=0.1) for i in range(POOLED)))
            assert len(client.connection_pool._available_connections) == POOLED
            await asyncio.to_thread(server.restart, HEALTH_CHECK_INTERVAL + 0.5)
            values = await asyncio.gather(*(client.incr("after-restart") for _ in range(POOLED)))
            assert sorted(values) == list(range(1, POOLED + 1))  # each ran once, none failed
        finally:
            await client.aclose()


async def test_a_command_while_redis_is_down_still_fails_at_once() -> None:
    with PersistentRedis() as server:
        client = connect(server.url)
        try:
            await client.set("k", "v")
            await asyncio.sleep(HEALTH_CHECK_INTERVAL + 0.2)
            server.stop()
            with pytest.raises(redis.exceptions.ConnectionError):
                await client.get("k")
        finally:
            await client.aclose()


async def test_a_cluster_client_is_found_from_any_node_and_never_retries_on_its_own(redis_cluster: LocalCluster) -> None:
    from redis.asyncio.cluster import RedisCluster

    redis_cluster.flushall()
    client = connect(f"redis://127.0.0.1:{redis_cluster.ports[-1]}/0", cluster=True)
    try:
        assert isinstance(client, RedisCluster)
        assert client.retry.get_retries() == 0  # a script is never silently run twice
        for i in range(30):  # keys on every node: the client routes each by its slot
            assert await client.incr(f"k{i}") == 1
        nodes = {client.get_node_from_key(f"k{i}").name for i in range(30)}
        assert len(nodes) == 3
        assert await client.get("k0") == "1"  # decoded
    finally:
        await client.aclose()


def test_a_cluster_url_with_a_database_other_than_0_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        connect("redis://127.0.0.1:1/3", cluster=True)


async def test_redirects_never_cut_another_tasks_command_in_flight(redis_cluster: LocalCluster) -> None:
    """A stale slot map (a fresh client, a resharding) makes commands bounce with MOVED. Following
    them must not close the client: a worker's blocking read on another node has to survive."""
    redis_cluster.flushall()
    client = connect(redis_cluster.url, cluster=True)
    try:
        await client.ping()
        waiter = client.get_node_from_key("{a}list")
        key = next(f"{{t{i}}}k" for i in range(100) if client.get_node_from_key(f"{{t{i}}}k").name != waiter.name)
        blocked = asyncio.create_task(client.brpoplpush("{a}list", "{a}taken", 3))
        await asyncio.sleep(0.2)  # the read is on the wire, holding one of the waiter's connections
        for i in range(12):  # past redis-py's default of five MOVEDs before it closes every connection
            client.nodes_manager.slots_cache[client.keyslot(key)] = [waiter]  # a stale map: the wrong node
            assert await client.incr(key) == i + 1  # redirected to the right node, run once
        await client.lpush("{a}list", "x")
        assert await blocked == "x"  # the blocking read was never cut
    finally:
        await client.aclose()
