"""One turn's writes, held back and journalled in MongoDB with its outcome, then applied once.

A worker can be killed at any instant. If a turn wrote its cart and conversation as it went,
a kill between those writes and the recorded outcome would leave effects that a redelivery
applies a second time. Redis solves this with one Lua script (:mod:`chatpay.adapters.redis.staging`);
MongoDB offers no such script, and mongomock (our embedded store) no transactions, so here the
atomic step is a single-document write:

1. The turn runs against :class:`MongoStagedTurn`'s stores: reads go to MongoDB, writes (cart
   saves, messages, state, clears, events, usage, orders) are staged in memory.
2. :meth:`MongoStagedTurn.commit` checks that every cart and order it changed is still as the
   turn read it (otherwise :class:`~chatpay.core.errors.ConcurrencyConflict`, nothing written),
   then writes the update's ``turns`` document once, with the outcome and the list of staged
   writes (the *journal*). That write is the commit point: the update's unique
   ``(business_id, update_id)`` index lets exactly one run make it; a later one is told
   ``duplicate`` and replays the recorded outcome.
3. It then applies the journal's writes one by one, each idempotent, and marks the journal
   ``applied``. Each write is stamped with the journal id ``<business>:<update id>``: carts,
   conversations and orders keep the ids of the journals applied to them (the last
   :data:`JOURNALS_KEPT`), and each event and usage record is inserted under an ``_id`` chosen
   when it was staged and kept in the journal, so a second attempt at any write changes nothing.
4. A worker that dies in step 3 leaves a ``pending`` journal. Whoever next asks for that
   update's outcome (:meth:`MongoJournal.outcome`, i.e. the redelivery) applies the rest first;
   the turn is never run again.

The journal lives in the ``turns`` document of its update, beside the claim and the send
progress that :meth:`MongoJournal.record_outcome` keeps, so one document (with the 48 h TTL
index on ``claimed_at`` that claims already have) says everything about an update.

Conflicts after the commit point cannot be undone without transactions. The worker's per-user
lanes keep two turns of one thread from running at once, and a ``duplicate`` commit is followed by
:meth:`MongoJournal.outcome`, which finishes the winner's journal before the lane moves on; so a
cart or order cannot change between the check in step 2 and its write in step 3 except by a writer
outside the turns (the order sweep, the USDC poller, the merchant's CLI). Such a change is never
overwritten: the journalled write is skipped, logged and listed in the journal's ``conflicts``.

Usage records are made by the engine's :class:`~chatpay.core.metering.UsageMeter`, not through
the turn's stores; :class:`TurnUsageLog` routes the records made inside
:meth:`MongoStagedTurn.active` into that turn's journal.
"""

from __future__ import annotations

import contextvars
import copy
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from bson import ObjectId
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from chatpay.adapters.mongo._base import (
    CARTS,
    CONVERSATIONS,
    EVENTS,
    ORDERS,
    TURNS,
    USAGE,
    Runner,
    now_utc,
    plain_json,
)
from chatpay.adapters.mongo.logs import MongoTurnStore, _stamp, encode_cost
from chatpay.adapters.mongo.orders import MongoOrderStore
from chatpay.adapters.mongo.threads import MAX_MESSAGES, _state_key, message_doc
from chatpay.adapters.staged import Key, ReadThrough, StagedCarts, StagedConversations, StagedWrites
from chatpay.core.errors import ConcurrencyConflict, DuplicatePayment, StorageError
from chatpay.core.metering import UsageMeter
from chatpay.core.orders import Order
from chatpay.core.ports import OrderStore, Stores, UsageLog
from chatpay.core.telemetry import Event, UsageRecord

log = logging.getLogger(__name__)

CommitStatus = Literal["committed", "duplicate"]

JOURNALS_KEPT = 50
"""Journal ids a cart, conversation or order remembers, newest last: enough to recognise a
journal applied before, even after the thread has moved on by many turns."""


