"""The three suites: routing, retrieval and conversations, run turn by turn on a runtime.

Each runner takes validated cases and a prepared runtime (see
:mod:`chatpay.evaluation.harness`), runs every case on a thread of its own, and returns
the JSON summary of docs/formats.md plus ``model_share`` (the share of evaluated turns whose
router would call a model in LLM mode) and suite-specific extras.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from chatpay.core.presenter import to_plain
from chatpay.core.routing import RouteDecision
from chatpay.core.turns import INTENTS, Message
from chatpay.evaluation import metrics
from chatpay.evaluation.cases import Conversation, ConversationTurn, RetrievalCase, RoutingCase
from chatpay.evaluation.cassette import CassetteChatModel

Tick = Callable[[], None]
CLARIFY = "clarify"
RANKED_SHOWN = 8  # keys kept per retrieval failure


def outcome(decision: RouteDecision) -> str:
    """What the shopper experiences: the routed intent, or ``clarify`` when asked to rephrase."""
    return CLARIFY if decision.clarify else decision.intent


class SuiteRun:
    """Shared bookkeeping of one suite run: turns, usage, model share, cassette misses."""

    def __init__(self, suite: str, runtime: Any, cassette: CassetteChatModel | None, tick: Tick | None) -> None:
        self.suite = suite
        self.runtime = runtime
        self.cassette = cassette
        self.tick = tick or (lambda: None)
        self.usage: list[Any] = []
        self.evaluated = 0
        self.would_call = 0
        self.started = time.perf_counter()
        self._threads = 0

    def thread(self) -> str:
        self._threads += 1
        return f"eval-{self.suite}-{self._threads}"

    async def turn(self, text: str, thread: str, *, evaluated: bool = True, intent: str | None = None,
                   callback_data: str | None = None) -> Any:
        turn = (self.runtime.turn(text, thread_id=thread, callback_data=callback_data) if callback_data is not None
                else self.runtime.turn(text, thread_id=thread))
        result = await self.runtime.service.handle(turn, intent=intent)
        self.usage.extend(result.usage)
        if self.cassette is not None and self.cassette.misses:
            raise self.cassette.misses[0]
        if evaluated:
            self.evaluated += 1
            self.would_call += bool(result.decision.would_call_model or result.decision.model_called)
        return result

    async def said(self, text: str, thread: str) -> None:
        """Record what the case says the assistant answered, after the engine's own reply.

        History user turns run for real (so products shown and carts are real), then the case's
        assistant message becomes the latest one the router reads ("Shall I empty your cart?").
        """
        stores = getattr(self.runtime, "stores", None)
        if stores is None:
            return
        business = self.runtime.turn("", thread_id=thread).business_id
        await stores.conversations.append(business, thread, Message("assistant", text))

    def summary(self, cases: int, failures: list[dict[str, Any]], **scores: Any) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "cases": cases,
            "engine": self.runtime.engine_name,
            **metrics.usage_totals(self.usage),
            "seconds": round(time.perf_counter() - self.started, 3),
            "failures": failures,
            **scores,
            "model_share": metrics.rate(self.would_call, self.evaluated),
            "turns_run": self.evaluated,
        }


def _decision(d: RouteDecision) -> dict[str, Any]:
    return {"intent": outcome(d), "confidence": round(d.confidence, 3), "layer": d.layer, "reason": d.reason}


async def run_routing(
    cases: Sequence[RoutingCase], runtime: Any, *, cassette: CassetteChatModel | None = None, tick: Tick | None = None
) -> dict[str, Any]:
    """Route every case; a case with history first replays it (user turns run, assistant text recorded)."""
    run = SuiteRun("routing", runtime, cassette, tick)
    pairs: list[tuple[str, str]] = []
    confidences: list[tuple[float, bool]] = []
    failures: list[dict[str, Any]] = []
    for case in cases:
        thread = run.thread()
        for msg in case.history:
            if msg.role == "user":
                await run.turn(msg.content, thread, evaluated=False)
            else:
                await run.said(msg.content, thread)
        result = await run.turn(case.text, thread)
        got = outcome(result.decision)
        pairs.append((case.intent, got))
        confidences.append((result.decision.confidence, got == case.intent))
        if got != case.intent:
            failures.append({"case": case.to_json(), "got": _decision(result.decision), "id": case.id})
        run.tick()
    labels = list(INTENTS) + ([CLARIFY] if any(g == CLARIFY for _, g in pairs) else [])
    matrix = metrics.confusion(pairs, labels)
    matrix.pop(CLARIFY, None)  # clarify is an outcome, never an expected label
    right = sum(1 for e, g in pairs if e == g)
    return run.summary(
        len(cases), failures,
        accuracy=metrics.rate(right, len(pairs)),
        per_intent=metrics.per_intent(matrix),
        confusion=matrix,
        confidence_histogram=metrics.confidence_histogram(confidences),
    )


def _ranked(retrieval: Any) -> list[str]:
    return list(retrieval.ranked_keys()) if retrieval is not None else []


async def run_retrieval(
    cases: Sequence[RetrievalCase], runtime: Any, *, cassette: CassetteChatModel | None = None,
    tick: Tick | None = None, through_router: bool = False,
) -> dict[str, Any]:
    """Score what the enquiry agent returns for each query, on a fresh thread each.

    The contract scores the enquiry agent, so each query goes to it directly; with
    ``through_router`` the router decides first (a diagnostic of the whole turn).
    """
    # The routed run gets threads of its own: on the direct run's threads each query would be the
    # second turn of a conversation that already asked it.
    run = SuiteRun("retrieval-routed" if through_router else "retrieval", runtime, cassette, tick)
    catalog = await runtime.catalog()
    store_size = len(catalog) if catalog is not None else 0
    hits1: list[bool] = []
    hits3: list[bool] = []
    rr: list[float] = []
    ndcg: list[float] = []
    abstain: list[bool] = []
    overview: list[bool] = []
    routed = 0
    failures: list[dict[str, Any]] = []
    for case in cases:
        result = await run.turn(case.query, run.thread(), intent=None if through_router else "enquiry")
        r = result.retrieval
        kind = getattr(r, "kind", None)
        ranked = _ranked(r)
        products = len(getattr(r, "products", ()) or ())
        routed += r is not None
        if case.kind == "NONE":
            ok = kind == "none"
            abstain.append(ok)
        elif case.kind == "ALL":
            ok = kind == "overview" and products >= min(3, store_size)
            overview.append(ok)
        else:
            expected = list(case.expected)
            h1, h3 = metrics.hit_at(ranked, expected, 1), metrics.hit_at(ranked, expected, 3)
            hits1.append(h1)
            hits3.append(h3)
            rr.append(metrics.reciprocal_rank(ranked, expected))
            ndcg.append(metrics.ndcg_at(ranked, expected, 3))
            ok = h1
        if not ok:
            got = {"intent": outcome(result.decision), "kind": kind, "ranked": ranked[:RANKED_SHOWN],
                   "products": products}
            failures.append({"case": case.to_json(), "got": got, "id": case.id})
        run.tick()
    return run.summary(
        len(cases), failures,
        hit_at_1=metrics.rate(sum(hits1), len(hits1)),
        hit_at_3=metrics.rate(sum(hits3), len(hits3)),
        mrr=metrics.mean(rr),
        ndcg_at_3=metrics.mean(ndcg),
        abstain_accuracy=metrics.rate(sum(abstain), len(abstain)),
        all_accuracy=metrics.rate(sum(overview), len(overview)),
        retrieval_ran=metrics.rate(routed, len(cases)),
        list_cases=len(hits1), none_cases=len(abstain), all_cases=len(overview),
    )


def reply_haystack(result: Any) -> str:
    """What the shopper reads: the reply text, card titles and the cart's text, lower-cased."""
    from chatpay.core.agents.cart import cart_text

    reply = result.reply
    parts = [to_plain(reply.text)]
    parts.extend(c.title for c in reply.cards)
    if reply.cart is not None:
        parts.append(to_plain(cart_text(reply.cart)))
    return "\n".join(parts).lower()


