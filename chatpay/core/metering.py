"""One wrapper every model call goes through: it records tokens, cost and latency.

The business, thread, turn and agent a call belongs to come from a context variable
that the turn service sets (:func:`call_context`), so agents need not thread ids
through every function.

Budgets: before each chat call (and each paid embedding call inside a turn) the meter asks
its :class:`~chatpay.core.budget.BudgetGuard`, which reads one counter (O(1), whatever the
business's history); after the call it counts the call there. A spent budget raises
:class:`~chatpay.core.errors.BudgetExceeded`, a ``ModelError``, which every model call site
answers with the offline engine's reply: the shopper sees a normal answer.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from chatpay.core.budget import BudgetGuard
from chatpay.core.errors import ModelError
from chatpay.core.ports import ChatModel, ChatRequest, ChatResponse, Clock, Embedder, Embeddings, UsageLog
from chatpay.core.pricing import cost_usd
from chatpay.core.telemetry import UsageRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallContext:
    business_id: str = "-"
    thread_id: str = "-"
    turn_id: str = "-"
    agent: str = "-"


_context: contextvars.ContextVar[CallContext] = contextvars.ContextVar(
    "chatpay_call", default=CallContext()  # noqa: B039 (a frozen dataclass, never mutated)
)
_collected: contextvars.ContextVar[list[UsageRecord] | None] = contextvars.ContextVar(
    "chatpay_usage", default=None
)


@contextmanager
def call_context(**fields: str) -> Iterator[CallContext]:
    """Attribute model calls inside the block to the given business/thread/turn/agent."""
    ctx = replace(_context.get(), **fields)
    token = _context.set(ctx)
    try:
        yield ctx
    finally:
        _context.reset(token)


@contextmanager
def collect_usage() -> Iterator[list[UsageRecord]]:
    """Collect the usage records made inside the block (per turn) into a list."""
    records: list[UsageRecord] = []
    token = _collected.set(records)
    try:
        yield records
    finally:
        _collected.reset(token)


def current_context() -> CallContext:
    return _context.get()


class UsageMeter:
    """Writes usage records to the log and enforces the business's budget through ``guard``.

    Args:
        guard: the business's caps over a spending counter; None checks nothing.
    """

    def __init__(self, log: UsageLog, clock: Clock, *, engine: str, guard: BudgetGuard | None = None) -> None:
        self.log = log
        self.clock = clock
        self.engine = engine
        self.guard = guard

    async def check_budget(self, business_id: str) -> None:
        """Raise :class:`BudgetExceeded` when ``business_id`` spent a cap: one counter read.

        A counter that cannot be read refuses the call too (a ``ModelError``, so the turn is
        answered offline): an outage must not turn into unlimited spending.
        """
        if self.guard is None:
            return
        try:
            await self.guard.check(business_id, self.clock.now())
        except ModelError:
            raise
        except Exception as exc:
            logger.warning("budget counter unavailable; answering offline",
                        extra={"business_id": business_id, "error": repr(exc)})
            raise ModelError(f"budget of business {business_id} cannot be checked: {type(exc).__name__}") from exc

    async def record(self, *, kind: str, model: str, prompt: int, completion: int, latency_ms: float) -> UsageRecord:
        ctx = _context.get()
        rec = UsageRecord(
            business_id=ctx.business_id,
            thread_id=ctx.thread_id,
            turn_id=ctx.turn_id,
            agent=ctx.agent,
            kind=kind,  # type: ignore[arg-type]
            model=model,
            engine=self.engine if kind != "offline" else "offline",
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost_usd=cost_usd(model, prompt, completion, embedding=kind == "embedding"),
            latency_ms=latency_ms,
            at=self.clock.now(),
        )
        await self.log.record(rec)
        sink = _collected.get()
        if sink is not None:
            sink.append(rec)
        if self.guard is not None and kind != "offline" and (rec.total_tokens or rec.cost_usd):
            try:
                await self.guard.record(rec.business_id, rec.total_tokens, rec.cost_usd, rec.at or self.clock.now(),
                                        thread_id=rec.thread_id, turn_id=rec.turn_id)
            except Exception as exc:  # the call is made and logged; reconciliation repairs the counter
                logger.warning("budget counter not updated", extra={"business_id": rec.business_id,
                                                                 "error": repr(exc)})
        return rec


class MeteredChatModel:
    """A chat model wrapper that records every call's usage and honours the budget."""

    def __init__(self, inner: ChatModel, meter: UsageMeter) -> None:
        self.inner = inner
        self.meter = meter
        self.name = inner.name

    async def complete(self, request: ChatRequest) -> ChatResponse:
        await self.meter.check_budget(_context.get().business_id)
        start = time.perf_counter()
        response = await self.inner.complete(request)
        await self.meter.record(
            kind="chat",
            model=response.model or self.name,
            prompt=response.usage.prompt_tokens,
            completion=response.usage.completion_tokens,
            latency_ms=(time.perf_counter() - start) * 1000.0,
        )
        return response


class MeteredEmbedder:
    """An embedder wrapper that records every call's usage (zero tokens for local models).

    A paid embedder is refused inside a turn whose business spent its budget (search then
    runs lexical-only for that query); catalog indexing, outside turns, is counted but never
    refused, since its vectors serve every later turn.
    """

    def __init__(self, inner: Embedder, meter: UsageMeter, *, local: bool) -> None:
        self.inner = inner
        self.meter = meter
        self.local = local
        self.name = inner.name
        self.dim = inner.dim

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        ctx = _context.get()
        if not self.local and ctx.turn_id != "-":
            await self.meter.check_budget(ctx.business_id)
        start = time.perf_counter()
        result = await self.inner.embed(texts)
        if not self.local:
            await self.meter.record(
                kind="embedding",
                model=result.model or self.name,
                prompt=result.usage.prompt_tokens,
                completion=0,
                latency_ms=(time.perf_counter() - start) * 1000.0,
            )
        return result