# ``list`` is a method name below; these keep the builtin usable in annotations.
EventList = list[Event]
UsageList = list[UsageRecord]
OrderList = list[Order]


def journal_id(business_id: str, update_id: int) -> str:
    """The id a journal stamps on everything it writes: one per (business, Telegram update)."""
    return f"{business_id}:{update_id}"


def _event_doc(event: Event) -> dict[str, Any]:
    """The event as :class:`~chatpay.adapters.mongo.logs.MongoEventLog` stores it, with its ``_id`` fixed now."""
    doc = {"_id": ObjectId(), "business_id": event.business_id, "thread_id": event.thread_id,
           "turn_id": event.turn_id, "name": event.name, "data": dict(event.data)}
    return _stamp(doc, event.at)


def _usage_doc(record: UsageRecord) -> dict[str, Any]:
    """The record as :class:`~chatpay.adapters.mongo.logs.MongoUsageLog` stores it, with its ``_id`` fixed now."""
    doc = {
        "_id": ObjectId(), "business_id": record.business_id, "thread_id": record.thread_id,
        "turn_id": record.turn_id, "agent": record.agent, "kind": record.kind, "model": record.model,
        "engine": record.engine, "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens, "total_tokens": record.total_tokens,
        "cost_usd": encode_cost(record.cost_usd), "latency_ms": float(record.latency_ms),
    }
    return _stamp(doc, record.at)


def _mark(journal: str) -> dict[str, Any]:
    """The ``$push`` that remembers ``journal`` on a document, keeping the newest few."""
    return {"$each": [journal], "$slice": -JOURNALS_KEPT}


# --------------------------------------------------------------------------- the journal


