"""``chatpay webhook`` as a real process under a burst: 1,000 simultaneous updates, every one queued.

The burst that once got 898 answers of 503: redis-py's pool refused every LPUSH past its 100th
connection at once. Now every request is answered 200, every update is in Redis exactly once,
and the webhook held no more Redis connections than its pool.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import redis

from chatpay.adapters.redis import queue_name
from chatpay.webhook import POOL_SIZE, SECRET_HEADER
from tests.production.helpers import TOKEN, message
from tests.support.redis_server import RedisServer, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
SECRET = "load-test_secret"
BURST = 1000


def enough_descriptors(n: int) -> None:
    """This process opens ``n`` client sockets at once: raise the soft descriptor limit if it is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < n + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n + 256, hard), hard))


@pytest.fixture
def webhook(redis_server: RedisServer) -> Iterator[int]:
    """``chatpay webhook`` with its defaults on a free port; its log goes to a file (a full pipe would stall it)."""
    redis_server.flushall()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}}
    env.update({"PYTHONPATH": str(ROOT), "REDIS_URL": redis_server.url, "TELEGRAM_WEBHOOK_SECRET": SECRET,
                "TELEGRAM_BOT_TOKEN": TOKEN})
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([sys.executable, "-m", "chatpay.cli", "webhook", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=log)
        try:
            deadline = time.monotonic() + 20
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise AssertionError(f"chatpay webhook exited: {log.read().decode()[-2000:]}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                        break
                except (urllib.error.URLError, ConnectionError):
                    assert time.monotonic() < deadline, "chatpay webhook did not come up"
                    time.sleep(0.05)
            yield port
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        log.seek(0)
        text = log.read().decode()
    assert proc.returncode == 0, text[-2000:]
    assert "could not enqueue" not in text and SECRET not in text and TOKEN not in text


async def burst(port: int, count: int) -> tuple[Counter[int | str], float]:
    """POST ``count`` distinct updates at once, each on its own connection; the answers and the seconds taken."""
    url = f"http://127.0.0.1:{port}/telegram/webhook"
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        async def one(i: int) -> int | str:
            try:
                async with http.post(url, data=message(i, 500_000 + i, f"add {i % 7 + 1} coffees"),
                                     headers={SECRET_HEADER: SECRET}) as response:
                    await response.read()
                    return response.status
            except aiohttp.ClientError as exc:
                return type(exc).__name__

        started = time.perf_counter()
        answers = await asyncio.gather(*(one(i) for i in range(1, count + 1)))
        return Counter(answers), time.perf_counter() - started


def test_a_thousand_simultaneous_updates_are_all_answered_200_and_all_queued(webhook: int,
                                                                             redis_server: RedisServer) -> None:
    enough_descriptors(BURST)
    answers, seconds = asyncio.run(burst(webhook, BURST))
    print(f"\nwebhook burst: {BURST} simultaneous requests in {seconds:.2f} s ({BURST / seconds:.0f} requests/s)")
    assert answers == Counter({200: BURST}), answers
    store = redis.Redis.from_url(redis_server.url)
    queued = store.lrange(queue_name("chatpay_queue", "demo"), 0, -1)  # CHATPAY_QUEUE's default
    assert sorted(json.loads(raw)["update_id"] for raw in queued) == list(range(1, BURST + 1))
    clients = store.info("clients")["connected_clients"]
    assert clients <= POOL_SIZE + 2, f"{clients} Redis connections: the pool is not bounded"
    assert seconds < 30
