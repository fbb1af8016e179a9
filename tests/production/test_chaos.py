"""Chaos: worker processes killed with SIGKILL at random while 50 shoppers send 1,000 updates.

Three ``python -m chatpay.worker`` processes share a real redis-server (once) or a real
three-master Redis Cluster (once more, with ``REDIS_CLUSTER=1``) and the HTTP Bot API double. Updates are pushed the way the webhook pushes them while a killer SIGKILLs a random
serving worker every few seconds (at least 20 times) and starts a fresh one in its place.
Afterwards the Bot API double's records and Redis must show: every update answered, none
lost, no effect applied twice (each cart holds exactly the user's adds), each user's replies
in order, and a repeated reply only ever as an identical replay of the one before it.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatpay.adapters.redis import connect
from tests.production.helpers import (
    QUEUE,
    WorkerProcess,
    audit,
    cart_key,
    message,
    outcome_key,
    shopping_plan,
    wait_until,
    worker_env,
)
from tests.support.botapi import BotApiDouble
from tests.support.redis_cluster import LocalCluster, RedisUrl, is_cluster
from tests.support.redis_server import RedisServer

USERS, PER_USER, WORKERS, KILLS = 50, 20, 3, 20
PUSH_RATE = 12.0  # updates per second, so that the kills land while work is in flight

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]


@pytest.fixture(params=["redis-server", "redis-cluster"])
def redis_target(request: pytest.FixtureRequest) -> Iterator[RedisUrl]:
    """A fresh redis-server, then a fresh three-master Redis Cluster: the URL the workers get."""
    if request.param == "redis-server":
        with RedisServer() as server:
            yield RedisUrl(server.url, cluster=False)
    else:
        with LocalCluster() as cluster:
            yield cluster.url


class Fleet:
    """Worker slots; each incarnation gets a fresh WORKER_ID."""

    def __init__(self, redis_url: str, bot_api_url: str, log_dir: Path) -> None:
        self.redis_url, self.bot_api_url, self.log_dir = redis_url, bot_api_url, log_dir
        self.current: list[WorkerProcess] = []
        self.all: list[WorkerProcess] = []
        self.generation = 0

    def spawn(self) -> WorkerProcess:
        self.generation += 1
        env = worker_env(self.redis_url, self.bot_api_url, f"chaos-{self.generation}")
        worker = WorkerProcess(env, "--concurrency", "8", "--heartbeat-ttl", "2", "--drain-timeout", "20",
                               "--log-level", "WARNING", log_dir=self.log_dir)
        self.all.append(worker)
        return worker


async def test_sigkilled_workers_lose_nothing_and_do_nothing_twice(
    redis_target: RedisUrl, bot_api: BotApiDouble, tmp_path: Path
) -> None:
    rng = random.Random(11)
    plan = shopping_plan(USERS, PER_USER, seed=5)
    r = connect(redis_target, cluster=is_cluster(redis_target))
    fleet = Fleet(redis_target, bot_api.base_url, tmp_path)
    fleet.current = [fleet.spawn() for _ in range(WORKERS)]
    started = time.monotonic()
    kills = held_at_kill = 0

    async def serving() -> set[str]:  # WORKER_IDs serving (the worker adds a suffix per process)
        return {w.split(".", 1)[0] for w in await r.smembers(f"{QUEUE}:workers")}

    async def push_all() -> None:
        for update_id, user, text in plan.pushes:
            await r.lpush(QUEUE, message(update_id, user, text))
            await asyncio.sleep(1 / PUSH_RATE)

    try:
        await wait_until(lambda: _all_serving(serving, fleet.current), 120, "three workers serving", step=0.2)
        phases = {"startup_s": time.monotonic() - started}
        pusher = asyncio.create_task(push_all())
        while kills < KILLS:
            await asyncio.sleep(rng.uniform(1.0, 2.5))
            up = await serving()
            ready = [i for i, w in enumerate(fleet.current) if w.worker_id in up]
            if len(ready) < 2:  # keep one serving; the others may still be starting
                continue
            slot = rng.choice(ready)
            victim = fleet.current[slot]
            for worker in await r.smembers(f"{QUEUE}:workers"):  # the registry, not a SCAN of every node
                if worker.split(".", 1)[0] == victim.worker_id:
                    held_at_kill += int(await r.llen(f"{QUEUE}:w:{worker}:lanes"))
            await asyncio.to_thread(victim.kill)
            kills += 1
            fleet.current[slot] = fleet.spawn()
        phases["kills_done_s"] = time.monotonic() - started
        await pusher
        phases["pushed_s"] = time.monotonic() - started
        expected = len(plan.pushes)
        await wait_until(lambda: _finished(r, bot_api, expected), 180, "every update answered", step=0.5)
        phases["answered_s"] = time.monotonic() - started

        async def all_serving() -> bool:  # a replacement spawned at the last kill may still be starting
            up = await serving()
            return all(w.worker_id in up for w in fleet.current)

        # SIGTERM is asked of serving workers: one still importing Python has no handler yet and dies of it.
        await wait_until(all_serving, 120, "every current worker serving", step=0.2)
        for worker in fleet.current:
            worker.signal(signal.SIGTERM)
        codes = [await asyncio.to_thread(w.wait, 60) for w in fleet.current]
        carts = {user: await _items(r, user) for user in plan.expected}
        outcomes = {uid: await _outcome(r, uid) for uid, _, _ in plan.pushes}
        dead = await r.llen(f"{QUEUE}:dead")
    finally:
        for worker in fleet.all:
            worker.signal(signal.SIGKILL)
        await r.aclose()
    replies = [(str(c.params["chat_id"]), c.params["text"]) for c in bot_api.delivered("sendMessage")]
    figures = audit(plan, replies, carts, outcomes)
    figures.update(kills=kills, lanes_held_at_kill=held_at_kill, workers_started=len(fleet.all),
                   dead_letters=dead, seconds=round(time.monotonic() - started, 1),
                   **{k: round(v, 1) for k, v in phases.items()})
    print(f"\nchaos ({'cluster' if is_cluster(redis_target) else 'one server'}):", json.dumps(figures))
    assert codes == [0] * WORKERS
    assert kills >= KILLS and held_at_kill > 0  # the kills hit work in flight
    assert figures["lost"] == 0
    assert figures["doubled_effects"] == 0
    assert figures["order_violations"] == 0
    assert dead == 0
    assert not bot_api.violations


async def _all_serving(serving: object, workers: list[WorkerProcess]) -> bool:
    up = await serving()  # type: ignore[operator]
    return all(w.worker_id in up for w in workers)


async def _finished(r: Any, bot_api: BotApiDouble, expected: int) -> bool:
    if len(bot_api.delivered("sendMessage")) < expected:
        return False
    from chatpay.adapters.redis import RedisQueue

    depth = await RedisQueue(r, QUEUE).depth()  # lanes counted through the registries
    return not depth["lanes"] and not depth["inbound"] and not depth["staging"]


async def _items(r: Any, user: int) -> int:
    lines = await r.hget(cart_key(user), "lines")
    return sum(q for _, _, q in json.loads(lines)) if lines else 0


async def _outcome(r: Any, update_id: int) -> dict[str, object] | None:
    raw = await r.get(outcome_key(update_id))
    return json.loads(raw) if raw else None