class MongoJournal:
    """The :class:`~chatpay.core.ports.TurnStore` on MongoDB that also commits and recovers turn journals.

    Claims and send progress are :class:`~chatpay.adapters.mongo.logs.MongoTurnStore`'s, on the
    same documents. :meth:`outcome` applies a journal left ``pending`` before it answers, so an
    outcome handed out always has its effects in place: a worker that replays it never runs the
    turn, and never replays a reply whose cart change is missing.

    Its indexes are ensured when it is made, as :func:`~chatpay.adapters.mongo.mongo_stores` does.

    Args:
        db: the database the turn's stores use (PyMongo, or mongomock).
        offload: run blocking calls in a thread, as :func:`~chatpay.adapters.mongo.mongo_stores`
            does for a real server.
    """

    def __init__(self, db: Database[Any], *, offload: bool = False) -> None:
        from chatpay.adapters.mongo import ensure_indexes

        ensure_indexes(db)  # the unique update index is what makes a journal (and a claim) happen once
        self._db = db
        self._run = Runner(offload=offload)
        self._col = db[TURNS]
        self._turns = MongoTurnStore(db, self._run)

    # ------------------------------------------------------------------ TurnStore

    async def claim(self, business_id: str, update_id: int, turn_id: str) -> bool:
        return await self._turns.claim(business_id, update_id, turn_id)

    async def record_outcome(self, business_id: str, update_id: int, outcome: Mapping[str, Any]) -> None:
        """Record ``outcome`` (e.g. how many replies were sent); the journal, if any, is kept."""
        await self._turns.record_outcome(business_id, update_id, outcome)

    async def outcome(self, business_id: str, update_id: int) -> dict[str, Any] | None:
        """The update's recorded outcome, after applying whatever of its journal is not applied yet."""
        return await self.recover(business_id, update_id)

    # ------------------------------------------------------------------ journals

    async def recover(self, business_id: str, update_id: int) -> dict[str, Any] | None:
        """Finish a committed journal a dead worker left ``pending``; returns the outcome to replay.

        None when the update has no outcome: its turn never committed and may simply run again.
        Applying twice is harmless, so two workers may recover one update at once.
        """
        return await self._run("turn journal recover", self._recover, business_id, update_id)

    def stage(self, base: Stores, *, meter: UsageMeter | None = None) -> MongoStagedTurn:
        """Stores for one turn whose writes wait for :meth:`MongoStagedTurn.commit` (see there)."""
        return MongoStagedTurn(self, base, meter=meter)

    async def commit(self, business_id: str, update_id: int, ops: list[dict[str, Any]],
                     outcome: Mapping[str, Any]) -> CommitStatus:
        """Journal ``ops`` with ``outcome`` and apply them; see :meth:`MongoStagedTurn.commit`."""
        return await self._run("turn commit", self._commit, business_id, update_id, ops, plain_json(outcome))

    # ------------------------------------------------------------------ blocking work

    def _committed(self, business_id: str, update_id: int) -> bool:
        doc = self._col.find_one({"business_id": business_id, "update_id": update_id}, {"outcome": 1})
        return doc is not None and doc.get("outcome") is not None

    def _commit(self, business_id: str, update_id: int, ops: list[dict[str, Any]],
                outcome: dict[str, Any]) -> CommitStatus:
        if self._committed(business_id, update_id):
            return "duplicate"
        problem = self._precheck(ops)
        if problem is not None:
            # A run of this same update that committed first has moved the cart on: replay it.
            if self._committed(business_id, update_id):
                return "duplicate"
            raise ConcurrencyConflict(problem, -1)
        now = now_utc()
        try:
            # The commit point: one single-document write. A claim without an outcome is
            # completed; any recorded outcome makes the filter miss and the upsert collide
            # with the unique (business_id, update_id) index.
            self._col.update_one(
                {"business_id": business_id, "update_id": update_id, "outcome": None},
                {"$set": {"outcome": outcome, "outcome_at": now,
                          "journal": {"state": "pending", "ops": ops, "committed_at": now}},
                 "$setOnInsert": {"claimed": True, "claimed_at": now}},
                upsert=True,
            )
        except DuplicateKeyError:
            return "duplicate"
        self._apply(business_id, update_id, ops)
        return "committed"

    def _recover(self, business_id: str, update_id: int) -> dict[str, Any] | None:
        doc = self._col.find_one({"business_id": business_id, "update_id": update_id},
                                 {"outcome": 1, "journal": 1})
        if doc is None or doc.get("outcome") is None:
            return None
        journal = doc.get("journal") or {}
        if journal.get("state") == "pending":
            log.warning("applying the journal of a turn cut short",
                        extra={"business_id": business_id, "update_id": update_id})
            self._apply(business_id, update_id, list(journal.get("ops") or []))
        return copy.deepcopy(dict(doc["outcome"]))

    def _precheck(self, ops: list[dict[str, Any]]) -> str | None:
        """Why the journal may not be written: a cart or order changed since the turn read it."""
        for op in ops:
            if op["op"] == "cart":
                doc = self._db[CARTS].find_one({"business_id": op["business_id"], "thread_id": op["thread_id"]},
                                               {"version": 1})
                current = int(doc["version"]) if doc is not None else 0
                if current != op["expected"]:
                    return f"cart {op['thread_id']} changed during the turn"
            elif op["op"] == "order_update":
                doc = self._db[ORDERS].find_one({"business_id": op["business_id"], "id": op["order_id"]},
                                                {"state": 1})
                if doc is None or doc.get("state") != op["expected"]:
                    return f"order {op['order_id']} changed during the turn"
        return None

    def _apply(self, business_id: str, update_id: int, ops: list[dict[str, Any]]) -> None:
        journal = journal_id(business_id, update_id)
        conflicts: list[str] = []
        for index, op in enumerate(ops):
            problem = self._apply_op(journal, index, op)
            if problem is not None:
                log.error("journalled write skipped: the data changed outside the turn",
                          extra={"journal": journal, "op": index, "problem": problem})
                conflicts.append(problem)
        done: dict[str, Any] = {"journal.state": "applied", "journal.applied_at": now_utc()}
        if conflicts:
            done["journal.conflicts"] = conflicts
        self._col.update_one({"business_id": business_id, "update_id": update_id, "journal.state": "pending"},
                             {"$set": done})

    def _apply_op(self, journal: str, index: int, op: dict[str, Any]) -> str | None:
        """Apply one journalled write unless it was applied before; returns a conflict, or None."""
        kind = op["op"]
        if kind == "cart":
            return self._apply_cart(journal, op)
        if kind == "conversation":
            return self._apply_conversation(journal, op)
        if kind == "insert":
            try:
                self._db[op["collection"]].insert_one(dict(op["doc"]))
            except DuplicateKeyError:
                pass  # inserted before under the same _id
            return None
        if kind == "order_create":
            return self._apply_order_create(journal, op)
        if kind == "order_update":
            return self._apply_order_update(journal, op)
        raise StorageError("turn journal", f"unknown journal op {kind!r} at {index}")

    def _apply_cart(self, journal: str, op: dict[str, Any]) -> str | None:
        col = self._db[CARTS]
        where = {"business_id": op["business_id"], "thread_id": op["thread_id"]}
        now = now_utc()
        if op["expected"] == 0:
            try:
                col.insert_one({**where, "version": op["version"], "lines": op["lines"], "updated_at": now,
                                "journals": [journal]})
                return None
            except DuplicateKeyError:
                pass
        else:
            result = col.update_one(
                {**where, "version": op["expected"], "journals": {"$ne": journal}},
                {"$set": {"lines": op["lines"], "version": op["version"], "updated_at": now},
                 "$push": {"journals": _mark(journal)}},
            )
            if result.matched_count:
                return None
        doc = col.find_one(where, {"journals": 1, "version": 1})
        if doc is not None and journal in doc.get("journals", []):
            return None  # applied before
        found = doc.get("version") if doc is not None else None
        return f"cart {op['thread_id']} is at version {found}, not {op['expected']}: its change was not applied"

    def _apply_conversation(self, journal: str, op: dict[str, Any]) -> str | None:
        col = self._db[CONVERSATIONS]
        where = {"business_id": op["business_id"], "thread_id": op["thread_id"]}
        keep = int(op["keep"])
        messages: list[dict[str, Any]] = list(op["messages"])
        state: dict[str, Any] = dict(op["state"])
        now = now_utc()
        sets: dict[str, Any] = {"updated_at": now}
        pushes: dict[str, Any] = {"journals": _mark(journal)}
        if op["clear"]:
            sets.update(messages=messages[-keep:], state=state)
        else:
            if messages:
                pushes["messages"] = {"$each": messages, "$slice": -keep}
            sets.update({f"state.{k}": v for k, v in state.items()})
        for _ in range(3):
            result = col.update_one({**where, "journals": {"$ne": journal}}, {"$set": sets, "$push": pushes})
            if result.matched_count:
                return None
            doc = col.find_one(where, {"journals": 1})
            if doc is not None:
                if journal in doc.get("journals", []):
                    return None  # applied before
                continue  # made in between by another writer: update it now
            try:
                col.insert_one({**where, "messages": messages[-keep:], "state": state, "updated_at": now,
                                "journals": [journal]})
                return None
            except DuplicateKeyError:
                continue
        raise StorageError("turn journal", f"conversation {op['thread_id']} kept changing")

    def _apply_order_create(self, journal: str, op: dict[str, Any]) -> str | None:
        col = self._db[ORDERS]
        doc = dict(op["doc"])
        try:
            col.insert_one({**doc, "journals": [journal]})
            return None
        except DuplicateKeyError:
            pass
        if col.find_one({"business_id": doc["business_id"], "id": doc["id"]}, {"_id": 1}) is not None:
            return None  # made before, by this journal or the same checkout
        return f"order {doc['id']}: its payment is held by another order; it was not stored"

    def _apply_order_update(self, journal: str, op: dict[str, Any]) -> str | None:
        col = self._db[ORDERS]
        where = {"business_id": op["business_id"], "id": op["order_id"]}
        for _ in range(3):
            doc = col.find_one(where)
            if doc is None:
                return f"order {op['order_id']} is gone: its change was not applied"
            journals = list(doc.get("journals", []))
            if journal in journals:
                return None  # applied before
            if doc.get("state") != op["expected"]:
                return (f"order {op['order_id']} is {doc.get('state')}, not {op['expected']}: "
                        "its change was not applied")
            new = {**op["doc"], "journals": [*journals, journal][-JOURNALS_KEPT:]}
            try:
                result = col.replace_one({"_id": doc["_id"], "state": op["expected"], "journals": {"$ne": journal}},
                                         new)
            except DuplicateKeyError:
                return f"order {op['order_id']}: its payment is held by another order; its change was not applied"
            if result.matched_count:
                return None
        raise StorageError("turn journal", f"order {op['order_id']} kept changing")


