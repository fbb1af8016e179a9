"""Eval cases: loading and validating the JSON Lines files of docs/formats.md.

One case per line; blank lines and lines starting with ``#`` are skipped. A bad case
raises :class:`~chatpay.core.errors.InvalidInput` naming the file, the line and the
field, which the CLI turns into exit code 2.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from chatpay.core.errors import InvalidInput
from chatpay.core.orders import STATES as ORDER_STATES
from chatpay.core.turns import INTENTS

Suite = Literal["routing", "retrieval", "conversations"]
SUITES: tuple[Suite, ...] = ("routing", "retrieval", "conversations")
SPECIAL = ("NONE", "ALL")


@dataclass(frozen=True)
class HistoryMessage:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True)
class RoutingCase:
    """One message to route, optionally after a conversation so far."""

    text: str
    intent: str
    history: tuple[HistoryMessage, ...] = ()
    line: int = 0

    @property
    def id(self) -> str:
        """A stable name for the case: its text, and the last user message before it."""
        before = [m.content for m in self.history if m.role == "user"]
        return f"{self.text} ⟵ {before[-1]}" if before else self.text

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text, "intent": self.intent}
        if self.history:
            out["history"] = [{"role": m.role, "content": m.content} for m in self.history]
        return out


@dataclass(frozen=True)
class RetrievalCase:
    """A query and what the enquiry agent should return: keys, ``NONE`` or ``ALL``."""

    query: str
    expected: tuple[str, ...] | Literal["NONE", "ALL"]
    line: int = 0

    @property
    def id(self) -> str:
        return self.query

    @property
    def kind(self) -> Literal["list", "NONE", "ALL"]:
        return self.expected if isinstance(self.expected, str) else "list"

    def to_json(self) -> dict[str, Any]:
        return {"query": self.query, "expected": self.expected if isinstance(self.expected, str) else list(self.expected)}


@dataclass(frozen=True)
class ConversationTurn:
    """One shopper message, or a press of a button of the previous reply, and what to check after it
    (every check optional). ``press`` names the button by a part of its label ("Checkout");
    ``order`` is the state the thread's latest order must be in afterwards ("paid")."""

    user: str
    intent: str | None = None
    cart: dict[str, int] | None = None
    subtotal: str | None = None
    reply_contains: tuple[str, ...] = ()
    press: str | None = None
    order: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"press": self.press} if self.press is not None else {"user": self.user}
        if self.order is not None:
            out["order"] = self.order
        if self.intent is not None:
            out["intent"] = self.intent
        if self.cart is not None:
            out["cart"] = dict(self.cart)
        if self.subtotal is not None:
            out["subtotal"] = self.subtotal
        if self.reply_contains:
            out["reply_contains"] = list(self.reply_contains)
        return out


@dataclass(frozen=True)
class Conversation:
    name: str
    turns: tuple[ConversationTurn, ...]
    line: int = 0

    @property
    def id(self) -> str:
        return self.name

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "turns": [t.to_json() for t in self.turns]}


Case = RoutingCase | RetrievalCase | Conversation


class _Where:
    """Builds errors that name the file, the line and the field."""

    def __init__(self, source: str, line: int) -> None:
        self.source = source
        self.line = line

    def error(self, message: str, field: str | None = None) -> InvalidInput:
        return InvalidInput(message, source=self.source, item=f"line {self.line}", field=field)

    def text(self, obj: dict[str, Any], field: str, *, path: str | None = None) -> str:
        value = obj.get(field)
        if not isinstance(value, str) or not value.strip():
            raise self.error("must be a non-empty string", path or field)
        return value

    def intent(self, obj: dict[str, Any], field: str, *, path: str | None = None) -> str:
        value = obj.get(field)
        if value not in INTENTS:
            raise self.error(f"must be one of {', '.join(INTENTS)}, got {value!r}", path or field)
        return str(value)

    def only(self, obj: dict[str, Any], allowed: Sequence[str], *, prefix: str = "") -> None:
        extra = sorted(set(obj) - set(allowed))
        if extra:
            raise self.error(f"unknown field (expected {', '.join(allowed)})", prefix + extra[0])


def _routing(obj: dict[str, Any], where: _Where) -> RoutingCase:
    where.only(obj, ("text", "intent", "history"))
    history: list[HistoryMessage] = []
    raw = obj.get("history", [])
    if not isinstance(raw, list):
        raise where.error("must be a list of {role, content}", "history")
    for i, msg in enumerate(raw):
        field = f"history[{i}]"
        if not isinstance(msg, dict):
            raise where.error("must be an object with role and content", field)
        where.only(msg, ("role", "content"), prefix=f"{field}.")
        if msg.get("role") not in ("user", "assistant"):
            raise where.error(f"must be 'user' or 'assistant', got {msg.get('role')!r}", f"{field}.role")
        content = msg.get("content")
        if not isinstance(content, str):
            raise where.error("must be a string", f"{field}.content")
        history.append(HistoryMessage(msg["role"], content))
    return RoutingCase(where.text(obj, "text"), where.intent(obj, "intent"), tuple(history), where.line)


