"""Fleet throughput: turns per second with 1, 2 and 4 worker processes, on one redis-server and on a cluster.

The issue's bench: "one worker process serves >= 200 turns/s when every turn waits 300 ms for the
model (today 47.8 at the default concurrency of 16), with 1, 2 and 4 processes on the single
server and on the cluster". For each Redis backend (one ``redis-server``; a real three-master
Redis Cluster, the workers with ``REDIS_CLUSTER=1``) and each number of processes, real worker
processes (this script started as ``--child``: :func:`chatpay.worker.serve`, the code
``chatpay-worker`` runs, at the default concurrency) consume the demo business's queue and answer
through the HTTP Bot API double.

The chat model is ``ScriptedChatModel(delay=0.3)`` (it replaces ``bench/bench_worker.py``): the shoppers
make small talk, which the chitchat agent answers with one model call per turn; each child
reports its model calls and the table shows calls per turn, so that nothing is hidden.
Telegram's own limits (1 message per second per chat, about 30 per second per bot) would cap
any bot at 30 replies per second, so the children's rate limiter has them lifted: this
measures the workers, not Telegram.

Each run pushes ``--turns`` updates from distinct users at once (one pipeline); the clock runs
from the push to the last reply the Bot API double received. Each configuration is warmed up
first (not counted) and run ``--repeats`` times; the table shows medians, and each median's
ratio to 1 process on one server. The processes share this machine's CPUs with Redis and the
double (the cpu count is printed): past the CPUs, more processes cannot add throughput.

Run: python bench/bench_fleet.py [--quick]. Writes bench/results/fleet.json (gitignored).
"""

from __future__ import annotations

import argparse
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
from tests.support.redis_cluster import LocalCluster  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402

MODEL_DELAY = 0.3
QUEUE = "chatpay_queue:{demo}"  # queue_name("chatpay_queue", "demo"): the demo business's queue
TOKEN = "123456:bench-token"
GREETINGS = ("hello there, how is your day?", "hi! lovely weather today", "hey, how are you doing?",
             "good morning, how's it going?")
BACKENDS = ("one redis-server", "3-master cluster")
PROCESSES = (1, 2, 4)


# ---------------------------------------------------------------------------- child: one worker process


def scripted_answer(request: Any) -> Any:
    """The slow model's answer: the router's verdict when asked for JSON, else a line of small talk."""
    if request.json_schema is not None:  # the router asking, when the classifier was unsure
        return {"intent": "chitchat", "confidence": 0.9}
    return "Lovely to hear from you! What can I find for you today?"


async def child(args: argparse.Namespace) -> int:
    """One worker process as ``chatpay-worker`` wires it, with the scripted 300 ms model and lifted send limits."""

    from chatpay.adapters.memory import ScriptedChatModel
    from chatpay.adapters.redis import connect
    from chatpay.adapters.redis_ratelimit import RedisRateLimiter
    from chatpay.adapters.telegram import TelegramChannel
    from chatpay.bootstrap import build
    from chatpay.config import load_settings
    from chatpay.worker import WorkerOptions, bot_request, serve

    settings = load_settings()
    model = ScriptedChatModel([scripted_answer] * 1_000_000, name="scripted-300ms", delay=MODEL_DELAY)
    # In-process MongoDB without the embedded data directory, whose per-turn flush rewrites every
    # collection (a cost that grows with the run, and that chatpay-worker on MongoDB never pays).
    from chatpay.adapters.mongo import embedded_database, mongo_stores

    runtime = build(settings, llm=model, stores=mongo_stores(embedded_database()))
    await runtime.start()
    options = WorkerOptions(concurrency=args.concurrency, drain_timeout=30)
    client = connect(settings.redis_url or "", cluster=settings.redis_cluster,
                     max_connections=options.redis_connections(1))
    limiter = RedisRateLimiter(client, bot_id=TOKEN.split(":")[0], per_chat=1000, overall=100_000)
    channel = TelegramChannel(TOKEN, base_url=settings.telegram_api_base_url, rate_limiter=limiter,
                              request=bot_request(options))
    cpu_before = time.process_time()  # serving only: not the imports, the model or the catalog
    code = await serve(settings, options, runtime=runtime, client=client, channel=channel)
    print(json.dumps({"model_calls": len(model.requests), "cpu_s": time.process_time() - cpu_before}), flush=True)
    return code