# --------------------------------------------------------------------------- staged stores


@dataclass
class _Staged(StagedWrites):
    events: list[tuple[Event, dict[str, Any]]] = field(default_factory=list)
    usage: list[tuple[UsageRecord, dict[str, Any]]] = field(default_factory=list)
    orders: dict[Key, Order] = field(default_factory=dict)  # the latest of each order written
    created: set[Key] = field(default_factory=set)  # orders first written by this turn
    order_states: dict[Key, str] = field(default_factory=dict)  # the stored state an update expects


def _state_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """A state change as the Mongo store keeps it, refused now (in the turn) where the store would refuse it."""
    cleaned = plain_json(changes)
    for name in cleaned:
        _state_key(name)
    return cleaned


class _StagedEvents:
    def __init__(self, turn: MongoStagedTurn) -> None:
        self._turn = turn

    async def record(self, event: Event) -> None:
        self._turn.staged.events.append((event, _event_doc(event)))

    async def list(self, business_id: str, thread_id: str | None = None, limit: int = 100) -> EventList:
        stored = await self._turn.read(self._turn.base.events.list(business_id, thread_id, limit))
        mine = [e for e, _ in self._turn.staged.events
                if e.business_id == business_id and (thread_id is None or e.thread_id == thread_id)]
        return (stored + mine)[-limit:] if limit > 0 else []


