"""Webhook throughput and latency: bursts of 1,000 and 2,000 simultaneous updates.

``chatpay webhook`` runs as a real process (its defaults: a Redis pool of 64, at most 2,000
connections) in front of a real redis-server. Each run opens a fresh connection per request
and POSTs every update at once (aiohttp, ``TCPConnector(limit=0)``), the way a burst of
Telegram deliveries arrives; the clock runs from the first request to the last answer. A run
counts only if every answer is 200 and every update is in the queue. The load generator
shares the machine (and its CPUs) with the webhook, so these are lower bounds.

Run: python bench/bench_webhook.py [--quick]. Writes bench/results/webhook.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import redis  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402

from chatpay.adapters.redis import queue_name  # noqa: E402
from chatpay.webhook import DEFAULT_MAX_CONNECTIONS, POOL_SIZE, SECRET_HEADER  # noqa: E402
from tests.support.redis_server import RedisServer, free_port  # noqa: E402

SECRET = "bench-webhook_secret"
TOKEN = "123456:bench-token"
QUEUE = queue_name("chatpay_queue", "demo")


def update(update_id: int) -> bytes:
    user = 10_000_000 + update_id
    return json.dumps({"update_id": update_id, "message": {
        "message_id": update_id, "date": 1_760_000_000, "chat": {"id": user, "type": "private"},
        "from": {"id": user, "is_bot": False, "first_name": "B"}, "text": "add 2 ethiopian coffees"}}).encode()


def start_webhook(redis_url: str, log: Any) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR", "VIRTUAL_ENV"}}
    env.update({"PYTHONPATH": str(ROOT), "REDIS_URL": redis_url, "TELEGRAM_WEBHOOK_SECRET": SECRET,
                "TELEGRAM_BOT_TOKEN": TOKEN})
    proc = subprocess.Popen([sys.executable, "-m", "chatpay.cli", "webhook", "--port", str(port)], env=env,
                            cwd=tempfile.mkdtemp(prefix="chatpay-bench-"), stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError("chatpay webhook exited; see its log")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                return proc, port
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise RuntimeError("chatpay webhook did not come up") from None
            time.sleep(0.05)


async def one_run(port: int, count: int, first_update: int) -> dict[str, Any]:
    """POST ``count`` updates at once on fresh connections: answers, seconds, per-request latencies."""
    url = f"http://127.0.0.1:{port}/telegram/demo"
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as http:
        async def one(update_id: int) -> int | str:
            started = time.perf_counter()
            try:
                async with http.post(url, data=update(update_id), headers={SECRET_HEADER: SECRET}) as response:
                    await response.read()
                    status: int | str = response.status
            except aiohttp.ClientError as exc:
                status = type(exc).__name__
            latencies.append(time.perf_counter() - started)
            return status

        started = time.perf_counter()
        answers = await asyncio.gather(*(one(first_update + i) for i in range(count)))
        seconds = time.perf_counter() - started
    latencies.sort()
    return {"answers": Counter(answers), "seconds": seconds, "p50": latencies[len(latencies) // 2],
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2 repeats instead of 5")
    parser.add_argument("--repeats", type=int, default=0)
    args = parser.parse_args()
    repeats = args.repeats or (2 if args.quick else 5)
    bursts = (1000, 2000)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(bursts) + 512  # this process holds a socket per simultaneous request
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    console = Console(width=max(Console().width, 100))
    results: list[dict[str, Any]] = []
    update_id = 1
    with RedisServer() as server, tempfile.TemporaryFile() as log, \
            Progress(console=console, transient=True) as progress:
        r = redis.Redis.from_url(server.url)
        proc, port = start_webhook(server.url, log)
        try:
            asyncio.run(one_run(port, 200, 10_000_000))  # warm-up, not counted
            task = progress.add_task("webhook bursts", total=len(bursts) * repeats)
            for burst in bursts:
                runs = []
                for _ in range(repeats):
                    r.flushall()
                    run = asyncio.run(one_run(port, burst, update_id))
                    queued = r.llen(QUEUE)
                    run["clients"] = r.info("clients")["connected_clients"] - 1  # less this one
                    update_id += burst
                    if run["answers"] != Counter({200: burst}) or queued != burst:
                        raise RuntimeError(f"burst of {burst}: answers {dict(run['answers'])}, {queued} queued")
                    runs.append(run)
                    progress.advance(task)
                results.append({
                    "concurrent": burst, "repeats": repeats,
                    "requests_per_s": statistics.median(burst / run["seconds"] for run in runs),
                    "p50_ms": statistics.median(run["p50"] for run in runs) * 1000,
                    "p99_ms": statistics.median(run["p99"] for run in runs) * 1000,
                    "runs_requests_per_s": [burst / run["seconds"] for run in runs],
                    "redis_connections_max": max(run["clients"] for run in runs)})
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)

    table = Table(title=f"chatpay webhook under a burst (Redis pool {POOL_SIZE}, "
                        f"--max-connections {DEFAULT_MAX_CONNECTIONS}; median of {repeats} runs)")
    for col in ("simultaneous requests", "answered 200", "median requests/s", "p50 latency", "p99 latency", "runs",
                "Redis connections"):
        table.add_column(col, justify="right")
    for res in results:
        table.add_row(f"{res['concurrent']:,}", "all", f"{res['requests_per_s']:.0f}", f"{res['p50_ms']:.0f} ms",
                      f"{res['p99_ms']:.0f} ms", " ".join(f"{x:.0f}" for x in res["runs_requests_per_s"]),
                      f"≤ {res['redis_connections_max']}")
    console.print(table)
    console.print(f"cpus: {os.cpu_count()} (shared by the webhook, the load generator and redis-server)")
    out = ROOT / "bench" / "results" / "webhook.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"results": results, "pool_size": POOL_SIZE, "cpus": os.cpu_count(),
                               "python": platform.python_version(),
                               "note": "load generator on the same machine; fresh connection per request"},
                              indent=2) + "\n")
    console.print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
