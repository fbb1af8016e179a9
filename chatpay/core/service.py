"""The turn service: one shopper turn in, one reply out, with a trace and usage.

``Turn`` → router decision → one agent → ``Reply``. Every step is a timed span; every
model call is metered; conversation, cart and events are written through the ports.
The turn boundary is the only place that catches broadly, and it records what it caught.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from chatpay.core.agents import AgentContext, Engine
from chatpay.core.cart import Cart, CartLine
from chatpay.core.catalog import Catalog
from chatpay.core.errors import ChatPayError
from chatpay.core.metering import call_context, collect_usage
from chatpay.core.ports import Clock, Stores
from chatpay.core.replies import catalog_language, current, reply_language, say, speaking
from chatpay.core.routing import RouteDecision
from chatpay.core.telemetry import Event, Trace, UsageRecord
from chatpay.core.turns import Message, Reply, Turn

log = logging.getLogger(__name__)
HISTORY_TURNS = 12


@dataclass
class TurnResult:
    """Everything one turn produced, for channels, the TUI, evals and tests."""

    turn: Turn
    reply: Reply
    decision: RouteDecision
    trace: Trace
    cart: Cart
    catalog: Catalog | None
    engine: str
    usage: list[UsageRecord] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    retrieval: Any = None
    error: str | None = None

    @property
    def intent(self) -> str:
        return self.decision.intent


def new_turn_id() -> str:
    return uuid.uuid4().hex[:16]


class TurnService:
    """Runs turns for any business against the given stores and engine."""

    def __init__(self, *, stores: Stores, engine: Engine, clock: Clock) -> None:
        self.stores = stores
        self.engine = engine
        self.clock = clock

    async def handle(self, turn: Turn, *, intent: str | None = None) -> TurnResult:
        """Run one turn. ``intent`` skips the router and runs that agent (evals, debugging)."""
        trace = Trace(turn.turn_id)
        with collect_usage() as usage, call_context(
            business_id=turn.business_id, thread_id=turn.thread_id, turn_id=turn.turn_id, agent="turn"
        ):
            result = await self._run(turn, trace, intent)
            result.usage = list(usage)
        trace.finish()
        log.info(
            "turn done",
            extra={"business_id": turn.business_id, "thread_id": turn.thread_id, "turn_id": turn.turn_id,
                   "intent": result.intent, "engine": result.engine, "ms": round(trace.root.ms, 2)},
        )
        return result

    async def _undo_edited(self, ctx: Any) -> tuple[str, bool]:
        """Undo the cart change of the message an edit corrects; (what to say first, whether to go on).

        The edit then runs as the shopper's new reading. When the cart changed after the original
        message, or the original is unknown, nothing is undone or applied twice: the shopper is
        told what stands.
        """
        turn = ctx.turn
        edits = ctx.state.get("edits") if isinstance(ctx.state.get("edits"), dict) else {}
        record = edits.get(str(turn.message_id))
        if record is None or record.get("after_version") != ctx.cart.version:
            text = _cart_text(ctx)
            return (f"{say('edit.stands')}\n\n{text}".strip(), False)
        restored = Cart(ctx.cart.business_id, ctx.cart.thread_id,
                        tuple(CartLine(h, v, q) for h, v, q in record.get("before", [])), ctx.cart.version)
        if restored.lines != ctx.cart.lines:
            ctx.cart = await self.stores.carts.save(restored)
            ctx.emit("EditUndone", message_id=turn.message_id)
            return (say("edit.undone"), True)
        return ("", True)

    async def _run(self, turn: Turn, trace: Trace, forced: str | None = None) -> TurnResult:
        started = time.perf_counter()
        with trace.span("load") as span:
            catalog = await self.stores.catalogs.get(turn.business_id)
            cart = await self.stores.carts.get(turn.business_id, turn.thread_id)
            history = await self.stores.conversations.recent(turn.business_id, turn.thread_id, HISTORY_TURNS)
            state = await self.stores.conversations.get_state(turn.business_id, turn.thread_id)
            span.attrs.update(products=len(catalog) if catalog else 0, history=len(history), cart_lines=len(cart.lines))
        # Answer in the shopper's language: this message's, else the conversation's, else the shop's.
        lang = reply_language(turn.text or "", state.get("lang"), lambda: catalog_language(catalog))
        with speaking(lang):
            return await self._answer(turn, trace, forced, started, catalog, cart, history, state)

    async def _answer(self, turn: Turn, trace: Trace, forced: str | None, started: float, catalog: Catalog | None,
                      cart: Cart, history: list[Message], state: dict[str, Any]) -> TurnResult:
        ctx = AgentContext(
            turn=turn, catalog=catalog, cart=cart, history=history, state=state, trace=trace,
            stores=self.stores, clock=self.clock, engine=self.engine,
        )
        if state.get("lang") != current():
            ctx.remember(lang=current())
        before = cart
        correction = ""
        try:
            if turn.edited:
                correction, proceed = await self._undo_edited(ctx)
                if not proceed:
                    raise _Stands(correction)
                before = ctx.cart
            with trace.span("route") as span:
                decision = await self.engine.route(ctx)
                if forced is not None:
                    decision = RouteDecision(forced, 1.0, reason=f"forced; the router said {decision.intent}",
                                             layer="rule")
                span.attrs.update(decision.as_attrs())
            ctx.decision = decision
            agent_name = decision.intent if not decision.clarify else "clarify"
            with trace.span(f"agent:{agent_name}") as span, call_context(agent=agent_name):
                reply = await self.engine.run_agent(agent_name, ctx)
                span.attrs.update(ctx.span_attrs)
            if correction:
                reply = replace(reply, text=f"{correction}\n\n{reply.text}".strip())
            outcome = ctx.outcome_intent
            if outcome and outcome != decision.intent:  # what the turn did, when it differs from what was read
                decision = replace(decision, intent=outcome, runner_up=decision.intent,
                                   reason=f"{decision.reason}; the turn's outcome was {outcome}")
            error = None
        except _Stands as stands:
            decision = ctx.decision or RouteDecision("chitchat", 1.0, reason="an edit that cannot be replayed",
                                                     layer="rule")
            reply = Reply(str(stands))
            error = None
        except Exception as exc:  # the turn boundary: record, never crash the caller
            if isinstance(exc, ChatPayError):
                log.warning("turn failed", extra={"turn_id": turn.turn_id, "error": repr(exc)})
            else:
                log.exception("turn crashed", extra={"turn_id": turn.turn_id})
            decision = ctx.decision or RouteDecision.fallback(repr(exc))
            reply = Reply(say("shop.error"))
            error = f"{type(exc).__name__}: {exc}"
        with trace.span("save"):
            now = self.clock.now()
            user_text = turn.text or (f"[button] {turn.callback_data}" if turn.callback_data else "")
            if turn.payment:
                user_text = f"[payment] {turn.payment.kind}"
            await self.stores.conversations.append(
                turn.business_id, turn.thread_id,
                Message("user", user_text, turn.turn_id, decision.intent, now),
            )
            await self.stores.conversations.append(
                turn.business_id, turn.thread_id,
                Message("assistant", _summary(reply), turn.turn_id, decision.intent, now),
            )
            if turn.message_id is not None and not turn.callback_data:
                ctx.remember(edits=_remember_effect(ctx.state.get("edits"), turn.message_id, before, ctx.cart))
            if ctx.state_changes:
                await self.stores.conversations.update_state(turn.business_id, turn.thread_id, ctx.state_changes)
            for event in ctx.events:
                await self.stores.events.record(event)
            ms = round((time.perf_counter() - started) * 1000, 2)
            engine = self.engine.name if ctx.model_calls else "offline"
            # One record per turn, committed with its other writes, that `chatpay report` reads for
            # turns, latency and errors (no message text: the conversation store holds that).
            await self.stores.events.record(Event(turn.business_id, turn.thread_id, turn.turn_id, "TurnCompleted",
                                                  {"intent": decision.intent, "ms": ms, "error": error,
                                                   "engine": engine}, now))
            if not ctx.model_calls:
                await self.engine.meter.record(kind="offline", model="offline", prompt=0, completion=0,
                                               latency_ms=ms)
        return TurnResult(
            turn=turn, reply=reply, decision=decision, trace=trace, cart=ctx.cart, catalog=catalog,
            engine=self.engine.name if ctx.model_calls else "offline", events=list(ctx.events),
            retrieval=ctx.retrieval, error=error,
        )


class _Stands(Exception):
    """An edit whose original effect cannot be undone: the reply says what stands instead."""


EDITS_KEPT = 20  # messages whose cart effect an edit can still undo


def _lines(cart: Cart) -> list[list[Any]]:
    return [[ln.handle, ln.variant_id, ln.quantity] for ln in cart.lines]


def _remember_effect(edits: Any, message_id: int, before: Cart, after: Cart) -> dict[str, Any]:
    """The cart before and after a message's turn, kept for the last few messages."""
    kept = dict(edits) if isinstance(edits, dict) else {}
    kept[str(message_id)] = {"before": _lines(before), "after_version": after.version}
    return dict(list(kept.items())[-EDITS_KEPT:])


def _cart_text(ctx: Any) -> str:
    from chatpay.core.agents.cart import cart_text, cart_view

    return cart_text(cart_view(ctx.cart, ctx.catalog)) if ctx.catalog is not None else ""


def _summary(reply: Reply) -> str:
    """What the assistant said, as text for the history (cards listed by name)."""
    parts = [reply.text] if reply.text else []
    if reply.cards:
        parts.append("Shown: " + "; ".join(f"{c.title} ({c.price.format()})" for c in reply.cards))
    return "\n".join(parts)
