"""Prometheus metrics scraped over real HTTP from the metrics server, and its health routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from chatpay.metrics import Metrics, metrics_routes, start_metrics_server
from tests.support.redis_server import free_port


class Readiness:
    """A readiness check a test flips: True, False, or an exception to raise."""

    def __init__(self) -> None:
        self.answer: bool | Exception = True
        self.calls = 0

    async def __call__(self) -> bool:
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
async def served() -> AsyncIterator[tuple[Metrics, Readiness, str]]:
    metrics, ready = Metrics(), Readiness()
    port = free_port()
    runner = await start_metrics_server(metrics, "127.0.0.1", port, ready=ready)
    try:
        yield metrics, ready, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.headers["Content-Type"], await response.text()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition text, by name and sorted labels."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_a_scrape_shows_every_observation_with_its_labels(served: tuple[Metrics, Readiness, str]) -> None:
    metrics, _, base = served
    metrics.turn("acme", "ok", 0.2)
    metrics.turn("acme", "ok", 0.04)
    metrics.turn("acme", "error", 12.0)
    metrics.turn("bolt", "ok", 45.0)
    metrics.set_queue_depth("acme", 7)
    metrics.model_call("acme", "gpt-4o-mini", prompt_tokens=1200, completion_tokens=300, cost_usd=Decimal("0.00036"))
    metrics.model_call("acme", "gpt-4o-mini", prompt_tokens=800, completion_tokens=0, cost_usd=Decimal("0.00012"))
    metrics.model_call("acme", "mystery", prompt_tokens=5, completion_tokens=5, cost_usd=None)
    metrics.send("acme", 3)
    metrics.send("acme")
    metrics.telegram_rate_limited("acme")
    metrics.dead_letter("bolt")
    metrics.webhook_request("acme", 200)
    metrics.webhook_request("acme", 200)
    metrics.webhook_request("acme", 403)

    status, content_type, text = await get(f"{base}/metrics")
    assert status == 200 and content_type == CONTENT_TYPE_LATEST and content_type.startswith("text/plain")
    assert 'chatpay_turns_total{business="acme",status="ok"} 2.0' in text
    got = samples(text)

    def value(name: str, **labels: str) -> float | None:
        return got.get((name, tuple(sorted(labels.items()))))

    assert value("chatpay_turns_total", business="acme", status="error") == 1
    assert value("chatpay_turns_total", business="bolt", status="ok") == 1
    assert value("chatpay_turn_seconds_count", business="acme") == 3
    assert value("chatpay_turn_seconds_sum", business="acme") == pytest.approx(12.24)
    assert value("chatpay_turn_seconds_bucket", business="acme", le="0.05") == 1  # 0.04
    assert value("chatpay_turn_seconds_bucket", business="acme", le="0.25") == 2  # and 0.2
    assert value("chatpay_turn_seconds_bucket", business="acme", le="8.0") == 2
    assert value("chatpay_turn_seconds_bucket", business="acme", le="13.0") == 3  # and 12
    assert value("chatpay_turn_seconds_bucket", business="bolt", le="30.0") == 0  # 45 s: only +Inf
    assert value("chatpay_turn_seconds_bucket", business="bolt", le="+Inf") == 1
    assert value("chatpay_queue_depth", business="acme") == 7
    mini = {"business": "acme", "model": "gpt-4o-mini"}
    assert value("chatpay_model_calls_total", **mini) == 2
    assert value("chatpay_tokens_total", **mini, kind="prompt") == 2000
    assert value("chatpay_tokens_total", **mini, kind="completion") == 300
    assert value("chatpay_cost_usd_total", **mini) == pytest.approx(0.00048)
    assert value("chatpay_model_calls_total", business="acme", model="mystery") == 1
    assert value("chatpay_tokens_total", business="acme", model="mystery", kind="prompt") == 5
    assert value("chatpay_cost_usd_total", business="acme", model="mystery") is None  # unknown price: no cost
    assert value("chatpay_sends_total", business="acme") == 4
    assert value("chatpay_telegram_429_total", business="acme") == 1
    assert value("chatpay_dead_letters_total", business="bolt") == 1
    assert value("chatpay_dead_letters_total", business="acme") is None
    assert value("chatpay_webhook_requests_total", business="acme", status="200") == 2
    assert value("chatpay_webhook_requests_total", business="acme", status="403") == 1


async def test_the_queue_depth_can_be_read_at_each_scrape(served: tuple[Metrics, Readiness, str]) -> None:
    metrics, _, base = served
    depth = {"now": 3.0}
    metrics.watch_queue_depth("acme", lambda: depth["now"])
    assert samples((await get(f"{base}/metrics"))[2])[("chatpay_queue_depth", (("business", "acme"),))] == 3
    depth["now"] = 11.0
    assert samples((await get(f"{base}/metrics"))[2])[("chatpay_queue_depth", (("business", "acme"),))] == 11


async def test_readiness_follows_the_check_and_liveness_does_not(served: tuple[Metrics, Readiness, str]) -> None:
    _, ready, base = served
    status, _, body = await get(f"{base}/readyz")
    assert status == 200 and '"ok": true' in body
    ready.answer = False
    assert (await get(f"{base}/readyz"))[0] == 503
    assert (await get(f"{base}/healthz"))[0] == 200  # alive, though not ready
    ready.answer = ConnectionError("redis is gone")
    status, _, body = await get(f"{base}/readyz")
    assert status == 503 and "ConnectionError" in body and "redis is gone" not in body
    assert (await get(f"{base}/healthz"))[0] == 200
    ready.answer = True
    assert (await get(f"{base}/readyz"))[0] == 200
    assert ready.calls == 4


async def test_a_readiness_check_that_hangs_is_not_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    import chatpay.metrics

    monkeypatch.setattr(chatpay.metrics, "READY_TIMEOUT", 0.05)

    async def hangs() -> bool:
        await asyncio.sleep(10)
        return True

    port = free_port()
    runner = await start_metrics_server(Metrics(), "127.0.0.1", port, ready=hangs)
    try:
        status, _, body = await get(f"http://127.0.0.1:{port}/readyz")
    finally:
        await runner.cleanup()
    assert status == 503 and "timeout" in body


async def test_without_a_check_the_server_is_ready_and_instances_do_not_share_series() -> None:
    first, second = Metrics(), Metrics()  # the same names twice: separate registries, no clash
    first.turn("acme", "ok", 1.0)
    port = free_port()
    runner = await start_metrics_server(second, "127.0.0.1", port)
    try:
        assert (await get(f"http://127.0.0.1:{port}/readyz"))[0] == 200
        text = (await get(f"http://127.0.0.1:{port}/metrics"))[2]
    finally:
        await runner.cleanup()
    assert "# TYPE chatpay_turns_total counter" in text and 'business="acme"' not in text
    assert 'chatpay_turns_total{business="acme",status="ok"} 1.0' in first.render()[0].decode()
    assert REGISTRY.get_sample_value("chatpay_turns_total", {"business": "acme", "status": "ok"}) is None


async def test_routes_join_an_application_that_has_its_own_healthz() -> None:
    async def own(_: Any) -> web.Response:
        return web.json_response({"ok": True, "queue": "chatpay_queue"})

    app = web.Application()
    app.router.add_get("/healthz", own)
    metrics = Metrics()
    metrics.dead_letter("acme")
    metrics_routes(app, metrics, liveness=False)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        assert "chatpay_queue" in (await get(f"http://127.0.0.1:{port}/healthz"))[2]
        assert 'chatpay_dead_letters_total{business="acme"} 1.0' in (await get(f"http://127.0.0.1:{port}/metrics"))[2]
    finally:
        await runner.cleanup()
    with pytest.raises(RuntimeError):  # without liveness=False, two handlers for GET /healthz
        metrics_routes(app, Metrics())


async def test_a_taken_port_is_an_os_error() -> None:
    port = free_port()
    runner = await start_metrics_server(Metrics(), "127.0.0.1", port)
    try:
        with pytest.raises(OSError):
            await start_metrics_server(Metrics(), "127.0.0.1", port)
    finally:
        await runner.cleanup()
