"""Normalised transcripts of conversations, for the golden-transcript snapshots.

A transcript keeps what a shopper and a reviewer would notice change: each reply as the
Telegram presenter renders it (methods and parameters, without the chat id), the routing
decision (intent, layer, clarify), the cart after the turn, and the trace's shape (span
names, nesting and attribute names) with no timings, ids or scores.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from chatpay.evaluation.cases import Conversation

_SLUG = re.compile(r"[^a-z0-9]+")


def slug(name: str) -> str:
    """A file-safe name: ``"add that, then make it two"`` → ``add-that-then-make-it-two``."""
    return _SLUG.sub("-", name.lower()).strip("-")[:80] or "conversation"


def trace_shape(span: dict[str, Any]) -> dict[str, Any]:
    """A span tree with names and attribute names only."""
    out: dict[str, Any] = {"name": span["name"]}
    if span.get("attrs"):
        out["attrs"] = sorted(span["attrs"])
    if span.get("children"):
        out["children"] = [trace_shape(c) for c in span["children"]]
    return out


def _rendered(runtime: Any, reply: Any) -> list[dict[str, Any]]:
    out = []
    for message in runtime.presenter.render("chat", reply):
        params = {k: v for k, v in message.params.items() if k != "chat_id"}
        out.append({"method": message.method, "params": params})
    return out


def normalise(runtime: Any, result: Any) -> dict[str, Any]:
    """One turn's result as plain, stable JSON."""
    catalog = result.catalog
    d = result.decision
    entry: dict[str, Any] = {
        "user": result.turn.text,
        "decision": {"intent": d.intent, "layer": d.layer, "clarify": d.clarify},
        "telegram": _rendered(runtime, result.reply),
        "cart": result.cart.quantities(),
        "subtotal": result.cart.subtotal(catalog).amount_str() if catalog is not None else None,
        "trace": trace_shape(result.trace.to_dict(timings=False)),
    }
    if result.error:
        entry["error"] = result.error
    return entry


async def transcript(runtime: Any, conversation: Conversation, *, thread: str | None = None) -> dict[str, Any]:
    """Run ``conversation`` on a fresh thread and return its normalised transcript."""
    thread_id = thread or f"golden-{slug(conversation.name)}"
    turns = []
    last: Any = None
    for t in conversation.turns:
        if t.press is not None:
            from chatpay.evaluation.suites import button_data

            turn = runtime.turn("", thread_id=thread_id, callback_data=button_data(last, t.press) or "")
        else:
            turn = runtime.turn(t.user, thread_id=thread_id)
        last = await runtime.service.handle(turn)
        turns.append(normalise(runtime, last))
    return {"name": conversation.name, "turns": turns}


async def transcripts(runtime: Any, conversations: Sequence[Conversation]) -> dict[str, dict[str, Any]]:
    """Transcripts of every conversation, by name."""
    return {c.name: await transcript(runtime, c) for c in conversations}
