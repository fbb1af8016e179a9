"""Router decisions and the layered router.

Layers, cheapest first: exact rules (buttons, ``/commands``), context rules (a short
follow-up read against the previous turn), the local classifier, and only when the
classifier is unsure, the chat model with structured output. A request that fits no
intent well enough gets a clarifying question rather than a forced guess.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from chatpay.core.buttons import decode
from chatpay.core.classifier import IntentClassifier
from chatpay.core.errors import ModelError
from chatpay.core.mentions import Delexicalised
from chatpay.core.ports import ChatMessage, ChatModel, ChatRequest
from chatpay.core.text import normalise
from chatpay.core.turns import INTENTS, Message, Turn

log = logging.getLogger(__name__)

Layer = Literal["rule", "context", "classifier", "model", "fallback"]

_CLAUSES = re.compile(r"[.!;]+|,\s+|\bbut\b|\bthen\b")
REQUEST_CLAUSE = 0.9  # a clause this sure of a cart or payment request wins over small talk
CONFIDENT = 0.62  # at or above: the classifier's word stands without a model
CLARIFY_BELOW = 0.34  # offline: below this, ask instead of guessing


@dataclass(frozen=True)
class RouteDecision:
    """The router's choice for one turn and why it made it."""

    intent: str
    confidence: float
    runner_up: str | None = None
    runner_up_confidence: float = 0.0
    reason: str = ""
    layer: Layer = "classifier"
    model_called: bool = False
    would_call_model: bool = False
    clarify: bool = False
    negated: bool = False  # "don't remove the X": the action is read, and not performed

    @classmethod
    def fallback(cls, reason: str) -> RouteDecision:
        return cls("chitchat", 0.0, reason=reason, layer="fallback")

    def as_attrs(self) -> dict[str, Any]:
        return {
            "intent": self.intent,
            "confidence": round(self.confidence, 3),
            "runner_up": self.runner_up,
            "runner_up_confidence": round(self.runner_up_confidence, 3),
            "layer": self.layer,
            "reason": self.reason,
            "model_called": self.model_called,
            "would_call_model": self.would_call_model,
            "clarify": self.clarify,
            "negated": self.negated,
        }


COMMANDS = {
    "/start": "chitchat", "/help": "chitchat", "/cart": "cart_view", "/basket": "cart_view",
    "/checkout": "payments", "/pay": "payments", "/clear": "cart_clear", "/catalog": "enquiry",
    "/products": "enquiry", "/shop": "enquiry", "/orders": "payments", "/paysupport": "payments",
    "/terms": "payments",
}

ROUTER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "intent": {"type": "string", "enum": list(INTENTS)},
        "confidence": {"type": "number"},
    },
    "required": ["intent", "confidence"],
    "additionalProperties": False,
}

ROUTER_PROMPT = (
    "You route messages for a shop's chat assistant. Choose the shopper's intent:\n"
    "enquiry: asks about products, prices, stock, recommendations or store policies (shipping, returns, "
    "payment methods).\ncart_add: wants something added to the cart or a quantity raised/set.\n"
    "cart_remove: wants something taken out or fewer.\ncart_view: wants to see the cart or its total.\n"
    "cart_clear: wants the whole cart emptied.\npayments: wants to check out/pay or asks about their payment.\n"
    "chitchat: greetings, thanks, small talk or off-topic.\n"
    "Product names are replaced by PRODUCT. Answer with JSON only."
)


def command_of(text: str) -> str:
    """The bot command a message starts with ("/orders@shop_bot 2" is "/orders"), or ""."""
    text = text.strip()
    return text.split()[0].split("@")[0].lower() if text.startswith("/") else ""


class IntentModel(Protocol):
    """A local intent classifier: every intent with its probability, best first."""

    def predict(self, text: str) -> list[tuple[str, float]]: ...


