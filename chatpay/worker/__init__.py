"""``chatpay-worker``: consumes the Redis queue, runs turns, answers through the Bot API.

For each raw update: parse it, claim its update id, run the turn, render the reply, record
the outcome, send it, acknowledge it. The guarantees (docs/operations.md, "Queue and worker
guarantees") come from :mod:`chatpay.adapters.redis`:

- nothing accepted is lost: an update leaves Redis only after its replies went out, and the
  updates of a worker that dies (no heartbeat) are reclaimed by the others;
- nothing is done twice: a turn's cart and conversation writes are committed in one Redis
  script together with its outcome (the rendered messages), fenced on still owning the
  update; a redelivered update sends whatever of that outcome was not yet sent, and each
  message sent is recorded at once, so at most the one message in flight can repeat;
- one user at a time, in order; many users in parallel (``--concurrency`` turns in flight);
- a malformed update, or a turn failing three times, goes to ``<queue>:dead`` with the reason;
- pre-checkout queries take a fast path beside the lanes (Telegram waits 10 s at most);
- SIGTERM stops taking work, lets in-flight turns finish and exits 0; a Redis restart is
  ridden out with backoff.

With ``MONGODB_URI`` MongoDB holds carts, conversations and claims (``--state-store mongo``,
the default then): a turn's writes are journalled with its outcome and applied idempotently
(:mod:`chatpay.adapters.mongo.journal`), so a redelivered update changes nothing twice there
either. Without it the embedded store lives inside one process, so carts, conversations and
claims go to Redis (``--state-store redis``) and only the catalog, events and usage stay in
each worker's embedded store.

With ``CHATPAY_BUSINESSES`` one process serves every business listed, each through its own
queue (``<CHATPAY_QUEUE>:{<id>}``) and its own bot; each business's runtime is built at start
(up to ``--cached-businesses`` of them; past that on the business's first turn) and kept in a
bounded cache.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import uuid
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any, TypeVar

from chatpay.adapters.redis import RedisQueue, RedisStateStores
from chatpay.bootstrap import Runtime
from chatpay.businesses import Business
from chatpay.config import Settings
from chatpay.core.errors import ConfigError, StorageError
from chatpay.core.ports import Stores
from chatpay.worker.logs import configure_logging
from chatpay.worker.options import DEFAULT_CONCURRENCY, BotChannel, WorkerOptions, transient
from chatpay.worker.service import Worker

__all__ = ["DEFAULT_CONCURRENCY", "SEND_CONNECTIONS", "SEND_TIMEOUT", "BotChannel", "Worker", "WorkerOptions", "bot_request",
           "main", "parse_args", "parser",
           "serve", "transient"]

log = logging.getLogger(__name__)
T = TypeVar("T")

SEND_CONNECTIONS = 16
"""HTTP connections to the Bot API per bot and process. Telegram takes about 30 messages/s per bot, which
16 connections carry at up to half a second a send. (With PTB's httpx client more connections cost CPU,
its pool scanning every connection for each request; sends now go through aiohttp, whose pool does
not: :mod:`chatpay.adapters.telegram_http`. 16 stays the bound Telegram's limits justify.)"""

SEND_TIMEOUT = 30.0
"""Seconds to wait for the Bot API's answer to a send before it counts as failed (and may be retried).

Telegram usually answers in well under a second, and under load in a few; PTB's default of 5 s sent 2
duplicates in 2 timeouts (a send Telegram accepted, answered late, was sent again). With 30 s a
duplicate needs an answer six times later than that."""

_current: dict[str, RedisQueue] = {}


def _worker_id(settings: Settings) -> str:
    queue = _current.get("queue")
    return queue.worker_id if queue is not None else settings.worker_id


def _shared_stores(settings: Settings, state: RedisStateStores | None) -> tuple[Stores, Any]:
    """The stores every business of this process shares, and the database behind them.

    MongoDB (``MONGODB_URI``), else the embedded default: catalogs imported by ``chatpay catalog
    import`` in the data directory. With the Redis state store, carts, conversations and claims
    live in Redis instead.
    """
    from chatpay.adapters.mongo import embedded_database, mongo_stores

    database: Any
    if settings.mongodb_uri:
        import pymongo

        client: Any = pymongo.MongoClient(settings.mongodb_uri, serverSelectionTimeoutMS=5000, tz_aware=True)
        database = client[settings.mongodb_db]
        base = mongo_stores(database, offload=True)
    elif settings.data_dir is not None:
        from chatpay.adapters.mongo.filestore import FileBackedDatabase

        database = FileBackedDatabase(settings.data_dir, settings.mongodb_db)
        base = mongo_stores(database)
    else:
        database = embedded_database(settings.mongodb_db)
        base = mongo_stores(database)
    if state is not None:
        base = replace(base, carts=state.carts, conversations=state.conversations, turns=state.turns)
    return base, database


def _channel(business: Business, settings: Settings, client: Any, options: WorkerOptions) -> BotChannel:
    """The business's own bot, with Telegram's limits kept per bot across every worker."""
    from chatpay.adapters.redis_ratelimit import RedisRateLimiter
    from chatpay.adapters.telegram import TelegramChannel

    assert business.bot_token and business.bot_id
    return TelegramChannel(business.bot_token, base_url=settings.telegram_api_base_url,
                           rate_limiter=RedisRateLimiter(client, bot_id=business.bot_id), request=bot_request(options))


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop's event loop when it is installed (``pip install chatpay[server]``), else asyncio's.

    A worker is CPU-bound once its turns fill a core (``bench/bench_fleet.py``), and uvloop's loop
    spends less of that core on scheduling than asyncio's own.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def bot_request(options: WorkerOptions) -> Any:
    """The HTTP client of one bot's channel: :data:`SEND_CONNECTIONS` connections, :data:`SEND_TIMEOUT`.

    PTB keeps one HTTP connection by default. A send Telegram accepted but answered after the read
    timeout is sent again by the retry, so the read timeout is well past the Bot API's real latency
    (PTB's default of 5 s is not). aiohttp, not PTB's httpx: see :mod:`chatpay.adapters.telegram_http`.
    """
    from chatpay.adapters.telegram_http import AiohttpRequest

    return AiohttpRequest(connections=min(options.concurrency + 4, SEND_CONNECTIONS), pool_timeout=30.0,
                          read_timeout=SEND_TIMEOUT, write_timeout=SEND_TIMEOUT, connect_timeout=10.0)


async def start_business(runtime: Runtime, business: Business) -> None:
    """Make a business's runtime ready: import its catalog file where the store holds none, index it."""
    existing = await runtime.stores.catalogs.get(business.id)
    if existing is None and business.catalog is not None:
        await runtime.load_catalog_file(business.catalog, business_id=business.id, currency=business.currency,
                                        store_file=business.store)
        log.info("catalog imported", extra={"business_id": business.id, "file": str(business.catalog)})
    else:
        await runtime.start()


async def serve(settings: Settings, options: WorkerOptions, *, runtime: Runtime | None = None,
                stop: asyncio.Event | None = None, client: Any = None, channel: BotChannel | None = None) -> int:
    """Run one worker until ``stop`` (or SIGTERM/SIGINT) and return its exit code.

    It serves every business ``CHATPAY_BUSINESSES`` lists (or the one business of the
    single-business variables), each through its own queue and bot. ``runtime``, ``client`` and
    ``channel`` replace the configured ones for the one business (benchmarks and tests pass a
    scripted chat model this way); a given runtime must have been started.
    """
    from chatpay.adapters.redis import connect, queue_name
    from chatpay.bootstrap import build
    from chatpay.businesses import load_businesses, settings_for
    from chatpay.worker.tenants import Runtimes, Tenant

    assert settings.redis_url
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    businesses = load_businesses(settings)
    client = client or connect(settings.redis_url, cluster=settings.redis_cluster,
                               max_connections=options.redis_connections(len(businesses)))
    use_redis = options.state_store == "redis" or (options.state_store == "auto" and not settings.mongodb_uri)
    retention = {b.id: b.retention_days * 86400 for b in businesses.values()}
    state = RedisStateStores(client, ttl_seconds=settings.retention_days * 86400,
                             retention=retention) if use_redis else None
    if not use_redis and not settings.mongodb_uri:
        log.warning("carts and conversations live in this process's embedded store: run one worker only")
    elif not settings.mongodb_uri:
        # Carts, conversations and claims are shared through Redis, but orders, events and usage stay in
        # each process's embedded store: a payment must reach the worker that made its order.
        log.warning("without MONGODB_URI, orders, events and usage stay in this process's embedded store: "
                    "several workers that take payments need MongoDB")
    # A suffix per process: two processes given one WORKER_ID must never share a lease list.
    worker_id = f"{settings.worker_id}.{uuid.uuid4().hex[:6]}"

    def queue_of(business_id: str) -> RedisQueue:
        return RedisQueue(client, queue_name(settings.queue, business_id), worker_id=worker_id,
                          heartbeat_ttl=options.heartbeat_ttl)

    metrics = None
    if options.metrics_port is not None:
        from chatpay.metrics import Metrics

        metrics = Metrics()
    if runtime is not None:  # one business, wired by the caller
        business = businesses.get(runtime.settings.business_id) or next(iter(businesses.values()))
        tenants = [Tenant(runtime.settings.business_id, queue_of(runtime.settings.business_id),
                          channel or _channel(business, settings, client, options), runtime.settings.payments)]
        runtimes = Runtimes.fixed(runtime)
    else:
        from chatpay.adapters.redis.budget import MongoUsageTotals, RedisBudgetCounter
        from chatpay.bootstrap import _default_embedder
        from chatpay.core.budget import BudgetGuard

        stores, database = _shared_stores(settings, state)
        embedder, _ = _default_embedder(settings)  # one encoder in memory, shared by every business
        # Spending is counted in Redis, so every worker checks one total per business in O(1); each
        # guard reconciles its counters with the usage records on its first check.
        counter = RedisBudgetCounter(client)
        usage = MongoUsageTotals(database, offload=bool(settings.mongodb_uri))
        guards: dict[str, BudgetGuard] = {}

        async def load(business_id: str) -> Runtime:
            business = businesses[business_id]
            # Reconciling reads the month's usage records: worth it only where a cap can be reached.
            guard = BudgetGuard(business.budget, counter, stores.events,
                                usage=usage if business.budget.capped else None)
            if business.budget.capped:
                guards[business_id] = guard
            wired = build(settings_for(settings, business), stores=stores, embedder=embedder, budget=guard)
            wired.database = database
            await start_business(wired, business)
            return wired

        runtimes = Runtimes(load, capacity=options.cached_businesses)
        tenants = [Tenant(b.id, queue_of(b.id), channel if len(businesses) == 1 and channel else
                          _channel(b, settings, client, options), b.payments) for b in businesses.values()]
        # Built before the worker registers: building a business (catalog import, index) holds the
        # event loop for seconds, and a worker whose heartbeat stalls that long is presumed dead.
        # With one business a bad catalog or store fails the start, as it always did.
        for tenant in tenants[:options.cached_businesses]:
            await runtimes.get(tenant.business_id)
    _current["queue"] = tenants[0].queue
    server = None
    if metrics is not None:
        from chatpay.metrics import start_metrics_server

        async def ready() -> bool:
            return bool(await client.ping())

        server = await start_metrics_server(metrics, options.metrics_host, options.metrics_port or 0, ready)
    reconciling = None
    if runtime is None:
        reconciling = asyncio.create_task(_reconcile_forever(guards, usage, stop), name="budget-reconcile")
    try:
        await Worker(None, None, None, tenants=tenants, runtimes=runtimes, state=state, options=options,
                     metrics=metrics).run(stop)
    finally:
        if reconciling is not None:
            reconciling.cancel()
            await asyncio.gather(reconciling, return_exceptions=True)
        if server is not None:
            await server.cleanup()
        for tenant in tenants:
            close = getattr(tenant.channel, "close", None)
            if close is not None:
                await close()
        await client.aclose()
    return 0


RECONCILE_SECONDS = 300.0
"""How often a worker sets each loaded business's budget counters from the usage records. A counter
write that failed (Redis briefly down) is repaired within this; the check itself stays O(1)."""


async def _reconcile_forever(guards: dict[str, Any], usage: Any, stop: asyncio.Event) -> None:
    from datetime import UTC, datetime

    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RECONCILE_SECONDS)
        for business_id, guard in list(guards.items()):
            if stop.is_set():  # stopping: the next worker to start reconciles
                return
            try:
                await guard.reconcile(business_id, usage, datetime.now(UTC))
            except Exception as exc:  # a store or Redis outage: the next round repairs it
                log.warning("budget reconciliation failed", extra={"business_id": business_id,
                                                                   "error": type(exc).__name__})


