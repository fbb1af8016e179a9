"""The OpenAI adapter against a real local HTTP server speaking the OpenAI API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web

from chatpay.adapters.memory import FixedClock, InMemoryUsageLog
from chatpay.adapters.openai_llm import OpenAIChatModel, OpenAIEmbedder
from chatpay.core.errors import ModelError, ModelRateLimited
from chatpay.core.metering import MeteredChatModel, UsageMeter, call_context
from chatpay.core.ports import ChatMessage, ChatRequest


@dataclass
class FakeOpenAI:
    """Scripted answers: each entry is (status, body, headers)."""

    script: list[tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    reject_json_schema: bool = False
    reject_status: int = 400

    async def chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        fmt = body.get("response_format") or {}
        if self.reject_json_schema and fmt.get("type") == "json_schema":
            return web.json_response({"error": {"message": "response_format json_schema is not supported"}},
                                     status=self.reject_status)
        status, payload, headers = self.script.pop(0)
        return web.json_response(payload, status=status, headers=headers)

    async def embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        data = [{"object": "embedding", "index": i, "embedding": [3.0, 4.0]} for i, _ in enumerate(body["input"])]
        return web.json_response({"object": "list", "data": data, "model": body["model"],
                                  "usage": {"prompt_tokens": 7, "total_tokens": 7}})


def completion(content: str, prompt: int = 12, completion_tokens: int = 3, model: str = "gpt-4o-mini") -> dict:
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion_tokens,
                  "total_tokens": prompt + completion_tokens},
    }


@pytest.fixture
async def server() -> AsyncIterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", fake.chat)
    app.router.add_post("/v1/embeddings", fake.embeddings)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield fake, f"http://127.0.0.1:{port}/v1"
    await runner.cleanup()


def request(schema: dict | None = None) -> ChatRequest:
    return ChatRequest(messages=(ChatMessage("user", "hi"),), json_schema=schema)


async def test_usage_and_text_are_read_from_the_response(server: tuple[FakeOpenAI, str]) -> None:
    fake, url = server
    fake.script.append((200, completion("Hello!", 12, 3), {}))
    model = OpenAIChatModel(model="gpt-4o-mini", api_key="k", base_url=url)
    response = await model.complete(request())
    assert response.text == "Hello!"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (12, 3)
    assert fake.requests[0]["model"] == "gpt-4o-mini"


async def test_structured_output_sends_the_schema_and_parses_json(server: tuple[FakeOpenAI, str]) -> None:
    fake, url = server
    fake.script.append((200, completion('{"intent": "enquiry", "confidence": 0.9}'), {}))
    model = OpenAIChatModel(model="gpt-4o-mini", api_key="k", base_url=url)
    schema = {"type": "object", "properties": {"intent": {"type": "string"}}}
    response = await model.complete(request(schema))
    assert response.parsed == {"intent": "enquiry", "confidence": 0.9}
    assert fake.requests[0]["response_format"]["type"] == "json_schema"
    assert fake.requests[0]["response_format"]["json_schema"]["schema"] == schema


async def test_a_server_that_rejects_json_schema_gets_json_object(server: tuple[FakeOpenAI, str]) -> None:
    fake, url = server
    fake.reject_json_schema = True
    fake.script.append((200, completion('{"intent": "cart_add", "confidence": 1}'), {}))
    model = OpenAIChatModel(model="smol", api_key="k", base_url=url)
    response = await model.complete(request({"type": "object"}))
    assert response.parsed["intent"] == "cart_add"
    assert fake.requests[-1]["response_format"] == {"type": "json_object", "schema": {"type": "object"}}


async def test_llama_cpp_style_500_rejection_is_not_retried_and_falls_back(server: tuple[FakeOpenAI, str]) -> None:
    """llama.cpp's server refuses json_schema with a 500 naming response_format (seen on the real server)."""
    fake, url = server
    fake.reject_json_schema, fake.reject_status = True, 500
    fake.script.append((200, completion('{"intent": "enquiry", "confidence": 1}'), {}))
    model = OpenAIChatModel(model="smol", api_key="k", base_url=url, base_delay=0.01)
    response = await model.complete(request({"type": "object"}))
    assert response.parsed["intent"] == "enquiry" and model.structured == "json_object"
    assert len(fake.requests) == 2  # one refusal, one answer: the 500 was not retried


async def test_429_and_5xx_are_retried_with_backoff(server: tuple[FakeOpenAI, str]) -> None:
    fake, url = server
    fake.script += [
        (429, {"error": {"message": "slow down"}}, {"retry-after": "0.05"}),
        (503, {"error": {"message": "busy"}}, {}),
        (200, completion("ok"), {}),
    ]
    model = OpenAIChatModel(model="gpt-4o-mini", api_key="k", base_url=url, base_delay=0.01)
    response = await model.complete(request())
    assert response.text == "ok"
    assert len(fake.requests) == 3