def check_turn(expected: ConversationTurn, result: Any) -> tuple[list[str], dict[str, Any]]:
    """The problems with one conversation turn, and what the engine did."""
    catalog = result.catalog
    cart = result.cart.quantities()
    subtotal = result.cart.subtotal(catalog).amount_str() if catalog is not None else None
    problems: list[str] = []
    intent = outcome(result.decision)
    if expected.intent is not None and intent != expected.intent:
        problems.append(f"intent {intent} instead of {expected.intent}")
    if expected.cart is not None and cart != expected.cart:
        problems.append(f"cart {cart} instead of {expected.cart}")
    if expected.subtotal is not None and (subtotal is None or Decimal(subtotal) != Decimal(expected.subtotal)):
        problems.append(f"subtotal {subtotal} instead of {expected.subtotal}")
    hay = reply_haystack(result)
    for wanted in expected.reply_contains:
        if wanted.lower() not in hay:
            problems.append(f"reply lacks {wanted!r}")
    if result.error:
        problems.append(f"turn failed: {result.error}")
    got = {"user": expected.user or f"[press] {expected.press}", "intent": intent, "cart": cart, "subtotal": subtotal,
           "reply": to_plain(result.reply.text)[:400]}
    return problems, got


async def run_conversations(
    cases: Sequence[Conversation], runtime: Any, *, cassette: CassetteChatModel | None = None,
    tick: Tick | None = None,
) -> dict[str, Any]:
    """Run each conversation on a fresh thread, checking every turn; later turns run after a failure."""
    run = SuiteRun("conversations", runtime, cassette, tick)
    turns = passed_turns = passed = destructive = 0
    failures: list[dict[str, Any]] = []
    for convo in cases:
        thread = run.thread()
        bad: list[dict[str, Any]] = []
        before: dict[str, int] = {}
        last: Any = None
        for i, expected in enumerate(convo.turns):
            pressed: list[str] = []
            if expected.press is not None:
                data = button_data(last, expected.press)
                if data is None:
                    pressed = [f"no button {expected.press!r} in the previous reply"]
                result = await run.turn("", thread, callback_data=data or "")
            else:
                result = await run.turn(expected.user, thread)
            last = result
            problems, got = check_turn(expected, result)
            problems = pressed + problems + await order_problems(expected, result, runtime)
            after = dict(result.cart.quantities())
            asked_to_empty = expected.intent == "cart_clear" and outcome(result.decision) == "cart_clear"
            if not asked_to_empty and is_destructive(expected.cart, before, after):
                destructive += 1
                problems = [*problems, "destructive: the cart lost what the shopper did not ask to remove"]
            before = after
            turns += 1
            if problems:
                bad.append({"turn": i, **got, "problems": problems})
            else:
                passed_turns += 1
        if bad:
            failures.append({"case": convo.to_json(), "got": bad, "id": convo.id})
        else:
            passed += 1
        run.tick()
    return run.summary(
        len(cases), failures,
        conversations_passed=passed,
        conversation_rate=metrics.rate(passed, len(cases)),
        turns=turns,
        turns_passed=passed_turns,
        turn_accuracy=metrics.rate(passed_turns, turns),
        destructive_errors=destructive,
    )


