"""Worker throughput: turns per second when every turn waits 300 ms for the chat model.

Each configuration runs real worker processes (this script started as ``--child``) against a
real redis-server and the HTTP Bot API double. The chat model is
``ScriptedChatModel(delay=0.3)``: the LLM engine asks the model on the router only when the
classifier is unsure, so the shoppers here make small talk ("hello there, how is your day?"),
which the chitchat agent answers with one model call per turn; each child reports how many
model calls it made, and the table shows calls per turn so that nothing is hidden.

Updates for many distinct users are pushed at once; the clock runs from the first push to
the last reply the Bot API double received. Telegram's own limits (1 message per second per
chat, about 30 per second in all) would cap any bot at 30 replies per second, so the children
use a rate limiter with those limits lifted: this measures the worker, not Telegram.

Run: python bench/bench_worker.py [--quick]. Writes bench/results/worker.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402

from tests.support.botapi import BotApiDouble  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402

MODEL_DELAY = 0.3
QUEUE = "chatpay_queue:{demo}"  # queue_name("chatpay_queue", "demo"): the demo business's queue
TOKEN = "123456:bench-token"
GREETINGS = ("hello there, how is your day?", "hi! lovely weather today", "hey, how are you doing?",
             "good morning, how's it going?")


# ---------------------------------------------------------------------------- child: one worker


def scripted_answer(request: Any) -> Any:
    if request.json_schema is not None:  # the router asking, when the classifier was unsure
        return {"intent": "chitchat", "confidence": 0.9}
    return "Lovely to hear from you! What can I find for you today?"


async def child(args: argparse.Namespace) -> int:
    from chatpay.adapters.memory import ScriptedChatModel
    from chatpay.adapters.redis import connect
    from chatpay.adapters.redis_ratelimit import RedisRateLimiter
    from chatpay.adapters.telegram import TelegramChannel
    from chatpay.bootstrap import build
    from chatpay.config import load_settings
    from chatpay.worker import WorkerOptions, bot_request, serve

    settings = load_settings()
    model = ScriptedChatModel([scripted_answer] * 1_000_000, name="scripted-300ms", delay=MODEL_DELAY)
    runtime = build(settings, llm=model)
    await runtime.start()
    options = WorkerOptions(concurrency=args.concurrency, drain_timeout=30)
    client = connect(settings.redis_url or "", max_connections=options.redis_connections(1))
    limiter = RedisRateLimiter(client, bot_id=TOKEN.split(":")[0], per_chat=1000, overall=100_000)
    channel = TelegramChannel(TOKEN, base_url=settings.telegram_api_base_url, rate_limiter=limiter,
                              request=bot_request(options))
    code = await serve(settings, options, runtime=runtime, client=client, channel=channel)
    print(json.dumps({"model_calls": len(model.requests)}), flush=True)
    return code


# ---------------------------------------------------------------------------- parent: the runs


def start_workers(n: int, concurrency: int, redis_url: str, api_url: str, tag: str) -> list[subprocess.Popen[str]]:
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR", "VIRTUAL_ENV"}}
    env.update({"REDIS_URL": redis_url, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": api_url,
                "PYTHONPATH": str(ROOT)})
    procs = []
    for i in range(n):
        env["WORKER_ID"] = f"bench-{tag}-{i}"
        procs.append(subprocess.Popen(
            [sys.executable, __file__, "--child", "--concurrency", str(concurrency)], env=dict(env),
            cwd=tempfile.mkdtemp(prefix="chatpay-bench-"), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True))
    return procs


def wait_serving(r: redis.Redis, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(r.smembers(f"{QUEUE}:workers")) < n:
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not start")
        time.sleep(0.1)


def one_run(r: redis.Redis, api: BotApiDouble, turns: int, first_update: int) -> float:
    """Push ``turns`` updates from distinct users at once; seconds until the last reply arrived."""
    api.reset()
    pipe = r.pipeline(transaction=False)
    for i in range(turns):
        uid = first_update + i
        user = 10_000_000 + uid
        pipe.lpush(QUEUE, json.dumps({"update_id": uid, "message": {
            "message_id": uid, "date": 1_760_000_000, "chat": {"id": user, "type": "private"},
            "from": {"id": user, "is_bot": False, "first_name": "B"}, "text": GREETINGS[i % len(GREETINGS)]}}))
    start = time.time()
    pipe.execute()
    deadline = time.monotonic() + 300
    while len(api.delivered("sendMessage")) < turns:
        if time.monotonic() > deadline:
            raise RuntimeError("replies did not arrive")
        time.sleep(0.02)
    return max(c.at for c in api.delivered("sendMessage")) - start


def stop_workers(procs: list[subprocess.Popen[str]]) -> int:
    calls = 0
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        out, _ = p.communicate(timeout=60)
        for line in out.splitlines():
            if line.startswith("{"):
                calls += int(json.loads(line).get("model_calls", 0))
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer turns and repeats")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=0)
    args = parser.parse_args()
    if args.child:
        raise SystemExit(asyncio.run(child(args)))

    from chatpay.worker import DEFAULT_CONCURRENCY

    repeats = args.repeats or (2 if args.quick else 3)
    scale = 0.5 if args.quick else 1.0
    configs = [  # (name, processes, concurrency, turns per run)
        ("1 process, concurrency 1", 1, 1, int(24 * scale)),
        (f"1 process, concurrency {DEFAULT_CONCURRENCY}", 1, DEFAULT_CONCURRENCY, int(400 * scale)),
        (f"2 processes, concurrency {DEFAULT_CONCURRENCY}", 2, DEFAULT_CONCURRENCY, int(800 * scale)),
    ]
    console = Console(width=max(Console().width, 100))
    results: list[dict[str, Any]] = []
    update_id = 1
    with RedisServer() as server, BotApiDouble() as api, Progress(console=console, transient=True) as progress:
        r = redis.Redis.from_url(server.url, decode_responses=True)
        task = progress.add_task("worker runs", total=len(configs) * repeats)
        for name, processes, concurrency, turns in configs:
            server.flushall()
            procs = start_workers(processes, concurrency, server.url, api.base_url, f"{processes}x{concurrency}")
            try:
                wait_serving(r, processes)
                one_run(r, api, max(processes * concurrency, 4), update_id)  # warm-up, not counted
                update_id += 10_000
                rates = []
                for _ in range(repeats):
                    seconds = one_run(r, api, turns, update_id)
                    update_id += 10_000
                    rates.append(turns / seconds)
                    progress.advance(task)
            finally:
                calls = stop_workers(procs)
            total_turns = turns * repeats + max(processes * concurrency, 4)
            results.append({"config": name, "processes": processes, "concurrency": concurrency, "turns": turns,
                            "repeats": repeats, "turns_per_s": statistics.median(rates), "runs": rates,
                            "model_calls_per_turn": calls / total_turns})
    base, one, two = (res["turns_per_s"] for res in results)
    ratios = {"concurrency_speedup": one / base, "two_process_speedup": two / one}
    table = Table(title=f"chatpay-worker throughput (chat model {MODEL_DELAY * 1000:.0f} ms per call)")
    for col in ("configuration", "turns/run", "median turns/s", "runs", "model calls/turn"):
        table.add_column(col, justify="left" if col == "configuration" else "right")
    for res in results:
        table.add_row(res["config"], str(res["turns"]), f"{res['turns_per_s']:.1f}",
                      " ".join(f"{x:.1f}" for x in res["runs"]), f"{res['model_calls_per_turn']:.2f}")
    console.print(table)
    console.print(f"concurrency {DEFAULT_CONCURRENCY} vs 1: x{ratios['concurrency_speedup']:.1f}   "
                  f"2 processes vs 1: x{ratios['two_process_speedup']:.2f}   (cpus: {os.cpu_count()})")
    out = ROOT / "bench" / "results" / "worker.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model_delay_s": MODEL_DELAY, "results": results, "ratios": ratios,
                               "cpus": os.cpu_count(), "python": platform.python_version(),
                               "note": "Telegram's 30 messages/s cap lifted to measure the worker itself"},
                              indent=2) + "\n")
    console.print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
