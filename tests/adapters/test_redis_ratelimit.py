"""RedisRateLimiter on a real redis-server: two limiters (as two workers) share Telegram's limits.

Limits and pauses are per bot: two bots (two businesses) on one Redis, or one Redis Cluster,
never hold each other back.

Rates are raised (20 per second per chat instead of 1) so the tests take about a second; the
spacing they assert is the same rule at a different scale.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import fakeredis
import pytest
import redis.asyncio as aioredis

from chatpay.adapters.redis import connect
from chatpay.adapters.redis_ratelimit import RedisRateLimiter, bot_id_of
from chatpay.core.errors import QueueError
from tests.support.redis_cluster import LocalCluster
from tests.support.redis_cluster import redis_cluster as redis_cluster  # (fixture)
from tests.support.redis_server import RedisServer, free_port

BOT = "123456"

JITTER = 0.012  # a timer may wake a few milliseconds late, making the next gap look that much shorter
EXACT = 1e-5  # slots are whole microseconds of Redis time


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with RedisServer() as running:
        yield running


@pytest.fixture
def url(server: RedisServer) -> str:
    server.flushall()
    return server.url


def gaps(times: list[float]) -> list[float]:
    times = sorted(times)
    return [b - a for a, b in zip(times, times[1:], strict=False)]


async def slots(limiter: RedisRateLimiter, chats: list[str]) -> list[float]:
    """The slots a worker is given, one message after another (each reserved once the last is due)."""
    taken = []
    for chat in chats:
        now, slot = await limiter.reserve(chat)
        taken.append(slot)
        await asyncio.sleep(max(0.0, slot - now) / 4)  # interleave the workers' reservations
    return taken


def workers(url: str, count: int = 2, **rates: float) -> list[RedisRateLimiter]:
    return [RedisRateLimiter(aioredis.Redis.from_url(url), bot_id=BOT, **rates) for _ in range(count)]


async def test_two_workers_sending_to_one_chat_keep_its_spacing(url: str) -> None:
    a, b = await asyncio.gather(*(slots(w, ["42"] * 10) for w in workers(url, per_chat=20)))
    assert min(gaps(a + b)) >= 0.05 - EXACT
    assert max(a + b) - min(a + b) < 19 * 0.05 + 0.01  # and no slot was left unused


async def test_acquire_waits_for_its_slot(url: str) -> None:
    start = time.monotonic()
    async def send(limiter: RedisRateLimiter) -> None:
        for _ in range(5):
            await limiter.acquire("42")
    await asyncio.gather(*(send(w) for w in workers(url, per_chat=20)))
    assert 9 * 0.05 - JITTER <= time.monotonic() - start < 9 * 0.05 + 1.0


async def test_other_chats_are_not_held_back_by_a_busy_one(url: str) -> None:
    busy, other = workers(url, per_chat=5, overall=100)
    busy_slots, other_slots = await asyncio.gather(slots(busy, ["busy"] * 3), slots(other, [f"c{i}" for i in range(10)]))
    assert max(busy_slots) - min(busy_slots) >= 2 * 0.2 - EXACT
    assert max(other_slots) - min(busy_slots) < 0.15  # ten chats at 100/s overall: about 0.1 s
    assert min(gaps(busy_slots + other_slots)) >= 0.01 - EXACT


async def test_the_overall_rate_holds_across_chats_and_workers(url: str) -> None:
    a, b = await asyncio.gather(*(slots(w, [f"w{n}-c{i}" for i in range(12)])
                                  for n, w in enumerate(workers(url, per_chat=1, overall=40))))
    assert min(gaps(a + b)) >= 1 / 40 - EXACT
    assert max(a + b) - min(a + b) >= 23 / 40 - EXACT


async def test_a_429_seen_by_one_worker_pauses_all(url: str) -> None:
    seen_429, other = workers(url)
    await seen_429.pause(0.4)
    start = time.monotonic()
    await other.acquire("7")
    assert time.monotonic() - start >= 0.4 - JITTER
    assert await other.paused_for() == 0


async def test_a_pause_after_a_slot_was_taken_still_holds_the_sender(url: str) -> None:
    first, second = workers(url, per_chat=4)
    await first.acquire("42")  # the next slot for chat 42 is 0.25 s away
    start = time.monotonic()
    waiting = asyncio.create_task(second.acquire("42"))
    await asyncio.sleep(0.05)
    await first.pause(0.6)  # a 429 arrives while the second sender sleeps towards its slot
    await waiting
    assert time.monotonic() - start >= 0.05 + 0.6 - JITTER


async def test_it_works_on_embedded_fakeredis_too() -> None:
    shared = fakeredis.FakeServer()
    limiters = [RedisRateLimiter(fakeredis.FakeAsyncRedis(server=shared), bot_id=BOT, per_chat=20) for _ in range(2)]
    a, b = await asyncio.gather(*(slots(w, ["42"] * 4) for w in limiters))
    assert min(gaps(a + b)) >= 0.05 - EXACT
    await limiters[0].pause(0.2)
    start = time.monotonic()
    await limiters[1].acquire("7")
    assert time.monotonic() - start >= 0.2 - JITTER


async def test_an_unreachable_redis_is_a_queue_error() -> None:
    limiter = RedisRateLimiter(aioredis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5, retry=None),
                               bot_id=BOT)
    with pytest.raises(QueueError, match="rate limiter"):
        await limiter.acquire("42")
    with pytest.raises(QueueError):
        await limiter.pause(1)


def test_rates_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RedisRateLimiter(fakeredis.FakeAsyncRedis(), bot_id=BOT, per_chat=0)


def test_the_bot_id_is_the_tokens_numeric_part_and_a_whole_token_is_refused() -> None:
    assert bot_id_of("123456:AAE-secret") == "123456"
    with pytest.raises(ValueError):
        bot_id_of("not-a-token")
    with pytest.raises(ValueError):
        RedisRateLimiter(fakeredis.FakeAsyncRedis(), bot_id="123456:AAE-secret")  # the secret never names a key


def test_one_bots_keys_share_a_cluster_slot_and_hold_no_secret() -> None:
    from redis.crc import key_slot

    limiter = RedisRateLimiter(fakeredis.FakeAsyncRedis(), bot_id=bot_id_of("123456:AAE-secret"))
    keys = [f"{limiter.key_prefix}:chat:{chat}" for chat in ("1", "-100200", "x{y}")]
    keys += [f"{limiter.key_prefix}:all", f"{limiter.key_prefix}:paused"]
    assert limiter.key_prefix == "chatpay:tg:{bot123456}"
    assert len({key_slot(k.encode()) for k in keys}) == 1
    assert not any("secret" in k for k in keys)


@pytest.fixture(params=["redis-server", "redis-cluster"])
def any_url(request: pytest.FixtureRequest) -> tuple[str, bool]:
    """One redis-server's URL, then a Redis Cluster's, emptied; and whether it is a cluster."""
    if request.param == "redis-server":
        return request.getfixturevalue("url"), False
    cluster: LocalCluster = request.getfixturevalue("redis_cluster")
    cluster.flushall()
    return cluster.url, True


async def test_a_429_of_one_bot_never_pauses_another_bot(any_url: tuple[str, bool]) -> None:
    url, cluster = any_url
    client = connect(url, cluster=cluster)
    try:
        paused = RedisRateLimiter(client, bot_id="111", per_chat=20)
        also_paused = RedisRateLimiter(client, bot_id="111", per_chat=20)  # the same bot in another worker
        other = RedisRateLimiter(client, bot_id="222", per_chat=20)
        await paused.pause(5.0)
        start = time.monotonic()
        await other.acquire("7")
        await other.acquire("8")
        assert time.monotonic() - start < 0.5
        assert await other.paused_for() == 0
        assert await also_paused.paused_for() > 4.0
        now, slot = await also_paused.reserve("9")
        assert slot - now > 4.0  # the bot's own workers do wait
    finally:
        await client.aclose()
