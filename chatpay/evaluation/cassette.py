"""Cassettes: recorded chat-model responses, so LLM evals replay with no network.

:class:`CassetteChatModel` satisfies :class:`~chatpay.core.ports.ChatModel`. Each request
is keyed by the sha256 of its canonical JSON (model name, messages, schema, temperature,
token limit). In ``record`` mode a miss calls the real model and appends the answer to
the cassette file (JSON Lines); in ``replay`` mode a miss is an error, raised and also
remembered in :attr:`CassetteChatModel.misses` so the eval can stop and say which
cassette lacks what, even when the turn boundary has swallowed the exception.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Literal

from chatpay.core.errors import ChatPayError, InvalidInput
from chatpay.core.ports import ChatModel, ChatRequest, ChatResponse
from chatpay.core.telemetry import Usage

log = logging.getLogger(__name__)

Mode = Literal["record", "replay"]


class CassetteMiss(ChatPayError):
    """A replayed eval asked for a response its cassette does not hold.

    Deliberately not a :class:`ModelError`: the engine falls back quietly on model errors,
    which would turn a stale cassette into silently different scores.
    """

    def __init__(self, path: Path, key: str) -> None:
        super().__init__(
            f"{path}: no recorded response for request {key[:12]}; "
            "run the evals with OPENAI_API_KEY set to record it, or delete the cassette to run offline"
        )
        self.path = path
        self.key = key


def canonical_request(request: ChatRequest, model: str) -> str:
    """The request as canonical JSON: sorted keys, no whitespace, the model's name included."""
    body = {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "json_schema": request.json_schema,
        "schema_name": request.schema_name,
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def request_key(request: ChatRequest, model: str) -> str:
    """The sha256 (hex) of :func:`canonical_request`."""
    return hashlib.sha256(canonical_request(request, model).encode("utf-8")).hexdigest()


def read_cassette(path: Path) -> dict[str, dict[str, Any]]:
    """The entries of a cassette file by request key (later lines win)."""
    entries: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return entries
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            entries[str(entry["key"])] = entry
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InvalidInput("not a cassette entry", source=str(path), item=f"line {n}") from exc
    return entries


def recorded_model(path: Path) -> str | None:
    """The model whose answers the cassette holds (the latest entry's), if any."""
    entries = read_cassette(path)
    return str(list(entries.values())[-1].get("model")) if entries else None


class CassetteChatModel:
    """A chat model that answers from a cassette and, when recording, from the real model.

    Args:
        path: the cassette file (created on the first recorded answer).
        inner: the real model; required in ``record`` mode, ignored in ``replay``.
        mode: ``record`` (look up, call on a miss, append) or ``replay`` (look up only).
        name: the model's name; defaults to ``inner.name``, or in replay to the cassette's model.
    """

    def __init__(
        self, path: Path, inner: ChatModel | None = None, *, mode: Mode = "record", name: str | None = None
    ) -> None:
        if mode == "record" and inner is None:
            raise ValueError("recording a cassette needs the real model")
        self.path = path
        self.inner = inner
        self.mode = mode
        self.name = name or (inner.name if inner is not None else None) or recorded_model(path) or "cassette"
        self._entries = read_cassette(path)
        self.hits = 0
        self.recorded = 0
        self.misses: list[CassetteMiss] = []

    @property
    def size(self) -> int:
        """How many responses the cassette holds (not ``__len__``: an empty cassette is still a model)."""
        return len(self._entries)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        key = request_key(request, self.name)
        entry = self._entries.get(key)
        if entry is not None:
            self.hits += 1
            return _response(entry)
        if self.mode == "replay" or self.inner is None:
            miss = CassetteMiss(self.path, key)
            self.misses.append(miss)
            raise miss
        response = await self.inner.complete(request)
        entry = {
            "key": key,
            "model": self.name,
            "request": json.loads(canonical_request(request, self.name)),
            "response": {
                "text": response.text,
                "parsed": response.parsed,
                "model": response.model,
                "usage": {"prompt_tokens": response.usage.prompt_tokens,
                          "completion_tokens": response.usage.completion_tokens},
            },
        }
        self._append(entry)
        self._entries[key] = entry
        self.recorded += 1
        return response

    def _append(self, entry: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")


def _response(entry: dict[str, Any]) -> ChatResponse:
    r = entry["response"]
    usage = r.get("usage") or {}
    return ChatResponse(
        text=str(r.get("text", "")),
        usage=Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
        model=str(r.get("model") or entry.get("model") or ""),
        parsed=r.get("parsed"),
    )