class Router:
    """Routes a turn through rules, context, the local classifier and (optionally) a model."""

    def __init__(self, classifier: IntentClassifier | IntentModel, model: ChatModel | None = None) -> None:
        self.classifier = classifier
        self.model = model

    def rule(self, turn: Turn) -> RouteDecision | None:
        if turn.payment is not None:
            return RouteDecision("payments", 1.0, reason=f"payment update: {turn.payment.kind}", layer="rule")
        if turn.callback_data:
            action = decode(turn.callback_data)
            if action is not None:
                return RouteDecision(action.intent, 1.0, reason=f"button {action.kind}", layer="rule")
            return RouteDecision("chitchat", 1.0, reason="a button this version does not send", layer="rule")
        text = turn.text.strip()
        command = command_of(text)
        if command:
            if command in COMMANDS:
                return RouteDecision(COMMANDS[command], 1.0, reason=f"command {command}", layer="rule")
        if not normalise(text):
            return RouteDecision("chitchat", 1.0, reason="empty or emoji-only message", layer="rule")
        return None

    async def route(self, turn: Turn, delex: Delexicalised, history: Sequence[Message]) -> RouteDecision:
        ruled = self.rule(turn)
        if ruled is not None:
            return ruled
        scores = self.classifier.predict(delex.text)
        (best, p1), (second, p2) = scores[0], scores[1]
        decision = RouteDecision(
            best, p1, second, p2, reason=f"classifier on {delex.text!r}", layer="classifier",
        )
        if best == "chitchat":
            # Small talk must not swallow a clear request: "ignore that, it's free now. checkout".
            clause = self._clear_request(delex.original)
            if clause is not None:
                intent, p, text = clause
                decision = RouteDecision(intent, p, best, p1, reason=f"clause {text!r} of {delex.text!r}",
                                         layer="classifier")
        if p1 >= CONFIDENT:
            return decision
        decision = replace(decision, would_call_model=True)
        if self.model is not None:
            try:
                return await self._ask_model(turn, delex, history, decision)
            except ModelError as exc:
                log.warning("router model failed; keeping the classifier's answer", extra={"error": repr(exc)})
        if p1 < CLARIFY_BELOW:
            return replace(decision, clarify=True, reason=f"{decision.reason}; unsure ({p1:.2f})")
        return decision

    def _clear_request(self, text: str) -> tuple[str, float, str] | None:
        clauses = [c.strip() for c in _CLAUSES.split(text) if len(c.strip()) > 1]
        if len(clauses) < 2:
            return None
        found = []
        for clause in clauses:
            intent, p = self.classifier.predict(clause)[0]
            # a question about the shop's goods counts too: "hey, setting up my first tank. what do
            # you have for that?" asks for products after the greeting
            asks = intent != "enquiry" or "?" in clause
            if intent != "chitchat" and asks and p >= REQUEST_CLAUSE:
                found.append((intent, p, clause))
        return found[-1] if found else None

    async def _ask_model(
        self, turn: Turn, delex: Delexicalised, history: Sequence[Message], decision: RouteDecision
    ) -> RouteDecision:
        assert self.model is not None
        convo = "\n".join(f"{m.role}: {m.content[:200]}" for m in list(history)[-4:])
        request = ChatRequest(
            messages=(
                ChatMessage("system", ROUTER_PROMPT),
                ChatMessage("user", f"Conversation so far:\n{convo or '(none)'}\n\nMessage: {delex.text}"),
            ),
            json_schema=ROUTER_SCHEMA,
            schema_name="route",
            max_tokens=40,
        )
        response = await self.model.complete(request)
        parsed = response.parsed
        if not isinstance(parsed, dict):
            try:
                parsed = json.loads(response.text)
            except ValueError as exc:
                raise ModelError(f"router model answered no JSON: {response.text[:80]!r}") from exc
        if not isinstance(parsed, dict):
            raise ModelError(f"router model answered {type(parsed).__name__}, not an object")
        intent = parsed.get("intent")
        if intent not in INTENTS:
            raise ModelError(f"router model answered an unknown intent: {intent!r}")
        try:
            confidence = float(parsed.get("confidence", 0.7))
        except (TypeError, ValueError):
            confidence = 0.7
        runner_up = decision.intent if decision.intent != intent else decision.runner_up
        return replace(
            decision, intent=intent, confidence=max(0.0, min(confidence, 1.0)), runner_up=runner_up,
            layer="model", model_called=True,
            reason=f"model chose {intent}; classifier said {decision.intent} ({decision.confidence:.2f})",
        )
