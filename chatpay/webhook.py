"""``chatpay webhook``: the HTTP endpoint Telegram posts updates to, and ``chatpay set-webhook``.

The endpoint does as little as it can, so it answers in milliseconds. For each business the
deployment serves (:mod:`chatpay.businesses`: ``CHATPAY_BUSINESSES``, or the one-business
variables) it serves ``POST /telegram/<id>``: it checks ``X-Telegram-Bot-Api-Secret-Token``
against THAT business's secret in constant time (403 and nothing queued when it is wrong or
missing; 404, naming no business, for an id the deployment does not serve), cleans the update
(below), ``LPUSH``es it onto ``queue_name(CHATPAY_QUEUE, <id>)`` in the Redis of ``REDIS_URL`` and
answers 200. Workers interpret the update; a malformed one goes to their dead-letter list. When
Redis cannot take the update the answer is 503, so Telegram delivers it again later.

With the one-business shortcut (no ``CHATPAY_BUSINESSES``) ``POST /telegram/webhook`` and
``POST /`` serve ``BUSINESS_ID`` as they always did. When any business takes cards through Stripe
(``payments = "stripe"``, or ``CHATPAY_PAYMENTS=stripe``), ``POST /stripe/webhook`` checks
Stripe's signature with the deployment's ``STRIPE_WEBHOOK_SECRET`` (400 and nothing queued when it
is wrong) and queues a paid session as a confirmed payment onto the queue of the business named
in the session's metadata (ChatPay writes it when it opens the session): one Stripe account, the
platform's, for every business, and one endpoint. A paid session of a business that is not served
here, or that does not take Stripe, gets 404 and nothing queued, so Stripe keeps retrying it while
the deployment is put right.

Cleaning at the edge: the body must be JSON (400 "not JSON"); every string in it has invalid
Unicode (undecodable bytes, lone surrogates from ``\\ud800``-style escapes) replaced by U+FFFD;
``text`` and ``caption`` of ``message`` and ``edited_message`` are cut to Telegram's 4,096
characters; the result is serialised again (UTF-8, ``ensure_ascii=False``) and that is what is
queued. Bodies over 1 MB get 413; a body carrying ChatPay's own confirmed-payment marker gets
400 (only ChatPay queues those). No log line carries message text: only the update id, the
business and the class of an error.

``GET /healthz`` is liveness (the process answers: always 200); ``GET /readyz`` is readiness (503
unless Redis answers PING within a second), for a load balancer or an orchestrator.

Under load: Redis commands go through at most :data:`POOL_SIZE` pooled connections, and a
request waits up to :data:`REDIS_WAIT` seconds for one instead of failing (redis-py's own pool
raises "Too many connections" at once when it is exhausted; that was the 503s under a burst).
The listening socket has a deep backlog (2048, or the connection cap if higher), accepted in batches
of :data:`~chatpay.listener.ACCEPT_BATCH` (:mod:`chatpay.listener`). Every client connection must
deliver complete request headers within ``--header-timeout`` seconds of opening (or of the end
of its previous request) and its body within ``--body-timeout`` seconds, or it is closed;
connections beyond ``--max-connections`` are answered 503 and closed at once, and the cap is
kept below the process's file-descriptor limit (raised towards the hard limit when it can be),
so a flood of slow clients can neither run the process out of descriptors nor slow everyone.

``chatpay webhook`` refuses to start (exit 2, one line naming every variable at fault) without
``TELEGRAM_WEBHOOK_SECRET``, ``REDIS_URL`` and ``TELEGRAM_BOT_TOKEN`` (with ``CHATPAY_BUSINESSES``:
``REDIS_URL`` and every business's own token and secret): without Redis no worker would see the
updates, and without the token no worker could answer them. Other start-up failures (Redis
unreachable, the port taken) are one line and exit 1.

Neither a secret nor a bot token is ever logged or printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from chatpay.adapters.redis import queue_name
from chatpay.adapters.redis.bounded import POOL_SIZE, REDIS_WAIT, BoundedRedis, redis_client  # noqa: F401
from chatpay.businesses import Businesses, load_businesses
from chatpay.config import Settings, load_settings
from chatpay.core.errors import ConfigError
from chatpay.core.updates import CONFIRMED, confirmed_payment_update
from chatpay.intake import (  # re-exported for tests and embedders, as before the split
    ALLOWED_UPDATES,  # noqa: F401
    EXIT_BAD_INPUT,
    MAX_TEXT,  # noqa: F401
    SECRET_HEADER,
    NotAnUpdate,
    business_secret,
    check_secret,
    clean_update,
    secret_problems,
    set_webhook,  # noqa: F401
    update_id_of,
)
from chatpay.listener import (  # listening: re-exported for tests and embedders, as before the split
    ACCEPT_BATCH,
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    FD_RESERVE,
    LINGER,
    Limits,
    Listener,
    connection_timers,
    listening,  # noqa: F401
)

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
EXIT_FAIL = 1

READY_TIMEOUT = 1.0
"""Seconds ``GET /readyz`` waits for Redis to answer PING."""
QueuePush = Callable[[str, str], Awaitable[Any]]
"""Puts one update (JSON text, second argument) on the Redis list named by the first, e.g. an LPUSH."""
ReadyCheck = Callable[[], Awaitable[bool]]
"""Says whether the queue can take updates (a Redis PING)."""


# ----------------------------------------------------------------------------- the application


def stripe_businesses(businesses: Businesses) -> frozenset[str]:
    """The ids of the businesses that take cards through Stripe (their paid sessions come to ``/stripe/webhook``)."""
    return frozenset(b.id for b in businesses.values() if b.payments == "stripe")


def create_app(settings: Settings, businesses: Businesses, queue_push: QueuePush, *,
               ready: ReadyCheck | None = None, stripe: Any = None, limits: Limits | None = None,
               metrics: Any = None) -> web.Application:
    """The webhook application.

    Args:
        settings: Supplies ``queue`` (the base of every queue's name) and ``business_id`` (the
            business of ``POST /telegram/webhook`` and ``POST /``).
        businesses: The businesses served, each on ``POST /telegram/<id>`` with its own secret
            (:func:`chatpay.businesses.load_businesses`).
        queue_push: Puts one update on a queue: ``queue_push(queue_name(settings.queue, id), json)``.
        ready: Says whether the queue can be reached (``GET /readyz`` answers 503 when it does not
            answer True within :data:`READY_TIMEOUT` seconds); without one the app is always ready.
        stripe: A :class:`~chatpay.adapters.payments.stripe_checkout.StripeCheckoutProvider` to
            serve ``POST /stripe/webhook`` with (when a business takes cards through Stripe); each
            paid session goes to the queue of the business its metadata names.
        limits: Supplies ``body_timeout`` (a request whose body is slower gets 408).
        metrics: A :class:`~chatpay.metrics.Metrics` to count requests per business and answer in,
            served on ``GET /metrics``.

    Raises:
        ConfigError: A business has no usable webhook secret, or two share one.
    """
    body_timeout = (limits or Limits()).body_timeout
    expected = {b.id: business_secret(b).encode() for b in businesses.values()}
    shared = secret_problems(businesses)  # every secret is usable by now: what is left is sharing
    if shared:
        raise ConfigError("CHATPAY_BUSINESSES", shared[0])
    queues = {b.id: queue_name(settings.queue, b.id) for b in businesses.values()}
    takes_stripe = stripe_businesses(businesses)

    async def accept(request: web.Request, business_id: str) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, expected[business_id]):
            return web.Response(status=403, text="forbidden")
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.Response(status=413, text="update too large")
        try:
            async with asyncio.timeout(body_timeout):
                body = await request.read()  # over client_max_size, aiohttp answers 413 itself
        except TimeoutError:
            response = web.Response(status=408, text="request body too slow")
            response.force_close()
            return response
        if not body.strip():
            return web.Response(status=400, text="empty update")
        if CONFIRMED.encode() in body:  # only ChatPay queues confirmed payments; Telegram never sends one
            return web.Response(status=400, text="not a Telegram update")
        try:
            update = clean_update(body)
        except NotAnUpdate as exc:
            return web.Response(status=400, text=str(exc))
        update_id = update_id_of(update)
        try:
            await queue_push(queues[business_id], json.dumps(update, ensure_ascii=False))
        except Exception as exc:  # the queue is down or busy: Telegram retries on any non-2xx answer
            log.error("could not enqueue an update",
                      extra={"error": type(exc).__name__, "update_id": update_id, "business": business_id})
            return web.Response(status=503, text="queue unavailable")
        log.debug("update queued", extra={"update_id": update_id, "business": business_id})
        return web.Response(status=200)

    async def counted(request: web.Request, business_id: str) -> web.Response:
        response = await accept(request, business_id)
        if metrics is not None:
            metrics.webhook_request(business_id, response.status)
        return response

    async def receive(request: web.Request) -> web.Response:
        business_id = request.match_info["business"]
        if business_id not in expected:  # the same answer for every unknown id: the list is nobody's business
            return web.Response(status=404, text="not found")
        return await counted(request, business_id)

    async def receive_single(request: web.Request) -> web.Response:
        return await counted(request, settings.business_id)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(request: web.Request) -> web.Response:
        if ready is None:
            return web.json_response({"ok": True})
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                ok = bool(await ready())
        except Exception as exc:  # the class is enough to act on; a message could carry a URL
            log.warning("not ready: the queue does not answer", extra={"error": type(exc).__name__})
            ok = False
        return web.json_response({"ok": ok}, status=200 if ok else 503)

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
        # Sessions opened before the metadata named the business belong to the one business taking Stripe.
        owner = event.business_id or (next(iter(takes_stripe)) if len(takes_stripe) == 1 else None)
        if owner not in takes_stripe:
            log.error("paid Stripe session for a business not taking Stripe here",
                      extra={"order": event.payment.order_id, "business": owner})
            return web.Response(status=404, text="no such business takes Stripe here")
        try:  # the update id comes from the payment, so a replayed event is claimed once by the workers
            await queue_push(queues[owner], confirmed_payment_update(event.payment, thread_id=event.thread_id,
                                                                     chat_id=event.chat_id))
        except Exception as exc:  # Stripe retries on any non-2xx answer
            log.error("could not enqueue a Stripe payment", extra={"error": type(exc).__name__, "business": owner})
            return web.Response(status=503, text="queue unavailable")
        return web.json_response({"received": True, "used": True})

    app = web.Application(client_max_size=MAX_BODY, middlewares=[connection_timers])
    if stripe is not None:
        app.router.add_post("/stripe/webhook", stripe_event)
    if not businesses.many:
        app.router.add_post("/telegram/webhook", receive_single)
        app.router.add_post("/", receive_single)
    app.router.add_post("/telegram/{business}", receive)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if metrics is not None:
        from chatpay.metrics import metrics_routes

        metrics_routes(app, metrics, liveness=False, readiness=False)
    return app


# ----------------------------------------------------------------------------- connections


def fit_connection_cap(max_connections: int, *, reserve: int = POOL_SIZE + FD_RESERVE + ACCEPT_BATCH) -> int:
    """The connection cap this process can hold: ``max_connections``, or less if descriptors are short.

    Every client connection takes a file descriptor. When they run out, the event loop's
    ``accept`` fails with EMFILE and it stops accepting for a second, so every client, the
    legitimate ones too, waits (or times out) behind slow ones. The soft ``RLIMIT_NOFILE`` is
    raised towards the hard one as far as needed; if that is still too low the cap is lowered
    (with a warning) to what fits, and the cap then refuses connections promptly instead.
    """
    try:
        import resource
    except ImportError:  # Windows: no RLIMIT_NOFILE
        return max_connections
    need = max_connections + reserve
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    if soft != resource.RLIM_INFINITY and soft < need:
        fitted = max(1, soft - reserve)
        log.warning(f"the file-descriptor limit ({soft}) holds only {fitted} connections; lowering "
                    f"--max-connections from {max_connections} (raise `ulimit -n` to allow more)",
                    extra={"nofile": soft, "max_connections": fitted})
        return fitted
    return max_connections


# ----------------------------------------------------------------------------- the commands


class CannotStart(Exception):
    """The webhook cannot serve; the message is the one line to print, ``code`` the exit code."""

    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.code = code


def startup_problems(settings: Settings, businesses: Businesses | None = None) -> list[str]:
    """What keeps ``chatpay webhook`` from serving: every missing or unusable variable, at once.

    Without Redis the updates would land in a queue no ``chatpay-worker`` can see, and without
    the bot's token no worker can answer them, so both are required along with the secret.
    With ``CHATPAY_BUSINESSES`` (``businesses.many``) :func:`load_businesses` has already made
    sure every business's token and secret variable is set; what is left is ``REDIS_URL``, each
    secret's shape, and that no two businesses share a secret.
    """
    missing: list[str] = []
    problems: list[str] = []
    if businesses is not None and businesses.many:
        problems.extend(secret_problems(businesses))
    elif not settings.telegram_webhook_secret:
        missing.append("TELEGRAM_WEBHOOK_SECRET")
    else:
        try:
            check_secret(settings)
        except ConfigError as exc:
            problems.append(str(exc))
    try:
        queue_name(settings.queue, settings.business_id)
    except ValueError:
        problems.append(f"CHATPAY_QUEUE: {settings.queue!r} must hold no braces (the business is added as "
                        "the Redis Cluster hash tag: <CHATPAY_QUEUE>:{<business>})")
    if not settings.redis_url:
        missing.append("REDIS_URL (or REDIS_HOST)")
    if not (businesses is not None and businesses.many) and not settings.telegram_bot_token:
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


def serve(host: str, port: int, *, max_connections: int = DEFAULT_MAX_CONNECTIONS,
          header_timeout: float = DEFAULT_HEADER_TIMEOUT, body_timeout: float = DEFAULT_BODY_TIMEOUT) -> int:
    """Run the webhook until SIGINT or SIGTERM (``chatpay webhook``); returns the exit code.

    Refuses to start (exit 2, one line naming every variable at fault) without a usable
    ``TELEGRAM_WEBHOOK_SECRET``, ``REDIS_URL`` and ``TELEGRAM_BOT_TOKEN`` (or, with
    ``CHATPAY_BUSINESSES``, ``REDIS_URL`` and a usable file), with a port outside 1-65535 or
    with limits that are not positive; exits 1 with one line when Redis cannot be reached or the
    address cannot be bound. Says "listening" only once it is.

    Args:
        max_connections: Client connections held open at most (``--max-connections``).
        header_timeout: Seconds a connection has to deliver a request's headers (``--header-timeout``).
        body_timeout: Seconds a request has to deliver its body (``--body-timeout``).
    """
    if not 1 <= port <= 65535:
        print(f"chatpay webhook: --port must be 1-65535, got {port}", file=sys.stderr)
        return EXIT_BAD_INPUT
    limits = Limits(max_connections=max_connections, header_timeout=header_timeout, body_timeout=body_timeout)
    if limits.problems():
        print(f"chatpay webhook: {'; '.join(limits.problems())}", file=sys.stderr)
        return EXIT_BAD_INPUT
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
        businesses = load_businesses(settings)
    except ConfigError as exc:
        print(f"chatpay webhook: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    problems = startup_problems(settings, businesses)
    if problems:
        print(f"chatpay webhook: cannot start: {'; '.join(problems)}; see `chatpay webhook --help`",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    stop = asyncio.Event()
    try:
        asyncio.run(_until_signalled(run(settings, businesses, host, port, limits=limits, stop=stop), stop))
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


async def _until_signalled(serving: Awaitable[None], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Windows has no loop signal handlers: Ctrl-C raises KeyboardInterrupt there instead.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await serving


async def run(settings: Settings, businesses: Businesses, host: str, port: int, *, stop: asyncio.Event,
              limits: Limits | None = None, listening_on: Callable[[Listener], None] | None = None) -> None:
    """Serve the webhook until ``stop`` is set: what :func:`serve` runs, callable in any event loop.

    ``listening_on`` is called with the :class:`Listener` once it accepts connections (its
    ``port`` is the one bound when ``port`` is 0).

    Raises:
        CannotStart: Redis cannot be reached or used, or the address cannot be bound.
    """
    from redis.exceptions import RedisClusterException, RedisError

    limits = limits or Limits()
    limits = Limits(fit_connection_cap(limits.max_connections), limits.header_timeout, limits.body_timeout)
    stripe = None
    if stripe_businesses(businesses):
        from chatpay.adapters.payments.stripe_checkout import from_env as stripe_from_env

        stripe = stripe_from_env(settings.payment_env)
    redis_name = settings.describe()["redis"]  # the URL without its password
    try:
        client = redis_client(settings)
    except ValueError as exc:  # not a redis://, rediss:// or unix:// URL
        raise CannotStart(f"REDIS_URL: {exc}", EXIT_BAD_INPUT) from None
    try:
        try:
            await client.ping()
        except (RedisError, RedisClusterException, OSError) as exc:  # a cluster's discovery failing is the latter
            from redis.exceptions import ConnectionError as Unreachable
            from redis.exceptions import TimeoutError as TimedOut

            verb = "reach" if isinstance(exc, (Unreachable, TimedOut, OSError)) else "use"
            reason = " ".join(str(exc).split())
            raise CannotStart(f"cannot {verb} Redis at {redis_name} (REDIS_URL): {reason}") from None

        bounded = BoundedRedis(client)
        from chatpay.metrics import Metrics

        app = create_app(settings, businesses, bounded.push, ready=bounded.ping, stripe=stripe, limits=limits,
                         metrics=Metrics())
        runner = web.AppRunner(app, lingering_time=LINGER)
        await runner.setup()
        listener = Listener(runner, host, port, limits)
        try:
            try:
                await listener.start()
            except OSError as exc:
                raise CannotStart(f"cannot listen on {_where(host, port)}: {_bind_failure(exc)}") from None
            where = _where(host, listener.port)
            paths = "POST /telegram/<id>" + ("" if businesses.many else ", /telegram/webhook and /")
            log.info(f"webhook listening on http://{where} ({len(businesses)} business"
                     f"{'' if len(businesses) == 1 else 'es'} on {paths}; queues {queue_name(settings.queue, '<id>')}"
                     f" in Redis {redis_name}; at most {limits.max_connections} connections)",
                     extra={"host": host, "port": listener.port, "queue": settings.queue, "redis": redis_name,
                            "businesses": list(businesses), "max_connections": limits.max_connections})
            if listening_on is not None:
                listening_on(listener)
            await stop.wait()
            log.info("webhook stopping", extra={"refused": listener.refused, "timed_out": listener.timed_out})
        finally:
            await listener.stop()
            await runner.cleanup()
    finally:
        await client.aclose()
