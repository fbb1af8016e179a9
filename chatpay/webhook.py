"""``chatpay webhook``: the HTTP endpoint Telegram posts updates to, and ``chatpay set-webhook``.

The endpoint does as little as it can, so it answers in milliseconds: it checks the
``X-Telegram-Bot-Api-Secret-Token`` header against ``TELEGRAM_WEBHOOK_SECRET`` in constant time
(403 and nothing enqueued when it is wrong or missing), ``LPUSH``es the raw body onto the list
``CHATPAY_QUEUE`` in the Redis of ``REDIS_URL`` and answers 200. Workers parse the update; a
malformed one goes to their dead-letter list. When Redis cannot take the update the answer is
503, so Telegram delivers it again later. Routes: ``POST /telegram/webhook`` (and ``POST /``),
``GET /healthz``, and with ``CHATPAY_PAYMENTS=stripe`` ``POST /stripe/webhook``, which checks
Stripe's signature (400 and nothing queued when it is wrong) and queues a paid session as a
confirmed payment in the shopper's lane. Bodies over 1 MB get 413.

``chatpay webhook`` refuses to start (exit 2, one line naming every variable at fault) without
``TELEGRAM_WEBHOOK_SECRET``, ``REDIS_URL`` and ``TELEGRAM_BOT_TOKEN``: without Redis no worker would
see the updates, and without the token no worker could answer them. Other start-up failures
(Redis unreachable, the port taken) are one line and exit 1.

Neither the secret nor the bot token is ever logged or printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import re
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from chatpay.config import Settings, load_settings
from chatpay.core.errors import ChatPayError, ConfigError
from chatpay.core.updates import CONFIRMED, confirmed_payment_update

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1024 * 1024
EXIT_FAIL, EXIT_BAD_INPUT = 1, 2
# The update kinds ChatPay serves (docs/formats.md, "Telegram updates on the queue"); Telegram sends no others.
ALLOWED_UPDATES = ("message", "edited_message", "callback_query", "pre_checkout_query")
_SECRET_SHAPE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")

QueuePush = Callable[[str], Awaitable[Any]]
HealthCheck = Callable[[], Awaitable[bool]]


def check_secret(settings: Settings) -> str:
    """The webhook secret, or :class:`ConfigError` saying why it cannot be used."""
    secret = settings.telegram_webhook_secret
    if not secret:
        raise ConfigError("TELEGRAM_WEBHOOK_SECRET",
                          "is not set; the webhook refuses to accept updates without a secret token")
    if not _SECRET_SHAPE.match(secret):
        raise ConfigError("TELEGRAM_WEBHOOK_SECRET",
                          "must be 1-256 characters of A-Z, a-z, 0-9, '_' and '-' (Telegram's rule)")
    return secret


def create_app(settings: Settings, queue_push: QueuePush, *, health: HealthCheck | None = None,
               stripe: Any = None) -> web.Application:
    """The webhook application.

    Args:
        settings: Supplies ``telegram_webhook_secret`` (required) and ``queue`` (for /healthz).
        queue_push: Puts one raw update (JSON text) on the queue, e.g. an ``LPUSH``.
        health: Says whether the queue can be reached (``GET /healthz`` answers 503 when not).
        stripe: A :class:`~chatpay.adapters.payments.stripe_checkout.StripeCheckoutProvider` to
            serve ``POST /stripe/webhook`` with (when the shop takes cards through Stripe).

    Raises:
        ConfigError: No usable webhook secret is configured.
    """
    expected = check_secret(settings).encode()

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, expected):
            return web.Response(status=403, text="forbidden")
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.Response(status=413, text="update too large")
        body = await request.read()  # over client_max_size, aiohttp answers 413 itself
        if not body.strip():
            return web.Response(status=400, text="empty update")
        if CONFIRMED.encode() in body:  # only ChatPay queues confirmed payments; Telegram never sends one
            return web.Response(status=400, text="not a Telegram update")
        try:
            await queue_push(body.decode("utf-8", "replace"))
        except Exception as exc:  # the queue is down: Telegram retries on any non-2xx answer
            log.error("could not enqueue an update", extra={"error": type(exc).__name__})
            return web.Response(status=503, text="queue unavailable")
        return web.Response(status=200)

    async def healthz(request: web.Request) -> web.Response:
        ok = True
        if health is not None:
            try:
                ok = await health()
            except Exception:
                ok = False
        return web.json_response({"ok": ok, "queue": settings.queue}, status=200 if ok else 503)

    async def stripe_event(request: web.Request) -> web.Response:
        from chatpay.adapters.payments.stripe_checkout import WebhookRejected

        body = await request.read()
        try:
            event = stripe.verify_event(body, request.headers.get("Stripe-Signature"))
        except WebhookRejected as exc:
            log.warning("stripe webhook rejected", extra={"reason": exc.reason})
            return web.Response(status=400, text="bad signature or body")
        if event.payment is None:
            return web.json_response({"received": True, "used": False})
        if not event.thread_id:
            log.error("paid Stripe session without a shopper", extra={"order": event.payment.order_id})
            return web.json_response({"received": True, "used": False})
        try:  # the update id comes from the payment, so a replayed event is claimed once by the workers
            await queue_push(confirmed_payment_update(event.payment, thread_id=event.thread_id,
                                                      chat_id=event.chat_id))
        except Exception as exc:  # Stripe retries on any non-2xx answer
            log.error("could not enqueue a Stripe payment", extra={"error": type(exc).__name__})
            return web.Response(status=503, text="queue unavailable")
        return web.json_response({"received": True, "used": True})

    app = web.Application(client_max_size=MAX_BODY)
    if stripe is not None:
        app.router.add_post("/stripe/webhook", stripe_event)
    app.router.add_post("/telegram/webhook", receive)
    app.router.add_post("/", receive)
    app.router.add_get("/healthz", healthz)
    return app


class CannotStart(Exception):
    """The webhook cannot serve; the message is the one line to print, ``code`` the exit code."""

    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.code = code


def startup_problems(settings: Settings) -> list[str]:
    """What keeps ``chatpay webhook`` from serving: every missing or unusable variable, at once.

    Without Redis the updates would land in a queue no ``chatpay-worker`` can see, and without
    the bot's token no worker can answer them, so both are required along with the secret.
    """
    missing: list[str] = []
    problems: list[str] = []
    if not settings.telegram_webhook_secret:
        missing.append("TELEGRAM_WEBHOOK_SECRET")
    else:
        try:
            check_secret(settings)
        except ConfigError as exc:
            problems.append(str(exc))
    if not settings.redis_url:
        missing.append("REDIS_URL (or REDIS_HOST)")
    if not settings.telegram_bot_token:
        missing.append("TELEGRAM_BOT_TOKEN")
    if missing:
        names = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} and {missing[-1]}"
        problems.insert(0, f"{names} {'is' if len(missing) == 1 else 'are'} not set")
    return problems


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _bind_failure(exc: OSError) -> str:
    """Why a socket could not be bound, as a shell would say it: "address already in use"."""
    if isinstance(exc, socket.gaierror) or not exc.errno or exc.errno < 0:
        reason = exc.strerror or str(exc)
    else:
        reason = os.strerror(exc.errno)
    return reason[:1].lower() + reason[1:]


def serve(host: str, port: int) -> int:
    """Run the webhook until SIGINT or SIGTERM (``chatpay webhook``); returns the exit code.

    Refuses to start (exit 2, one line naming every variable at fault) without a usable
    ``TELEGRAM_WEBHOOK_SECRET``, ``REDIS_URL`` and ``TELEGRAM_BOT_TOKEN``, or with a port outside
    1-65535; exits 1 with one line when Redis cannot be reached or the address cannot be bound.
    Says "listening" only once it is.
    """
    if not 1 <= port <= 65535:
        print(f"chatpay webhook: --port must be 1-65535, got {port}", file=sys.stderr)
        return EXIT_BAD_INPUT
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"chatpay webhook: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    problems = startup_problems(settings)
    if problems:
        print(f"chatpay webhook: cannot start: {'; '.join(problems)}; see `chatpay webhook --help`",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        asyncio.run(_serve(settings, host, port))
    except CannotStart as exc:
        print(f"chatpay webhook: {exc}", file=sys.stderr)
        return exc.code
    except Exception as exc:
        from chatpay.cli import explain

        explained = explain(exc)
        if explained is None:
            raise
        print(f"chatpay webhook: {explained[1]}", file=sys.stderr)
        return explained[0]
    return 0


async def _serve(settings: Settings, host: str, port: int) -> None:
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Windows has no loop signal handlers: Ctrl-C raises KeyboardInterrupt there instead.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    stripe = None
    if settings.payments == "stripe":
        from chatpay.adapters.payments.stripe_checkout import from_env as stripe_from_env

        stripe = stripe_from_env(settings.payment_env)
    redis_name = settings.describe()["redis"]  # the URL without its password
    assert settings.redis_url
    try:
        client = Redis.from_url(settings.redis_url, socket_connect_timeout=5.0, socket_timeout=5.0)
    except ValueError as exc:  # not a redis://, rediss:// or unix:// URL
        raise CannotStart(f"REDIS_URL: {exc}", EXIT_BAD_INPUT) from None
    try:
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            from redis.exceptions import ConnectionError as Unreachable
            from redis.exceptions import TimeoutError as TimedOut

            verb = "reach" if isinstance(exc, (Unreachable, TimedOut, OSError)) else "use"
            reason = " ".join(str(exc).split())
            raise CannotStart(f"cannot {verb} Redis at {redis_name} (REDIS_URL): {reason}") from None

        async def push(raw: str) -> None:
            await client.lpush(settings.queue, raw)

        async def healthy() -> bool:
            return bool(await client.ping())

        app = create_app(settings, push, health=healthy, stripe=stripe)
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            try:
                await web.TCPSite(runner, host, port).start()
            except OSError as exc:
                raise CannotStart(f"cannot listen on {_where(host, port)}: {_bind_failure(exc)}") from None
            log.info(f"webhook listening on http://{_where(host, port)} (queue {settings.queue} in Redis "
                     f"{redis_name})",
                     extra={"host": host, "port": port, "queue": settings.queue, "redis": redis_name})
            await stop.wait()
            log.info("webhook stopping")
        finally:
            await runner.cleanup()
    finally:
        await client.aclose()


def set_webhook(url: str) -> int:
    """Register ``url`` and the secret token with Telegram (``chatpay set-webhook URL``).

    Returns 0 when Telegram accepted it, 2 when a setting is missing, 1 when Telegram refused.
    """
    try:
        settings = load_settings()
        secret = check_secret(settings)
        if not settings.telegram_bot_token:
            raise ConfigError("TELEGRAM_BOT_TOKEN", "is not set")
    except ConfigError as exc:
        print(f"chatpay set-webhook: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from chatpay.adapters.telegram import TelegramChannel

    async def register() -> None:
        async with TelegramChannel.from_settings(settings) as channel:
            await channel.call("setWebhook", {"url": url, "secret_token": secret,
                                              "allowed_updates": list(ALLOWED_UPDATES)})

    try:
        asyncio.run(register())
    except ChatPayError as exc:
        print(f"chatpay set-webhook: {exc}", file=sys.stderr)
        return 1
    print(f"webhook set: {url} (updates: {', '.join(ALLOWED_UPDATES)})")
    return 0