def _retrieval(obj: dict[str, Any], where: _Where) -> RetrievalCase:
    where.only(obj, ("query", "expected"))
    query = where.text(obj, "query")
    expected = obj.get("expected")
    if isinstance(expected, str):
        if expected not in SPECIAL:
            raise where.error(f"must be a list of keys, 'NONE' or 'ALL', got {expected!r}", "expected")
        return RetrievalCase(query, expected, where.line)  # type: ignore[arg-type]
    if not isinstance(expected, list) or not expected:
        raise where.error("must be a non-empty list of keys, 'NONE' or 'ALL'", "expected")
    for i, key in enumerate(expected):
        if not isinstance(key, str) or not key.strip():
            raise where.error("must be a product handle or policy:<id>", f"expected[{i}]")
    return RetrievalCase(query, tuple(expected), where.line)


def _conversation(obj: dict[str, Any], where: _Where) -> Conversation:
    where.only(obj, ("name", "turns"))
    name = where.text(obj, "name")
    raw = obj.get("turns")
    if not isinstance(raw, list) or not raw:
        raise where.error("must be a non-empty list of turns", "turns")
    turns = []
    for i, t in enumerate(raw):
        field = f"turns[{i}]"
        if not isinstance(t, dict):
            raise where.error("must be an object with at least 'user'", field)
        where.only(t, ("user", "press", "intent", "cart", "subtotal", "reply_contains", "order"), prefix=f"{field}.")
        if ("user" in t) == ("press" in t):
            raise where.error("needs exactly one of 'user' (a message) and 'press' (a button's label)", field)
        press = where.text(t, "press", path=f"{field}.press") if "press" in t else None
        user = where.text(t, "user", path=f"{field}.user") if "user" in t else ""
        order = t.get("order")
        if order is not None and order not in ORDER_STATES:
            raise where.error(f"must be one of {', '.join(ORDER_STATES)}, got {order!r}", f"{field}.order")
        intent = where.intent(t, "intent", path=f"{field}.intent") if "intent" in t else None
        cart = None
        if "cart" in t:
            cart = t["cart"]
            if not isinstance(cart, dict):
                raise where.error("must be an object of handle to quantity", f"{field}.cart")
            for handle, qty in cart.items():
                if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
                    raise where.error("must be a whole number of at least 1", f"{field}.cart.{handle}")
        subtotal = None
        if "subtotal" in t:
            subtotal = t["subtotal"]
            try:
                if not isinstance(subtotal, str):
                    raise InvalidOperation
                Decimal(subtotal)
            except InvalidOperation:
                raise where.error(f"must be a decimal string such as \"35.50\", got {subtotal!r}",
                                  f"{field}.subtotal") from None
        contains = t.get("reply_contains", [])
        if not isinstance(contains, list) or not all(isinstance(s, str) and s for s in contains):
            raise where.error("must be a list of non-empty strings", f"{field}.reply_contains")
        turns.append(ConversationTurn(user, intent, cart, subtotal, tuple(contains), press, order))
    return Conversation(name, tuple(turns), where.line)


_PARSERS: dict[str, Callable[[dict[str, Any], _Where], Case]] = {"routing": _routing, "retrieval": _retrieval, "conversations": _conversation}


def load_cases(suite: str, path: Path) -> list[Any]:
    """Read and validate the cases of ``suite`` from the JSON Lines file at ``path``.

    Raises:
        InvalidInput: the file is unreadable or empty, a line is not JSON, or a case has a
            missing or malformed field; the message names the file, the line and the field.
    """
    if suite not in _PARSERS:
        raise InvalidInput(f"unknown suite {suite!r} (expected {', '.join(SUITES)})", field="suite")
    source = str(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InvalidInput("no such file", source=source) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read: {exc}", source=source) from exc
    parser = _PARSERS[suite]
    cases: list[Any] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(raw.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = _Where(source, n)
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise where.error(f"not valid JSON ({exc.msg} at column {exc.colno})") from exc
        if not isinstance(obj, dict):
            raise where.error("must be a JSON object")
        case = parser(obj, where)
        if isinstance(case, Conversation):
            if case.id in seen:
                raise where.error(f"duplicate name (first on line {seen[case.id]})", "name")
            seen[case.id] = n
        cases.append(case)
    if not cases:
        raise InvalidInput("holds no cases", source=source)
    return cases


def check_keys(cases: Sequence[Any], known: set[str], *, source: str) -> None:
    """Fail on a retrieval or conversation case that names a product or policy the store lacks.

    Args:
        known: the store's product handles and ``policy:<id>`` keys.
    """
    for case in cases:
        where = _Where(source, case.line)
        if isinstance(case, RetrievalCase) and not isinstance(case.expected, str):
            for i, key in enumerate(case.expected):
                if key not in known:
                    raise where.error(f"{key!r} is not a product handle or policy of this store", f"expected[{i}]")
        elif isinstance(case, Conversation):
            for i, turn in enumerate(case.turns):
                for handle in turn.cart or {}:
                    if handle not in known:
                        raise where.error(f"{handle!r} is not a product handle of this store",
                                          f"turns[{i}].cart.{handle}")