class _StagedUsage:
    def __init__(self, turn: MongoStagedTurn) -> None:
        self._turn = turn
        usage = turn.base.usage
        self._base: UsageLog = usage.inner if isinstance(usage, TurnUsageLog) else usage

    async def record(self, record: UsageRecord) -> None:
        self._turn.staged.usage.append((record, _usage_doc(record)))

    async def list(
        self, business_id: str, *, thread_id: str | None = None, turn_id: str | None = None
    ) -> UsageList:
        stored = await self._turn.read(self._base.list(business_id, thread_id=thread_id, turn_id=turn_id))
        mine = [r for r, _ in self._turn.staged.usage if r.business_id == business_id
                and (thread_id is None or r.thread_id == thread_id) and (turn_id is None or r.turn_id == turn_id)]
        return stored + mine

    async def total_tokens(self, business_id: str) -> int:
        stored: int = await self._turn.read(self._base.total_tokens(business_id))
        return stored + sum(r.total_tokens for r, _ in self._turn.staged.usage if r.business_id == business_id)


class _StagedOrders:
    """Orders as the turn left them, over the stored ones, with the stored store's rules."""

    def __init__(self, turn: MongoStagedTurn, base: OrderStore) -> None:
        self._turn = turn
        self._base = base

    async def create(self, order: Order) -> Order:
        existing = await self.get(order.business_id, order.id)
        if existing is not None:
            return existing
        await self._payment_free(order)
        key = (order.business_id, order.id)
        self._turn.staged.orders[key] = order
        self._turn.staged.created.add(key)
        return order

    async def get(self, business_id: str, order_id: str) -> Order | None:
        staged = self._turn.staged.orders.get((business_id, order_id))
        if staged is not None:
            return staged
        found: Order | None = await self._turn.read(self._base.get(business_id, order_id))
        return found

    async def find(self, order_id: str) -> Order | None:
        for (_, oid), order in self._turn.staged.orders.items():
            if oid == order_id:
                return order
        found: Order | None = await self._turn.read(self._base.find(order_id))
        return found

    async def list(self, business_id: str | None = None, *, thread_id: str | None = None,
                   state: str | None = None, limit: int = 100) -> OrderList:
        staged = self._turn.staged.orders
        stored: OrderList = await self._turn.read(self._base.list(
            business_id, thread_id=thread_id, state=state, limit=limit + len(staged)))
        mine = [o for o in staged.values() if (business_id is None or o.business_id == business_id)
                and (thread_id is None or o.thread_id == thread_id) and (state is None or o.state == state)]
        merged = [o for o in stored if (o.business_id, o.id) not in staged] + mine
        merged.sort(key=lambda o: (o.created_at, o.id), reverse=True)
        return merged[:limit]

    async def update(self, order: Order, expected_state: str) -> Order:
        key = (order.business_id, order.id)
        current = await self.get(order.business_id, order.id)
        if current is None or current.state != expected_state:
            raise ConcurrencyConflict(f"order {order.id}", 0)
        await self._payment_free(order)
        if key not in self._turn.staged.created:
            self._turn.staged.order_states.setdefault(key, current.state)
        self._turn.staged.orders[key] = order
        return order

    async def by_payment(self, business_id: str, provider: str, payment_id: str) -> Order | None:
        staged = self._turn.staged.orders
        for (b, _), order in staged.items():
            if b == business_id and order.provider == provider and order.provider_payment_id == payment_id:
                return order
        found: Order | None = await self._turn.read(self._base.by_payment(business_id, provider, payment_id))
        if found is not None and (found.business_id, found.id) in staged:
            return None  # this turn moved the payment off that order
        return found

    async def _payment_free(self, order: Order) -> None:
        if order.provider_payment_id:
            holder = await self.by_payment(order.business_id, order.provider, order.provider_payment_id)
            if holder is not None and holder.id != order.id:
                raise DuplicatePayment(order.provider, str(order.provider_payment_id))