# ---------------------------------------------------------------------------- parent: the runs


def start_workers(n: int, concurrency: int, redis_url: str, cluster: bool, api_url: str,
                  tag: str) -> list[subprocess.Popen[str]]:
    """``n`` child worker processes on ``redis_url`` (``REDIS_CLUSTER=1`` for a cluster)."""
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR", "VIRTUAL_ENV"}}
    env.update({"REDIS_URL": redis_url, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": api_url,
                "PYTHONPATH": str(ROOT), "REDIS_CLUSTER": "1" if cluster else "0"})
    procs = []
    for i in range(n):
        env["WORKER_ID"] = f"bench-{tag}-{i}"
        # Each child its own embedded data directory: the embedded store has one writer, and processes
        # sharing one wait on its file lock (one run of 4 processes sharing the default fell to 5 turns/s).
        home = tempfile.mkdtemp(prefix="chatpay-bench-")
        env["CHATPAY_DATA_DIR"] = home
        procs.append(subprocess.Popen(
            [sys.executable, __file__, "--child", "--concurrency", str(concurrency)], env=dict(env),
            cwd=home, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
    return procs


def wait_serving(r: Any, n: int, procs: list[subprocess.Popen[str]], timeout: float = 180) -> None:
    """Until ``n`` workers registered on the queue (or one exited, or ``timeout``)."""
    deadline = time.monotonic() + timeout
    while len(r.smembers(f"{QUEUE}:workers")) < n:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a worker process exited while starting")
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not start")
        time.sleep(0.1)


def greeting(n: int) -> str:
    """Small talk with a word no turn used before (a made-up name), so per-word caches stay cold."""
    letters = "bdfgklmnprstvz"
    name, rest = "", n
    while rest or len(name) < 5:
        rest, at = divmod(rest, len(letters))
        name += letters[at] + "aeiou"[(n + len(name)) % 5]
    return f"{GREETINGS[n % len(GREETINGS)]} I'm {name.capitalize()}"


def one_run(r: Any, api: BotApiDouble, turns: int, first_update: int) -> float:
    """Push ``turns`` updates from distinct users at once; seconds until the last reply arrived."""
    api.reset()
    payloads = []
    for i in range(turns):
        uid = first_update + i
        user = 10_000_000 + uid
        payloads.append(json.dumps({"update_id": uid, "message": {
            "message_id": uid, "date": 1_760_000_000, "chat": {"id": user, "type": "private"},
            "from": {"id": user, "is_bot": False, "first_name": "B"}, "text": greeting(uid)}}))
    start = time.time()
    for at in range(0, turns, 500):  # one key: a pipeline is one node's, on a cluster too
        pipe = r.pipeline(transaction=False)
        for payload in payloads[at:at + 500]:
            pipe.lpush(QUEUE, payload)
        pipe.execute()
    deadline = time.monotonic() + 600
    while len(api.delivered("sendMessage")) < turns:
        if time.monotonic() > deadline:
            raise RuntimeError("replies did not arrive")
        time.sleep(0.05)
    return max(c.at for c in api.delivered("sendMessage")) - start


def stop_workers(procs: list[subprocess.Popen[str]]) -> tuple[int, float]:
    """SIGTERM every child (it drains and exits); the model calls they made and the CPU seconds they used serving."""
    calls, cpu = 0, 0.0
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            out, _ = p.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate(timeout=10)
        for line in out.splitlines():
            if line.startswith("{"):
                report = json.loads(line)
                calls += int(report.get("model_calls", 0))
                cpu += float(report.get("cpu_s", 0.0))
    return calls, cpu


def client_for(url: str, cluster: bool) -> Any:
    if cluster:
        return redis.RedisCluster.from_url(url, decode_responses=True)
    return redis.Redis.from_url(url, decode_responses=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer turns and repeats")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=0, help="turns in flight per process (default: "
                                                                    "the worker's default)")
    parser.add_argument("--turns", type=int, default=0, help="updates per run (default 3000; --quick 1000)")
    parser.add_argument("--repeats", type=int, default=0, help="runs per configuration (default 3; --quick 2)")
    parser.add_argument("--processes", type=int, nargs="+", default=list(PROCESSES),
                        help=f"worker processes per configuration (default {' '.join(map(str, PROCESSES))})")
    parser.add_argument("--backend", choices=("server", "cluster"), nargs="+", default=["server", "cluster"],
                        help="which Redis to run on (default both)")
    args = parser.parse_args()
    from chatpay.worker import DEFAULT_CONCURRENCY

    if args.child:
        args.concurrency = args.concurrency or DEFAULT_CONCURRENCY
        from chatpay.worker import run_loop

        raise SystemExit(run_loop(child(args)))  # the event loop chatpay-worker runs on

    concurrency = args.concurrency or DEFAULT_CONCURRENCY
    repeats = args.repeats or (2 if args.quick else 3)
    turns = args.turns or (1000 if args.quick else 3000)
    console = Console(width=max(Console().width, 110))
    results: list[dict[str, Any]] = []
    update_id = 1
    with BotApiDouble() as api, Progress(console=console, transient=True) as progress:
        backends = [b for b, key in zip(BACKENDS, ("server", "cluster"), strict=True) if key in args.backend]
        task = progress.add_task("fleet runs", total=len(backends) * len(args.processes) * repeats)
        for backend in backends:
            cluster = backend != BACKENDS[0]
            with (LocalCluster() if cluster else RedisServer()) as store:
                r = client_for(store.url, cluster)
                for processes in args.processes:
                    store.flushall()
                    procs = start_workers(processes, concurrency, store.url, cluster, api.base_url,
                                          f"{'c' if cluster else 's'}{processes}")
                    try:
                        wait_serving(r, processes, procs)
                        one_run(r, api, processes * concurrency * 2, update_id)  # warm-up, not counted
                        update_id += 100_000
                        rates = []
                        for _ in range(repeats):
                            seconds = one_run(r, api, turns, update_id)
                            update_id += 100_000
                            rates.append(turns / seconds)
                            progress.advance(task)
                    finally:
                        calls, cpu = stop_workers(procs)
                    counted = turns * repeats + processes * concurrency * 2
                    # CPU the workers spent per turn (idle polling included): what one core could serve,
                    # free of the Redis and Bot API double that share this machine's CPUs.
                    results.append({"backend": backend, "processes": processes, "concurrency": concurrency,
                                    "turns": turns, "repeats": repeats, "turns_per_s": statistics.median(rates),
                                    "runs": rates, "model_calls_per_turn": calls / counted,
                                    "worker_cpu_ms_per_turn": 1000 * cpu / counted})
                r.close()
    base = results[0]["turns_per_s"]
    table = Table(title=f"chatpay-worker fleet throughput (chat model {MODEL_DELAY * 1000:.0f} ms per call, "
                        f"concurrency {concurrency} per process)")
    for col in ("redis", "processes", "turns/run", "median turns/s", "runs", "vs 1 process, one server",
                "model calls/turn", "worker CPU ms/turn", "turns/s per worker core"):
        table.add_column(col, justify="left" if col == "redis" else "right")
    for res in results:
        res["ratio"] = res["turns_per_s"] / base
        table.add_row(res["backend"], str(res["processes"]), str(res["turns"]), f"{res['turns_per_s']:.1f}",
                      " ".join(f"{x:.1f}" for x in res["runs"]), f"x{res['ratio']:.2f}",
                      f"{res['model_calls_per_turn']:.2f}", f"{res['worker_cpu_ms_per_turn']:.2f}",
                      f"{1000 / res['worker_cpu_ms_per_turn']:.0f}" if res["worker_cpu_ms_per_turn"] else "-")
    console.print(table)
    console.print(f"cpus: {os.cpu_count()}; the worker processes, Redis and the Bot API double share them")
    out = ROOT / "bench" / "results" / "fleet.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model_delay_s": MODEL_DELAY, "concurrency": concurrency, "results": results,
                               "cpus": os.cpu_count(), "python": platform.python_version(),
                               "note": "Telegram's 30 messages/s cap lifted to measure the workers themselves"},
                              indent=2) + "\n")
    console.print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