def button_data(result: Any, label: str) -> str | None:
    """The callback data of the previous reply's button whose label contains ``label``."""
    if result is None:
        return None
    rows = [*result.reply.buttons, *(c.buttons for c in result.reply.cards)]
    for row in rows:
        for button in row:
            if label.lower() in button.label.lower() and button.data:
                return str(button.data)
    return None


async def order_problems(expected: ConversationTurn, result: Any, runtime: Any) -> list[str]:
    """Whether the thread's latest order is in the state the case expects."""
    orders = getattr(getattr(runtime, "stores", None), "orders", None)
    if expected.order is None or orders is None:
        return []
    found = await orders.list(result.turn.business_id, thread_id=result.turn.thread_id, limit=1)
    state = found[0].state if found else "none"
    return [] if state == expected.order else [f"order {state} instead of {expected.order}"]


def is_destructive(expected: Any, before: dict[str, int], after: dict[str, int]) -> bool:
    """The turn took away a line, or some of one, that the case says should still be there.

    Per line the case expects: the cart now holds less of it than expected, and less than it
    held before the turn (a line the engine never added is a miss, not a destruction). The runner
    does not call it for a turn where the shopper asked to empty the cart and the engine read that:
    what that turn removes was asked for (a one-line cart, emptied without the question a case
    with more lines expects, is no harm).
    """
    if expected is None:
        return False
    return any(after.get(h, 0) < want and after.get(h, 0) < before.get(h, 0) for h, want in expected.items())


RUNNERS = {"routing": run_routing, "retrieval": run_retrieval, "conversations": run_conversations}


async def run_suite(
    suite: str, cases: Sequence[Any], runtime: Any, *, cassette: CassetteChatModel | None = None,
    tick: Tick | None = None,
) -> dict[str, Any]:
    """Run one suite's cases on ``runtime`` and return its JSON summary."""
    return await RUNNERS[suite](cases, runtime, cassette=cassette, tick=tick)  # type: ignore[operator]
