"""Prometheus metrics for the webhook and the workers, and the HTTP routes that serve them.

:class:`Metrics` owns its own :class:`~prometheus_client.CollectorRegistry`, never the
process-wide default: two instances (two tests, a webhook and a worker in one process) each
count their own, and nothing a library registers globally leaks into the scrape. Each
observation is one small method (``turn``, ``model_call``, ``send``...), so callers never
touch label names; :meth:`Metrics.render` gives the exposition text and its content type.

The series (``business`` is the business id; keep every other label to the listed values, so
the number of series stays small):

==================================================  =========  ==========================================
series                                              type       labels
==================================================  =========  ==========================================
``chatpay_turns_total``                             counter    ``business``, ``status`` (``done``, ``replayed``, ``ignored``, ``fenced``, ``failed``, ``dead``)
``chatpay_turn_seconds``                            histogram  ``business`` (buckets 0.05 s to 30 s)
``chatpay_queue_depth``                             gauge      ``business``
``chatpay_model_calls_total``                       counter    ``business``, ``model``
``chatpay_tokens_total``                            counter    ``business``, ``model``, ``kind`` (``prompt``, ``completion``)
``chatpay_cost_usd_total``                          counter    ``business``, ``model``
``chatpay_sends_total``                             counter    ``business``
``chatpay_telegram_429_total``                      counter    ``business``
``chatpay_dead_letters_total``                      counter    ``business``
``chatpay_webhook_requests_total``                  counter    ``business``, ``status`` (the HTTP status)
==================================================  =========  ==========================================

Prometheus keeps every value as a float64, so ``chatpay_cost_usd_total`` is the cost for
dashboards and alerts, rounded as floats round; the exact figures, to the digit, are the
``usage`` records and ``chatpay report``. A call whose model has no known price adds no cost
(it is still a model call, with its tokens).

:func:`metrics_routes` adds ``GET /metrics``, ``GET /healthz`` (liveness: 200 while the event
loop answers) and ``GET /readyz`` (readiness: 503 when the ``ready`` check says no, raises or
takes longer than :data:`READY_TIMEOUT`) to an aiohttp application;
:func:`start_metrics_server` serves them on their own port, for ``chatpay-worker``, which has
no HTTP server of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)

TURN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0)
"""Seconds: an offline turn takes milliseconds (the first bucket), a turn waiting on a chat model
seconds, and past 30 s Telegram's shopper has given up (``+Inf`` catches the rest)."""

READY_TIMEOUT = 5.0
"""Seconds ``/readyz`` waits for the readiness check before answering 503: a probe must not hang."""

ReadyCheck = Callable[[], Awaitable[bool]]


