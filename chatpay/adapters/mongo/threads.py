"""Per-thread documents: conversations (bounded messages + state) and carts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from chatpay.adapters.mongo._base import CARTS, CONVERSATIONS, Runner, now_utc, plain_json, to_utc, upsert
from chatpay.core.cart import Cart, CartLine
from chatpay.core.errors import ConcurrencyConflict, InvalidInput
from chatpay.core.turns import Message

MAX_MESSAGES = 50


def message_doc(m: Message) -> dict[str, Any]:
    return {"role": m.role, "content": m.content, "turn_id": m.turn_id, "intent": m.intent, "at": m.at}


def message_from_doc(doc: Mapping[str, Any]) -> Message:
    return Message(
        role=doc["role"],
        content=doc["content"],
        turn_id=doc.get("turn_id", ""),
        intent=doc.get("intent"),
        at=to_utc(doc.get("at")),
    )


def _state_key(key: object) -> str:
    if not isinstance(key, str) or not key or "." in key or key.startswith("$"):
        raise InvalidInput(
            "a state key must be a non-empty string without '.' and not starting with '$'",
            field=repr(key),
        )
    return key


class MongoConversationStore:
    """:class:`~chatpay.core.ports.ConversationStore`: one document per (business, thread).

    Messages are kept bounded by ``$push`` with ``$each``/``$slice``; the state is a
    sub-document whose keys ``update_state`` sets one by one (``$set`` on ``state.<key>``).
    Datetimes are stored at MongoDB's millisecond precision and read back in UTC.
    """

    def __init__(self, db: Database[Any], run: Runner, *, max_messages: int = MAX_MESSAGES) -> None:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        self._col = db[CONVERSATIONS]
        self._run = run
        self.max_messages = max_messages

    async def append(self, business_id: str, thread_id: str, message: Message) -> None:
        await self._run("conversation append", self._append, business_id, thread_id, message)

    async def recent(self, business_id: str, thread_id: str, limit: int = 20) -> list[Message]:
        return await self._run("conversation recent", self._recent, business_id, thread_id, limit)

    async def get_state(self, business_id: str, thread_id: str) -> dict[str, Any]:
        return await self._run("conversation get_state", self._get_state, business_id, thread_id)

    async def update_state(self, business_id: str, thread_id: str, changes: Mapping[str, Any]) -> None:
        sets = {f"state.{_state_key(k)}": v for k, v in plain_json(changes).items()}
        if sets:
            await self._run("conversation update_state", self._update, business_id, thread_id, sets)

    async def clear(self, business_id: str, thread_id: str) -> None:
        await self._run("conversation clear", self._clear, business_id, thread_id)

    # ------------------------------------------------------------------ blocking work

    def _append(self, business_id: str, thread_id: str, message: Message) -> None:
        upsert(
            self._col,
            {"business_id": business_id, "thread_id": thread_id},
            {
                "$push": {"messages": {"$each": [message_doc(message)], "$slice": -self.max_messages}},
                "$set": {"updated_at": now_utc()},
            },
        )

    def _recent(self, business_id: str, thread_id: str, limit: int) -> list[Message]:
        if limit <= 0:
            return []
        doc = self._col.find_one({"business_id": business_id, "thread_id": thread_id}, {"messages": 1})
        docs = (doc or {}).get("messages", [])
        return [message_from_doc(d) for d in docs[-limit:]]

    def _get_state(self, business_id: str, thread_id: str) -> dict[str, Any]:
        doc = self._col.find_one({"business_id": business_id, "thread_id": thread_id}, {"state": 1})
        return dict((doc or {}).get("state", {}))

    def _update(self, business_id: str, thread_id: str, sets: dict[str, Any]) -> None:
        upsert(
            self._col,
            {"business_id": business_id, "thread_id": thread_id},
            {"$set": {**sets, "updated_at": now_utc()}},
        )

    def _clear(self, business_id: str, thread_id: str) -> None:
        self._col.delete_one({"business_id": business_id, "thread_id": thread_id})


class MongoCartStore:
    """:class:`~chatpay.core.ports.CartStore`: one document per (business, thread) with a version.

    ``save`` is one atomic conditional write on the expected version (an insert for a
    first save), so two writers from the same version cannot both win.
    """

    def __init__(self, db: Database[Any], run: Runner) -> None:
        self._col = db[CARTS]
        self._run = run

    async def get(self, business_id: str, thread_id: str) -> Cart:
        return await self._run("cart get", self._get, business_id, thread_id)

    async def save(self, cart: Cart) -> Cart:
        return await self._run("cart save", self._save, cart)

    def _get(self, business_id: str, thread_id: str) -> Cart:
        doc = self._col.find_one({"business_id": business_id, "thread_id": thread_id})
        if doc is None:
            return Cart(business_id, thread_id)
        lines = tuple(CartLine(ln["handle"], ln["variant_id"], int(ln["quantity"])) for ln in doc["lines"])
        return Cart(business_id, thread_id, lines, int(doc["version"]))

    def _save(self, cart: Cart) -> Cart:
        lines = [{"handle": ln.handle, "variant_id": ln.variant_id, "quantity": ln.quantity} for ln in cart.lines]
        what = f"cart {cart.thread_id}"
        if cart.version == 0:
            try:
                self._col.insert_one(
                    {
                        "business_id": cart.business_id,
                        "thread_id": cart.thread_id,
                        "version": 1,
                        "lines": lines,
                        "updated_at": now_utc(),
                    }
                )
            except DuplicateKeyError as exc:
                raise ConcurrencyConflict(what, cart.version) from exc
        else:
            result = self._col.update_one(
                {"business_id": cart.business_id, "thread_id": cart.thread_id, "version": cart.version},
                {"$set": {"lines": lines, "updated_at": now_utc()}, "$inc": {"version": 1}},
            )
            if result.matched_count == 0:
                raise ConcurrencyConflict(what, cart.version)
        return replace(cart, version=cart.version + 1)