# --------------------------------------------------------------------------- usage routing

_active: contextvars.ContextVar[MongoStagedTurn | None] = contextvars.ContextVar("chatpay_staged_turn",
                                                                                 default=None)


class TurnUsageLog:
    """A :class:`~chatpay.core.ports.UsageLog` that hands records made inside a staged turn to it.

    The engine's meter writes usage straight to the log it was built with, whatever stores a
    turn runs on. Wrapped in this (:func:`route_usage`), the records of a turn running inside
    :meth:`MongoStagedTurn.active` go to that turn's journal; every other record (another turn
    on the plain stores, an import) goes to ``inner`` as before.
    """

    def __init__(self, inner: UsageLog) -> None:
        self.inner = inner

    async def record(self, record: UsageRecord) -> None:
        turn = _active.get()
        if turn is None:
            await self.inner.record(record)
        else:
            await turn.stores.usage.record(record)

    async def list(
        self, business_id: str, *, thread_id: str | None = None, turn_id: str | None = None
    ) -> UsageList:
        turn = _active.get()
        log_: UsageLog = self.inner if turn is None else turn.stores.usage
        return await log_.list(business_id, thread_id=thread_id, turn_id=turn_id)

    async def total_tokens(self, business_id: str) -> int:
        turn = _active.get()
        log_: UsageLog = self.inner if turn is None else turn.stores.usage
        return await log_.total_tokens(business_id)


def route_usage(meter: UsageMeter) -> None:
    """Let ``meter``'s records reach the staged turn they are made in (idempotent)."""
    if not isinstance(meter.log, TurnUsageLog):
        meter.log = TurnUsageLog(meter.log)


# --------------------------------------------------------------------------- the staged turn


