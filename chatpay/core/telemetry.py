"""Usage records, events and traces of timed spans."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal


@dataclass(frozen=True)
class Usage:
    """Tokens one model call used, converted from vendor fields at the adapter."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens)


@dataclass(frozen=True)
class UsageRecord:
    """One model call, attributed to a business, thread, turn and agent.

    ``cost_usd`` is ``None`` when the model's price is unknown: never a made-up 0.
    Offline turns are recorded with ``engine="offline"`` and zero tokens.
    """

    business_id: str
    thread_id: str
    turn_id: str
    agent: str
    kind: Literal["chat", "embedding", "offline"]
    model: str
    engine: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal | None
    latency_ms: float
    at: datetime | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Event:
    """Something that happened in a business, past tense: ``CartItemAdded``, ``EnquiryAnswered``."""

    business_id: str
    thread_id: str
    turn_id: str
    name: str
    data: dict[str, Any]
    at: datetime | None = None


@dataclass
class Span:
    """A timed step of a turn, with attributes and children."""

    name: str
    start: float
    end: float | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    children: list[Span] = field(default_factory=list)

    @property
    def ms(self) -> float:
        return ((self.end if self.end is not None else self.start) - self.start) * 1000.0

    def to_dict(self, *, timings: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "attrs": self.attrs}
        if timings:
            out["ms"] = round(self.ms, 3)
        if self.children:
            out["children"] = [c.to_dict(timings=timings) for c in self.children]
        return out


class Trace:
    """The spans of one turn; ``span()`` nests by call structure."""

    def __init__(self, turn_id: str, clock: Any = time.perf_counter) -> None:
        self.turn_id = turn_id
        self._clock = clock
        self.root = Span("turn", clock(), attrs={"turn_id": turn_id})
        self._stack = [self.root]

    @contextmanager
    def span(self, name: str, **attrs: Any) -> Iterator[Span]:
        s = Span(name, self._clock(), attrs=dict(attrs))
        self._stack[-1].children.append(s)
        self._stack.append(s)
        try:
            yield s
        finally:
            s.end = self._clock()
            self._stack.pop()

    def finish(self) -> Trace:
        self.root.end = self._clock()
        return self

    def find(self, name: str) -> Span | None:
        todo = [self.root]
        while todo:
            s = todo.pop(0)
            if s.name == name:
                return s
            todo.extend(s.children)
        return None

    def to_dict(self, *, timings: bool = True) -> dict[str, Any]:
        return self.root.to_dict(timings=timings)