_EPILOG = """\
Needs REDIS_URL (or REDIS_HOST; the queues `chatpay webhook` fills) and either
CHATPAY_BUSINESSES (a TOML file listing the businesses served, each naming the
variables of its own bot token) or TELEGRAM_BOT_TOKEN (the one business of
BUSINESS_ID). With MONGODB_URI, MongoDB holds carts, conversations and claims;
without it they go to Redis. Settings come from the environment or from a .env
file in the current directory.

Stops on SIGTERM or Ctrl-C: takes no new work, finishes the turns in flight
and exits 0. Exit codes: 0 stopped cleanly, 1 a store or queue failed,
2 bad configuration."""


def parser() -> argparse.ArgumentParser:
    """``chatpay-worker``'s options, each with its description and default."""
    from chatpay.cli import HelpFormatter

    p = argparse.ArgumentParser(
        prog="chatpay-worker", formatter_class=HelpFormatter, epilog=_EPILOG,
        description="Consume the queue that `chatpay webhook` fills in Redis, run each shopper's turn\n"
                    "and answer through the Telegram Bot API.")
    p.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                   help="turns in flight in this process")
    p.add_argument("--state-store", choices=("auto", "redis", "mongo"), default="auto",
                   help="where carts, conversations and claims live (auto: MongoDB when MONGODB_URI is set, "
                        "else Redis)")
    p.add_argument("--heartbeat-ttl", type=float, default=15.0,
                   help="seconds without a heartbeat after which a worker's updates are reclaimed")
    p.add_argument("--drain-timeout", type=float, default=60.0,
                   help="seconds SIGTERM waits for in-flight turns before handing them back")
    p.add_argument("--cached-businesses", type=int, default=32, metavar="N",
                   help="business runtimes (engine, retrieval index) kept in memory; the least recently used "
                        "is dropped and built again on its next turn")
    p.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve Prometheus metrics (/metrics), liveness (/healthz) and readiness (/readyz) on this "
                        "port (default: not served)")
    p.add_argument("--metrics-host", default="127.0.0.1",
                   help="the address --metrics-port listens on (0.0.0.0: every interface)")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="the least severe log records to write (as JSON lines on stderr)")
    p.add_argument("--version", action="version", version=f"chatpay-worker {_version()}",
                   help="print the version and exit")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = parser()
    args = p.parse_args(argv)
    if args.concurrency < 1 or args.heartbeat_ttl <= 0 or args.drain_timeout < 0 or args.cached_businesses < 1:
        p.error("--concurrency and --cached-businesses must be at least 1, --heartbeat-ttl positive and "
                "--drain-timeout not negative")
    if args.metrics_port is not None and not 0 <= args.metrics_port <= 65535:
        p.error(f"--metrics-port must be 0-65535, got {args.metrics_port}")
    return args