class MongoStagedTurn(ReadThrough[_Staged]):
    """Stores for one turn whose writes wait for :meth:`commit`; the MongoDB :class:`StagedTurn`.

    Args:
        journal: the process's :class:`MongoJournal`, on the database ``base`` uses.
        base: the runtime's (MongoDB) stores; reads go there, and catalogs and vectors are used as they are.
        meter: the engine's usage meter; given, it is routed (:func:`route_usage`) so that the
            records the turn makes inside :meth:`active` are journalled too.
    """

    def __init__(self, journal: MongoJournal, base: Stores, *, meter: UsageMeter | None = None) -> None:
        self.journal = journal
        self.base = base
        self.staged = _Staged()
        self.max_messages = int(getattr(base.conversations, "max_messages", MAX_MESSAGES))
        if meter is not None:
            route_usage(meter)
        self.stores = Stores(
            catalogs=base.catalogs, conversations=StagedConversations(self, base.conversations, _state_changes),
            carts=StagedCarts(self, base.carts),
            events=_StagedEvents(self), usage=_StagedUsage(self), turns=journal, vectors=base.vectors,
            orders=_StagedOrders(self, base.orders) if base.orders is not None else None,
        )

    @property
    def error(self) -> StorageError | None:
        """The first read that failed during the turn; such a turn must not be committed."""
        return self.staged.error

    @contextmanager
    def active(self) -> Iterator[MongoStagedTurn]:
        """Run the turn inside this block so that the meter's usage records are staged with it."""
        token = _active.set(self)
        try:
            yield self
        finally:
            _active.reset(token)

    def ops(self) -> list[dict[str, Any]]:
        """The staged writes as journal entries, in the order they are applied."""
        staged = self.staged
        ops: list[dict[str, Any]] = []
        for (business_id, thread_id), cart in staged.carts.items():
            ops.append({
                "op": "cart", "business_id": business_id, "thread_id": thread_id,
                "expected": staged.read_versions.get((business_id, thread_id), 0), "version": cart.version,
                "lines": [{"handle": ln.handle, "variant_id": ln.variant_id, "quantity": ln.quantity}
                          for ln in cart.lines],
            })
        for key, order in staged.orders.items():
            doc = MongoOrderStore._doc(order)
            if key in staged.created:
                ops.append({"op": "order_create", "business_id": key[0], "doc": doc})
            else:
                ops.append({"op": "order_update", "business_id": key[0], "order_id": order.id,
                            "expected": staged.order_states[key], "doc": doc})
        for key in sorted(set(staged.cleared) | set(staged.appends) | set(staged.state)):
            ops.append({
                "op": "conversation", "business_id": key[0], "thread_id": key[1], "clear": key in staged.cleared,
                "messages": [message_doc(m) for m in staged.appends.get(key, [])],
                "state": staged.state.get(key, {}), "keep": self.max_messages,
            })
        ops += [{"op": "insert", "collection": EVENTS, "doc": doc} for _, doc in staged.events]
        ops += [{"op": "insert", "collection": USAGE, "doc": doc} for _, doc in staged.usage]
        return ops

    async def commit(self, business_id: str, update_id: int, outcome: Mapping[str, Any]) -> CommitStatus:
        """Journal every staged write with ``outcome``, then apply them, each exactly once.

        Returns:
            ``committed``; or ``duplicate`` when this update has an outcome already (a run
            presumed dead committed first; nothing of this run is written): replay
            :meth:`MongoJournal.outcome`, which also finishes applying that run's journal.

        Raises:
            StorageError: MongoDB failed, or a read during the turn failed (nothing journalled).
            ConcurrencyConflict: a cart or order changed since the turn read it (nothing written).
        """
        if self.staged.error is not None:
            raise self.staged.error
        return await self.journal.commit(business_id, update_id, self.ops(), outcome)

    async def recover(self, business_id: str, update_id: int) -> dict[str, Any] | None:
        """:meth:`MongoJournal.recover`: finish a committed journal; the outcome to replay, or None."""
        return await self.journal.recover(business_id, update_id)
