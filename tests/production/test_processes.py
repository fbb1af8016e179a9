"""``python -m chatpay.worker`` as a real process: refusal, SIGTERM drain, a Redis restart."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.production.helpers import (
    QUEUE,
    TOKEN,
    PersistentRedis,
    SlowOpenAI,
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
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


def serving(r: redis.Redis, worker_id: str) -> bool:
    return any(w.startswith(f"{worker_id}.") for w in r.smembers(f"{QUEUE}:workers"))


def replies(bot_api: BotApiDouble) -> list[tuple[str, str]]:
    return [(str(c.params["chat_id"]), c.params["text"]) for c in bot_api.delivered("sendMessage")]


def show_logs(*workers: WorkerProcess) -> str:
    return "\n".join(f"--- {w.worker_id}\n" + w.log_path.read_text()[-3000:] for w in workers)


def test_the_worker_refuses_to_start_without_a_bot_token(tmp_path: Path) -> None:
    env = worker_env("redis://127.0.0.1:1/0", "http://127.0.0.1:1", "w")
    del env["TELEGRAM_BOT_TOKEN"]
    done = subprocess.run([sys.executable, "-m", "chatpay.worker"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "TELEGRAM_BOT_TOKEN is not set" in done.stderr
    assert done.stdout == ""


async def test_sigterm_lets_in_flight_turns_finish_and_exits_0(
    redis_server: RedisServer, bot_api: BotApiDouble, tmp_path: Path
) -> None:
    slow = SlowOpenAI(delay=2.0).start()
    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    env = worker_env(redis_server.url, bot_api.base_url, "drain", OPENAI_API_KEY="sk-test",
                     OPENAI_BASE_URL=slow.base_url)
    worker = WorkerProcess(env, "--concurrency", "3", "--drain-timeout", "30", log_dir=tmp_path)
    try:
        await wait_until(lambda: serving(r, "drain"), 90, "the worker to serve")
        for user in range(1, 7):
            r.lpush(QUEUE, message(user, 300 + user, "hello there, how are you today?"))
        await wait_until(lambda: slow.calls >= 3, 20, "three slow turns in flight")
        answered_before = len(replies(bot_api))
        worker.signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.wait, 40)
    finally:
        worker.signal(signal.SIGKILL)
        slow.stop()
    assert code == 0, show_logs(worker)
    answered = {chat for chat, _ in replies(bot_api)}
    assert answered_before == 0 and len(answered) >= 3  # the turns in flight at SIGTERM were finished
    left = sum(r.llen(k) for k in r.scan_iter(f"{QUEUE}:lane:*"))
    assert len(answered) + left == 6  # the rest wait in Redis for another worker, none lost
    assert not r.smembers(f"{QUEUE}:workers") and not list(r.scan_iter(f"{QUEUE}:w:*"))
    assert r.llen(f"{QUEUE}:ready") == left  # handed back, ready for the next worker
    stopped = [e for e in worker.logs() if e.get("msg") == "worker stopped"]
    assert stopped and stopped[0]["counts"]["done"] == len(answered)
    assert TOKEN not in worker.log_path.read_text()


async def test_the_worker_rides_out_a_redis_restart_and_loses_nothing(bot_api: BotApiDouble, tmp_path: Path) -> None:
    plan = shopping_plan(users=8, per_user=5, seed=3)
    with PersistentRedis() as server:
        r = redis.Redis.from_url(server.url, decode_responses=True)
        worker = WorkerProcess(worker_env(server.url, bot_api.base_url, "survivor"), "--heartbeat-ttl", "3",
                               log_dir=tmp_path)
        try:
            await wait_until(lambda: serving(r, "survivor"), 90, "the worker to serve")
            half = len(plan.pushes) // 2
            for update_id, user, text in plan.pushes[:half]:
                r.lpush(QUEUE, message(update_id, user, text))
            await wait_until(lambda: len(replies(bot_api)) >= 8, 30, "some replies before the restart")
            await asyncio.to_thread(server.restart, 1.5)
            r = redis.Redis.from_url(server.url, decode_responses=True)
            for update_id, user, text in plan.pushes[half:]:
                r.lpush(QUEUE, message(update_id, user, text))
            # Not just a reply count: a replayed message counts too, and the last turns record
            # their outcome after Telegram has their replies. Wait until the queue is empty.
            try:
                await wait_until(lambda: _settled(r, bot_api, len(plan.pushes)), 90, "every update finished")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{show_logs(worker)}") from None
            assert worker.proc.poll() is None, show_logs(worker)  # it survived
            carts = {u: _items(r, u) for u in plan.expected}
            outcomes = {uid: _outcome(r, uid) for uid, _, _ in plan.pushes}
            worker.signal(signal.SIGTERM)
            code = await asyncio.to_thread(worker.wait, 40)
        finally:
            worker.signal(signal.SIGKILL)
    figures = audit(plan, replies(bot_api), carts, outcomes)
    print("redis restart:", figures)
    assert code == 0
    assert figures["lost"] == figures["doubled_effects"] == figures["order_violations"] == 0, show_logs(worker)
    assert any("unreachable" in e.get("msg", "") or "failed; retrying" in e.get("msg", "") for e in worker.logs())


def _settled(r: redis.Redis, bot_api: BotApiDouble, updates: int) -> bool:
    """Every update acknowledged (an update leaves its lane only once its replies went out)."""
    if len(replies(bot_api)) < updates:
        return False
    return not r.llen(QUEUE) and not r.llen(f"{QUEUE}:staging") and not list(r.scan_iter(f"{QUEUE}:lane:*"))


def _items(r: redis.Redis, user: int) -> int:
    lines = r.hget(cart_key(user), "lines")
    return sum(q for _, _, q in json.loads(lines)) if lines else 0


def _outcome(r: redis.Redis, update_id: int) -> dict[str, object] | None:
    raw = r.get(outcome_key(update_id))
    return json.loads(raw) if raw else None