class Metrics:
    """Every ChatPay series, on a registry of its own.

    Args:
        registry: the registry to register on; a new one by default (never the global
            ``prometheus_client.REGISTRY``, so instances never collide).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.turns = Counter("chatpay_turns_total", "Turns run, by outcome.", ["business", "status"], registry=r)
        self.turn_seconds = Histogram("chatpay_turn_seconds", "How long a turn took, in seconds.", ["business"],
                                      buckets=TURN_BUCKETS, registry=r)
        self.queue_depth = Gauge("chatpay_queue_depth", "Updates waiting in the queue.", ["business"], registry=r)
        self.model_calls = Counter("chatpay_model_calls_total", "Calls to a chat or embedding model.",
                                   ["business", "model"], registry=r)
        self.tokens = Counter("chatpay_tokens_total", "Model tokens, by kind (prompt or completion).",
                              ["business", "model", "kind"], registry=r)
        self.cost_usd = Counter("chatpay_cost_usd_total", "Cost of the model calls in US dollars (as a float; "
                                "the usage records are exact).", ["business", "model"], registry=r)
        self.sends = Counter("chatpay_sends_total", "Messages sent to Telegram.", ["business"], registry=r)
        self.telegram_429 = Counter("chatpay_telegram_429_total", "Telegram answers 429 Too Many Requests.",
                                    ["business"], registry=r)
        self.dead_letters = Counter("chatpay_dead_letters_total", "Updates moved to the dead-letter list.",
                                    ["business"], registry=r)
        self.webhook_requests = Counter("chatpay_webhook_requests_total", "Webhook requests, by HTTP status.",
                                        ["business", "status"], registry=r)

    # ------------------------------------------------------------------ observations

    def turn(self, business: str, status: str, seconds: float) -> None:
        """One update handled: ``status`` is what the worker did with it (``done``, ``replayed``, ``failed``...)
        and ``seconds`` how long it took."""
        self.turns.labels(business=business, status=status).inc()
        self.turn_seconds.labels(business=business).observe(max(seconds, 0.0))

    def set_queue_depth(self, business: str, depth: float) -> None:
        """The queue's depth as just measured (``LLEN``)."""
        self.queue_depth.labels(business=business).set(depth)

    def watch_queue_depth(self, business: str, read: Callable[[], float]) -> None:
        """Read the depth at every scrape by calling ``read``, which must not block (return a cached value)."""
        self.queue_depth.labels(business=business).set_function(read)

    def model_call(self, business: str, model: str, *, prompt_tokens: int, completion_tokens: int,
                   cost_usd: Decimal | None) -> None:
        """One model call with its tokens and cost (``None``: the model's price is unknown, no cost added)."""
        self.model_calls.labels(business=business, model=model).inc()
        if prompt_tokens:
            self.tokens.labels(business=business, model=model, kind="prompt").inc(prompt_tokens)
        if completion_tokens:
            self.tokens.labels(business=business, model=model, kind="completion").inc(completion_tokens)
        if cost_usd is not None and cost_usd > 0:
            self.cost_usd.labels(business=business, model=model).inc(float(cost_usd))

    def send(self, business: str, messages: int = 1) -> None:
        """Messages sent to Telegram."""
        self.sends.labels(business=business).inc(messages)

    def telegram_rate_limited(self, business: str) -> None:
        """Telegram answered 429 (the update is retried, never dropped)."""
        self.telegram_429.labels(business=business).inc()

    def dead_letter(self, business: str) -> None:
        """An update went to the dead-letter list."""
        self.dead_letters.labels(business=business).inc()

    def webhook_request(self, business: str, status: int) -> None:
        """The webhook answered a request with HTTP ``status`` (200, 403, 503...)."""
        self.webhook_requests.labels(business=business, status=str(status)).inc()

    # ------------------------------------------------------------------ exposition

    def render(self) -> tuple[bytes, str]:
        """The exposition text of every series, and its content type (the Prometheus text format)."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


# ---------------------------------------------------------------------------- HTTP


def metrics_routes(app: web.Application, metrics: Metrics, *, ready: ReadyCheck | None = None,
                   liveness: bool = True, readiness: bool = True) -> None:
    """Add ``GET /metrics`` and (unless turned off) ``GET /readyz`` and ``GET /healthz`` to ``app``.

    Args:
        ready: the readiness check (can the process do its work: Redis, MongoDB...); without
            one the process is ready while it answers.
        liveness: add ``/healthz``; turn it off for an application that has its own, such as
            ``chatpay webhook``'s (aiohttp refuses two handlers for one route).
        readiness: add ``/readyz``; off, likewise, for an application with its own.
    """

    async def scrape(_: web.Request) -> web.Response:
        body, content_type = metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(_: web.Request) -> web.Response:
        if ready is None:
            return web.json_response({"ok": True})
        try:
            ok = bool(await asyncio.wait_for(ready(), timeout=READY_TIMEOUT))
        except TimeoutError:
            log.warning("readiness check timed out", extra={"seconds": READY_TIMEOUT})
            return web.json_response({"ok": False, "error": "timeout"}, status=503)
        except Exception as exc:  # a probe answers; the failure's class is enough to act on
            log.warning("readiness check failed", extra={"error": type(exc).__name__})
            return web.json_response({"ok": False, "error": type(exc).__name__}, status=503)
        return web.json_response({"ok": ok}, status=200 if ok else 503)

    app.router.add_get("/metrics", scrape)
    if readiness:
        app.router.add_get("/readyz", readyz)
    if liveness:
        app.router.add_get("/healthz", healthz)


async def start_metrics_server(metrics: Metrics, host: str, port: int,
                               ready: ReadyCheck | None = None) -> web.AppRunner:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on ``host:port`` (0: any free port).

    Returns the started runner: ``runner.addresses`` gives the bound address, and
    ``await runner.cleanup()`` stops it.

    Raises:
        OSError: the port cannot be bound.
    """
    app = web.Application()
    metrics_routes(app, metrics, ready=ready)
    runner = web.AppRunner(app, access_log=None)  # a scrape every few seconds is not worth a log line
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    log.info("metrics listening", extra={"address": [str(a) for a in runner.addresses]})
    return runner