def _version() -> str:
    from chatpay.cli import version

    return version()


def startup_problems(settings: Settings) -> list[str]:
    """Every setting the worker cannot start without that is missing, in one message.

    With ``CHATPAY_BUSINESSES`` each business names its own token (checked when the file is read).
    """
    needed = [("REDIS_URL (or REDIS_HOST)", settings.redis_url)]
    if settings.businesses_file is None:
        needed.insert(0, ("TELEGRAM_BOT_TOKEN", settings.telegram_bot_token))
    missing = [name for name, value in needed if not value]
    if not missing:
        return []
    names = " and ".join(missing)
    return [f"{names} {'is' if len(missing) == 1 else 'are'} not set; the worker consumes the queue that "
            f"`chatpay webhook` fills in Redis ({settings.queue}) and answers shoppers through the Telegram "
            "Bot API with the bot's token"]


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    """The ``chatpay-worker`` console script.

    Exit codes: 0 stopped cleanly, 1 a store or queue failed, 2 bad configuration (one line
    naming every variable at fault), 130 Ctrl-C before the worker was serving.
    """
    try:
        return _main(argv)
    except KeyboardInterrupt:  # before the event loop took SIGINT over: nothing was taken from the queue
        return 130


def _main(argv: list[str] | None) -> int:
    from chatpay.config import load_settings

    # Until the event loop takes SIGTERM over, a stop request during start-up is a clean exit:
    # nothing has been taken from the queue yet.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        args = parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"chatpay-worker: {exc}", file=sys.stderr)
        return 2
    problems = startup_problems(settings)
    if problems:
        print(f"chatpay-worker: cannot start: {'; '.join(problems)}", file=sys.stderr)
        return 2
    from chatpay.businesses import load_businesses

    try:
        businesses = load_businesses(settings)
    except ConfigError as exc:
        print(f"chatpay-worker: {exc}", file=sys.stderr)
        return 2
    options = WorkerOptions(concurrency=args.concurrency, heartbeat_ttl=args.heartbeat_ttl,
                            drain_timeout=args.drain_timeout, state_store=args.state_store,
                            cached_businesses=args.cached_businesses, metrics_port=args.metrics_port,
                            metrics_host=args.metrics_host)
    secrets = [s for s in (settings.telegram_bot_token, settings.openai_api_key) if s]
    secrets += [s for b in businesses.values() for s in (b.bot_token, b.webhook_secret) if s]
    configure_logging(args.log_level, worker_id=lambda: _worker_id(settings), secrets=secrets)
    try:
        try:
            return run_loop(_start(settings, options))
        finally:
            # The loop restores SIGTERM's default when it closes; a second SIGTERM during the exit that
            # follows (the embedded store's last write) would kill the process with -15 after a clean stop.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except StorageError as exc:
        print(_redact(f"chatpay-worker: the store is unavailable: {exc}", secrets), file=sys.stderr)
        return 1
    except Exception as exc:  # a start-up failure the user can fix (a bad URL, a store down): one line
        from chatpay.cli import explain

        explained = explain(exc)
        if explained is None:
            raise
        print(_redact(f"chatpay-worker: {explained[1]}", secrets), file=sys.stderr)
        return explained[0]


async def _start(settings: Settings, options: WorkerOptions) -> int:
    from chatpay.adapters.redis import connect, queue_name
    from chatpay.businesses import load_businesses

    assert settings.redis_url
    businesses = load_businesses(settings)
    try:
        queue_name(settings.queue, next(iter(businesses)))
    except ValueError as exc:  # braces in CHATPAY_QUEUE would break the per-business hash tags
        raise ConfigError("CHATPAY_QUEUE", str(exc)) from None
    try:
        client = connect(settings.redis_url, cluster=settings.redis_cluster,
                         max_connections=options.redis_connections(len(businesses)))
    except ValueError as exc:  # not a redis://, rediss:// or unix:// URL
        raise ConfigError("REDIS_URL", str(exc)) from None
    return await serve(settings, options, client=client)


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "<secret>")
    return text
