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
the default then). Without it the embedded store lives inside one process, so carts,
conversations and claims go to Redis (``--state-store redis``) and only the catalog, events
and usage stay in each worker's embedded store. Exactly-once effects need the Redis state
store; with MongoDB a turn cut short by a crash before its outcome was recorded runs again.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import uuid
from dataclasses import replace
from typing import Any

from chatpay.adapters.redis import RedisQueue, RedisStateStores
from chatpay.bootstrap import Runtime
from chatpay.config import Settings
from chatpay.core.errors import ConfigError, StorageError
from chatpay.core.ports import Stores
from chatpay.worker.logs import configure_logging
from chatpay.worker.service import DEFAULT_CONCURRENCY, BotChannel, Worker, WorkerOptions, transient

__all__ = ["DEFAULT_CONCURRENCY", "BotChannel", "Worker", "WorkerOptions", "main", "parse_args", "parser",
           "serve", "transient"]

log = logging.getLogger(__name__)

_current: dict[str, RedisQueue] = {}


def _worker_id(settings: Settings) -> str:
    queue = _current.get("queue")
    return queue.worker_id if queue is not None else settings.worker_id


def _stores(settings: Settings, state: RedisStateStores | None) -> Stores | None:
    """Stores for :func:`chatpay.bootstrap.build`: None for its defaults, else the three shared ones on Redis."""
    if state is None:
        return None
    from chatpay.adapters.mongo import embedded_database, mongo_stores

    if settings.mongodb_uri:
        import pymongo

        client: Any = pymongo.MongoClient(settings.mongodb_uri, serverSelectionTimeoutMS=5000, tz_aware=True)
        base = mongo_stores(client[settings.mongodb_db], offload=True)
    elif settings.data_dir is not None:  # the embedded default: catalogs imported by `chatpay catalog import`
        from chatpay.adapters.mongo.filestore import FileBackedDatabase

        base = mongo_stores(FileBackedDatabase(settings.data_dir, settings.mongodb_db))  # type: ignore[arg-type]
    else:
        base = mongo_stores(embedded_database(settings.mongodb_db))
    return replace(base, carts=state.carts, conversations=state.conversations, turns=state.turns)


async def serve(settings: Settings, options: WorkerOptions, *, runtime: Runtime | None = None,
                stop: asyncio.Event | None = None, client: Any = None, channel: BotChannel | None = None) -> int:
    """Run one worker until ``stop`` (or SIGTERM/SIGINT) and return its exit code.

    ``runtime``, ``client`` and ``channel`` replace the configured ones (benchmarks and tests
    pass a scripted chat model this way); a given runtime must have been started.
    """
    from chatpay.adapters.redis import connect
    from chatpay.adapters.redis_ratelimit import RedisRateLimiter
    from chatpay.adapters.telegram import TelegramChannel
    from chatpay.bootstrap import build

    assert settings.redis_url and settings.telegram_bot_token
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = client or connect(settings.redis_url)
    use_redis = options.state_store == "redis" or (options.state_store == "auto" and not settings.mongodb_uri)
    state = RedisStateStores(client) if use_redis else None
    if not use_redis and not settings.mongodb_uri:
        log.warning("carts and conversations live in this process's embedded store: run one worker only")
    if runtime is None:
        runtime = build(settings, stores=_stores(settings, state))
        await runtime.start()
    # A suffix per process: two processes given one WORKER_ID must never share a lease list.
    worker_id = f"{settings.worker_id}.{uuid.uuid4().hex[:6]}"
    queue = RedisQueue(client, settings.queue, worker_id=worker_id, heartbeat_ttl=options.heartbeat_ttl)
    _current["queue"] = queue
    if channel is None:
        from telegram.request import HTTPXRequest

        # PTB keeps one HTTP connection by default; every turn in flight may be sending at once.
        request = HTTPXRequest(connection_pool_size=options.concurrency + 4, pool_timeout=30.0)
        channel = TelegramChannel(settings.telegram_bot_token, base_url=settings.telegram_api_base_url,
                                  rate_limiter=RedisRateLimiter(client), request=request)
    try:
        await Worker(runtime, queue, channel, state=state, options=options).run(stop)
    finally:
        close = getattr(channel, "close", None)
        if close is not None:
            await close()
        await client.aclose()
    return 0


_EPILOG = """\
Needs TELEGRAM_BOT_TOKEN (the bot it answers as) and REDIS_URL (or REDIS_HOST;
the queue `chatpay webhook` fills). With MONGODB_URI, MongoDB holds carts,
conversations and claims; without it they go to Redis. Settings come from the
environment or from a .env file in the current directory.

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
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="the least severe log records to write (as JSON lines on stderr)")
    p.add_argument("--version", action="version", version=f"chatpay-worker {_version()}",
                   help="print the version and exit")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = parser()
    args = p.parse_args(argv)
    if args.concurrency < 1 or args.heartbeat_ttl <= 0 or args.drain_timeout < 0:
        p.error("--concurrency must be at least 1, --heartbeat-ttl positive and --drain-timeout not negative")
    return args


def _version() -> str:
    from chatpay.cli import version

    return version()


def startup_problems(settings: Settings) -> list[str]:
    """Every setting the worker cannot start without that is missing, in one message."""
    missing = [name for name, value in (("TELEGRAM_BOT_TOKEN", settings.telegram_bot_token),
                                        ("REDIS_URL (or REDIS_HOST)", settings.redis_url)) if not value]
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
    options = WorkerOptions(concurrency=args.concurrency, heartbeat_ttl=args.heartbeat_ttl,
                            drain_timeout=args.drain_timeout, state_store=args.state_store)
    secrets = [s for s in (settings.telegram_bot_token, settings.openai_api_key) if s]
    configure_logging(args.log_level, worker_id=lambda: _worker_id(settings), secrets=secrets)
    try:
        return asyncio.run(_start(settings, options))
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
    from chatpay.adapters.redis import connect

    assert settings.redis_url
    try:
        client = connect(settings.redis_url)
    except ValueError as exc:  # not a redis://, rediss:// or unix:// URL
        raise ConfigError("REDIS_URL", str(exc)) from None
    return await serve(settings, options, client=client)


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "<secret>")
    return text
