"""``connect``: a client that rides out a Redis restart without failing commands afterwards."""

from __future__ import annotations

import asyncio

import pytest
import redis.exceptions

from chatpay.adapters.redis import HEALTH_CHECK_INTERVAL, connect
from tests.production.helpers import PersistentRedis

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
