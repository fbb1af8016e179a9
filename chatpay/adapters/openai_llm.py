"""OpenAI-compatible chat and embedding models on the ``openai`` SDK.

Works with OpenAI, Azure OpenAI, Ollama, vLLM and llama.cpp's server through
``base_url``. Timeouts and retries with exponential backoff on 429 and 5xx are ours
(the SDK's own retries are off, so what happens is visible in logs). Usage is read
from each response and converted into :class:`~chatpay.core.telemetry.Usage` here,
at the boundary; vendor errors become ChatPay errors with ``raise ... from exc``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections.abc import Sequence
from typing import Any, Literal

from chatpay.core.errors import ModelError, ModelRateLimited
from chatpay.core.ports import ChatRequest, ChatResponse, Embeddings
from chatpay.core.telemetry import Usage

log = logging.getLogger(__name__)

StructuredMode = Literal["json_schema", "json_object"]


def _retry_after(exc: Any) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    value = headers.get("retry-after") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class _Retrying:
    """Shared retry policy: backoff on 429, 5xx, timeouts and connection errors."""

    def __init__(self, *, attempts: int, base_delay: float, max_delay: float) -> None:
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay

    async def call(self, what: str, fn: Any) -> Any:
        import openai

        for attempt in range(1, self.attempts + 1):
            try:
                return await fn()
            except openai.RateLimitError as exc:
                wait = _retry_after(exc)
                if attempt == self.attempts:
                    raise ModelRateLimited(f"{what}: rate limited", wait) from exc
                await self._sleep(attempt, wait, what, "429")
            except openai.APIStatusError as exc:
                # llama.cpp's server answers a request it cannot validate with a 500: not transient.
                if exc.status_code < 500 or attempt == self.attempts or _rejects_format(exc):
                    raise ModelError(f"{what}: HTTP {exc.status_code}: {_short(exc)}") from exc
                await self._sleep(attempt, _retry_after(exc), what, str(exc.status_code))
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                if attempt == self.attempts:
                    raise ModelError(f"{what}: {type(exc).__name__} after {attempt} attempts") from exc
                await self._sleep(attempt, None, what, type(exc).__name__)
        raise AssertionError("unreachable")

    async def _sleep(self, attempt: int, hinted: float | None, what: str, why: str) -> None:
        delay = hinted if hinted is not None else min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        delay = min(delay, self.max_delay) * (0.8 + 0.4 * random.random())
        log.warning("model call failed; retrying", extra={"what": what, "why": why, "attempt": attempt,
                                                           "delay_s": round(delay, 2)})
        await asyncio.sleep(delay)


def _rejects_format(exc: Exception) -> bool:
    """The server refused our ``response_format`` (OpenAI says 400; llama.cpp's server says 500)."""
    text = str(exc)
    return "response_format" in text or "json_schema" in text


# Reasoning model families (o1, o3, o4-mini, gpt-5...) refuse ``max_tokens`` and any temperature but
# the default; they take ``max_completion_tokens``. Other servers may say so in a 400, learned below.
_REASONING = re.compile(r"^(o\d|gpt-5)", re.IGNORECASE)


def _refuses(exc: Exception, parameter: str) -> bool:
    text = str(exc)
    return f"'{parameter}'" in text and ("nsupported" in text or "not supported" in text)


def _short(exc: Exception) -> str:
    return str(exc).replace("\n", " ")[:200]


class OpenAIChatModel:
    """A chat model behind any OpenAI-compatible ``/chat/completions`` endpoint."""

    def __init__(
        self,
        *,
        model: str,
        api_key: str,
        base_url: str | None = None,
        timeout: float = 30.0,
        attempts: int = 4,
        base_delay: float = 0.5,
        max_delay: float = 20.0,
        structured: StructuredMode = "json_schema",
        client: Any = None,
    ) -> None:
        self.name = model
        self.structured = structured
        reasoning = bool(_REASONING.match(model.rsplit("/", 1)[-1]))
        self.token_parameter = "max_completion_tokens" if reasoning else "max_tokens"
        self.sends_temperature = not reasoning
        self._retry = _Retrying(attempts=attempts, base_delay=base_delay, max_delay=max_delay)
        if client is None:
            from openai import AsyncOpenAI

            client = AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)
        self._client = client

    def _response_format(self, request: ChatRequest) -> dict[str, Any] | None:
        if request.json_schema is None:
            return None
        if self.structured == "json_object":
            # llama.cpp's server rejects json_schema but constrains output with this form.
            return {"type": "json_object", "schema": dict(request.json_schema)}
        return {
            "type": "json_schema",
            "json_schema": {"name": request.schema_name, "schema": dict(request.json_schema), "strict": True},
        }

    async def complete(self, request: ChatRequest) -> ChatResponse:
        import openai

        kwargs: dict[str, Any] = {
            "model": self.name,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            self.token_parameter: request.max_tokens,
        }
        if self.sends_temperature:
            kwargs["temperature"] = request.temperature
        fmt = self._response_format(request)
        if fmt is not None:
            kwargs["response_format"] = fmt
        try:
            response = await self._retry.call("chat", lambda: self._client.chat.completions.create(**kwargs))
        except ModelError as exc:
            cause = exc.__cause__
            if isinstance(cause, openai.APIStatusError) and cause.status_code == 400:
                if self.token_parameter == "max_tokens" and _refuses(cause, "max_tokens"):
                    log.warning("model refuses max_tokens; sending max_completion_tokens from now on")
                    self.token_parameter = "max_completion_tokens"
                    return await self.complete(request)
                if self.sends_temperature and _refuses(cause, "temperature"):
                    log.warning("model refuses a temperature; sending none from now on")
                    self.sends_temperature = False
                    return await self.complete(request)
            rejected = isinstance(cause, openai.APIStatusError) and _rejects_format(cause)
            if fmt is not None and self.structured == "json_schema" and rejected:
                log.warning("server rejected json_schema; switching to json_object for this model")
                self.structured = "json_object"
                return await self.complete(request)
            raise
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content or "") if choice is not None else ""
        usage = Usage(
            prompt_tokens=int(getattr(response.usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(response.usage, "completion_tokens", 0) or 0),
        )
        parsed = None
        if request.json_schema is not None:
            try:
                parsed = json.loads(_json_part(text))
            except ValueError as exc:
                raise ModelError(f"model answered invalid JSON: {text[:120]!r}") from exc
        return ChatResponse(text, usage, getattr(response, "model", None) or self.name, parsed)


def _json_part(text: str) -> str:
    """The JSON object in ``text`` (some servers wrap it in prose or code fences)."""
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1] if start != -1 and end > start else text


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible ``/embeddings`` endpoint, unit-normalised."""

    def __init__(
        self,
        *,
        model: str = "text-embedding-3-small",
        api_key: str,
        base_url: str | None = None,
        dim: int = 1536,
        timeout: float = 30.0,
        attempts: int = 4,
        client: Any = None,
    ) -> None:
        self.name = model
        self.dim = dim
        self._retry = _Retrying(attempts=attempts, base_delay=0.5, max_delay=20.0)
        if client is None:
            from openai import AsyncOpenAI

            client = AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)
        self._client = client

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        if not texts:
            return Embeddings([], Usage(), self.name)
        response = await self._retry.call(
            "embeddings", lambda: self._client.embeddings.create(model=self.name, input=list(texts))
        )
        vectors = []
        for item in sorted(response.data, key=lambda d: d.index):
            vec = list(item.embedding)
            norm = sum(x * x for x in vec) ** 0.5 or 1.0
            vectors.append([x / norm for x in vec])
        tokens = int(getattr(response.usage, "prompt_tokens", 0) or 0)
        return Embeddings(vectors, Usage(prompt_tokens=tokens), getattr(response, "model", None) or self.name)