async def test_persistent_429_raises_rate_limited_with_retry_after(server: tuple[FakeOpenAI, str]) -> None:
    fake, url = server
    fake.script += [(429, {"error": {"message": "slow down"}}, {"retry-after": "0.01"})] * 2
    model = OpenAIChatModel(model="gpt-4o-mini", api_key="k", base_url=url, attempts=2, base_delay=0.01)
    with pytest.raises(ModelRateLimited) as caught:
        await model.complete(request())
    assert caught.value.retry_after == pytest.approx(0.01)


async def test_client_errors_are_not_retried(server: tuple[FakeOpenAI, str]) -> None:
    fake, url = server
    fake.script.append((401, {"error": {"message": "bad key"}}, {}))
    model = OpenAIChatModel(model="gpt-4o-mini", api_key="k", base_url=url)
    with pytest.raises(ModelError, match="401"):
        await model.complete(request())
    assert len(fake.requests) == 1


async def test_a_timeout_becomes_a_model_error() -> None:
    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response(completion("late"))

    app = web.Application()
    app.router.add_post("/v1/chat/completions", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        model = OpenAIChatModel(model="m", api_key="k", base_url=f"http://127.0.0.1:{port}/v1", timeout=0.2,
                                attempts=2, base_delay=0.01)
        with pytest.raises(ModelError, match="Timeout"):
            await model.complete(request())
    finally:
        await runner.cleanup()


async def test_metered_calls_record_tokens_and_cost(server: tuple[FakeOpenAI, str]) -> None:
    fake, url = server
    fake.script.append((200, completion("hi", 1000, 500), {}))
    log = InMemoryUsageLog()
    meter = UsageMeter(log, FixedClock(), engine="gpt-4o-mini")
    model = MeteredChatModel(OpenAIChatModel(model="gpt-4o-mini", api_key="k", base_url=url), meter)
    with call_context(business_id="b1", thread_id="t1", turn_id="u1", agent="enquiry"):
        await model.complete(request())
    [rec] = log.records
    assert (rec.business_id, rec.thread_id, rec.turn_id, rec.agent) == ("b1", "t1", "u1", "enquiry")
    assert (rec.prompt_tokens, rec.completion_tokens, rec.total_tokens) == (1000, 500, 1500)
    # gpt-4o-mini: $0.15 per 1M input, $0.60 per 1M output
    assert rec.cost_usd == Decimal("0.00045")


async def test_an_unknown_models_cost_is_unknown_not_zero(server: tuple[FakeOpenAI, str]) -> None:
    fake, url = server
    fake.script.append((200, completion("hi", 10, 5, model="my-local-llama"), {}))
    log = InMemoryUsageLog()
    model = MeteredChatModel(OpenAIChatModel(model="my-local-llama", api_key="k", base_url=url),
                             UsageMeter(log, FixedClock(), engine="my-local-llama"))
    await model.complete(request())
    assert log.records[0].cost_usd is None


async def test_embeddings_are_unit_length_with_usage(server: tuple[FakeOpenAI, str]) -> None:
    fake, url = server
    embedder = OpenAIEmbedder(api_key="k", base_url=url, dim=2)
    result = await embedder.embed(["a", "b"])
    assert [list(v) for v in result.vectors] == [[0.6, 0.8], [0.6, 0.8]]
    assert result.usage.prompt_tokens == 7
    assert json.loads(json.dumps(fake.requests[0]))["input"] == ["a", "b"]


async def test_reasoning_models_get_max_completion_tokens_and_no_temperature(server: tuple[FakeOpenAI, str]) -> None:
    fake, url = server
    fake.script.append((200, completion("ok", model="gpt-5-mini"), {}))
    model = OpenAIChatModel(model="gpt-5-mini", api_key="k", base_url=url)
    await model.complete(request())
    sent = fake.requests[-1]
    assert sent["max_completion_tokens"] == 400 and "max_tokens" not in sent and "temperature" not in sent


async def test_a_model_that_refuses_max_tokens_or_temperature_is_asked_again_without_them(
    server: tuple[FakeOpenAI, str],
) -> None:
    fake, url = server
    refuse = lambda p: (400, {"error": {"message": f"Unsupported parameter: '{p}' is not supported with this model.",  # noqa: E731
                                        "type": "invalid_request_error", "param": p}}, {})
    fake.script += [refuse("max_tokens"), refuse("temperature"), (200, completion("fine"), {})]
    model = OpenAIChatModel(model="some-new-model", api_key="k", base_url=url, attempts=1)
    response = await model.complete(request())
    assert response.text == "fine"
    assert "max_tokens" in fake.requests[0] and "temperature" in fake.requests[0]
    assert "max_completion_tokens" in fake.requests[1] and "temperature" in fake.requests[1]
    assert "max_completion_tokens" in fake.requests[2] and "temperature" not in fake.requests[2]
