"""Append-only records and turn claims: events, token usage, Telegram update claims."""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from bson.decimal128 import Decimal128
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from chatpay.adapters.mongo._base import EVENTS, TURNS, USAGE, Runner, now_utc, plain_json, to_utc, upsert
from chatpay.core.telemetry import Event, UsageRecord

# ``list`` is a method name below; these keep the builtin usable in annotations.
EventList = list[Event]
UsageList = list[UsageRecord]

# Records without a time still need a place in the order: they are sorted by when they
# were written, and ``at_unset`` remembers to give ``None`` back.
_NEWEST_FIRST = [("at", -1), ("_id", -1)]
_OLDEST_FIRST = [("at", 1), ("_id", 1)]


def _stamp(doc: dict[str, Any], at: Any) -> dict[str, Any]:
    doc["at"] = at if at is not None else now_utc()
    if at is None:
        doc["at_unset"] = True
    return doc


def _at(doc: Mapping[str, Any]) -> Any:
    return None if doc.get("at_unset") else to_utc(doc.get("at"))


def encode_cost(cost: Decimal | None) -> Decimal128 | str | None:
    """``cost`` stored exactly: Decimal128 (summable by the server), else its string."""
    if cost is None:
        return None
    try:
        stored = Decimal128(cost)
    except decimal.DecimalException:
        return str(cost)
    return stored if str(stored.to_decimal()) == str(cost) else str(cost)


def decode_cost(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal128):
        return value.to_decimal()
    return Decimal(str(value))


class MongoEventLog:
    """:class:`~chatpay.core.ports.EventLog` on the ``events`` collection, oldest first.

    ``data`` is stored as BSON: JSON-like values and datetimes; tuples come back as lists.
    """

    def __init__(self, db: Database[Any], run: Runner) -> None:
        self._col = db[EVENTS]
        self._run = run

    async def record(self, event: Event) -> None:
        doc = _stamp(
            {
                "business_id": event.business_id,
                "thread_id": event.thread_id,
                "turn_id": event.turn_id,
                "name": event.name,
                "data": dict(event.data),
            },
            event.at,
        )
        await self._run("event record", self._col.insert_one, doc)

    async def list(self, business_id: str, thread_id: str | None = None, limit: int = 100) -> list[Event]:
        return await self._run("event list", self._list, business_id, thread_id, limit)

    def _list(self, business_id: str, thread_id: str | None, limit: int) -> EventList:
        query: dict[str, Any] = {"business_id": business_id}
        if thread_id is not None:
            query["thread_id"] = thread_id
        # The newest ``limit``, then turned back into the order they happened in.
        docs = list(self._col.find(query).sort(_NEWEST_FIRST).limit(max(limit, 0)))
        return [
            Event(d["business_id"], d["thread_id"], d["turn_id"], d["name"], dict(d.get("data", {})), _at(d))
            for d in reversed(docs)
        ]


class MongoUsageLog:
    """:class:`~chatpay.core.ports.UsageLog` on the ``usage`` collection.

    ``cost_usd`` keeps its exact decimal value (``None`` stays ``None``: an unknown
    price is never a made-up zero); token totals are summed by the server.
    """

    def __init__(self, db: Database[Any], run: Runner) -> None:
        self._col = db[USAGE]
        self._run = run

    async def record(self, record: UsageRecord) -> None:
        doc = _stamp(
            {
                "business_id": record.business_id,
                "thread_id": record.thread_id,
                "turn_id": record.turn_id,
                "agent": record.agent,
                "kind": record.kind,
                "model": record.model,
                "engine": record.engine,
                "prompt_tokens": record.prompt_tokens,
                "completion_tokens": record.completion_tokens,
                "total_tokens": record.total_tokens,
                "cost_usd": encode_cost(record.cost_usd),
                "latency_ms": float(record.latency_ms),
            },
            record.at,
        )
        await self._run("usage record", self._col.insert_one, doc)

    async def list(
        self, business_id: str, *, thread_id: str | None = None, turn_id: str | None = None
    ) -> list[UsageRecord]:
        return await self._run("usage list", self._list, business_id, thread_id, turn_id)

    async def total_tokens(self, business_id: str) -> int:
        return await self._run("usage total_tokens", self._total, business_id)

    def _list(self, business_id: str, thread_id: str | None, turn_id: str | None) -> UsageList:
        query: dict[str, Any] = {"business_id": business_id}
        if thread_id is not None:
            query["thread_id"] = thread_id
        if turn_id is not None:
            query["turn_id"] = turn_id
        return [
            UsageRecord(
                business_id=d["business_id"],
                thread_id=d["thread_id"],
                turn_id=d["turn_id"],
                agent=d["agent"],
                kind=d["kind"],
                model=d["model"],
                engine=d["engine"],
                prompt_tokens=int(d["prompt_tokens"]),
                completion_tokens=int(d["completion_tokens"]),
                cost_usd=decode_cost(d.get("cost_usd")),
                latency_ms=float(d["latency_ms"]),
                at=_at(d),
            )
            for d in self._col.find(query).sort(_OLDEST_FIRST)
        ]

    def _total(self, business_id: str) -> int:
        rows = list(
            self._col.aggregate(
                [
                    {"$match": {"business_id": business_id}},
                    {"$group": {"_id": None, "tokens": {"$sum": "$total_tokens"}}},
                ]
            )
        )
        return int(rows[0]["tokens"]) if rows else 0


class MongoTurnStore:
    """:class:`~chatpay.core.ports.TurnStore` on the ``turns`` collection.

    A claim is an insert under the unique (business_id, update_id) index, so exactly one
    worker wins it; a TTL index keeps claims for 48 hours.
    """

    def __init__(self, db: Database[Any], run: Runner) -> None:
        self._col = db[TURNS]
        self._run = run

    async def claim(self, business_id: str, update_id: int, turn_id: str) -> bool:
        return await self._run("turn claim", self._claim, business_id, update_id, turn_id)

    async def record_outcome(self, business_id: str, update_id: int, outcome: Mapping[str, Any]) -> None:
        await self._run("turn record_outcome", self._record, business_id, update_id, plain_json(outcome))

    async def outcome(self, business_id: str, update_id: int) -> dict[str, Any] | None:
        return await self._run("turn outcome", self._outcome, business_id, update_id)

    def _claim(self, business_id: str, update_id: int, turn_id: str) -> bool:
        now = now_utc()
        try:
            self._col.insert_one(
                {"business_id": business_id, "update_id": update_id, "turn_id": turn_id,
                 "claimed": True, "claimed_at": now}
            )
            return True
        except DuplicateKeyError:
            # The document may exist only because an outcome was recorded without a claim.
            result = self._col.update_one(
                {"business_id": business_id, "update_id": update_id, "claimed": False},
                {"$set": {"claimed": True, "turn_id": turn_id, "claimed_at": now}},
            )
            return result.modified_count == 1

    def _record(self, business_id: str, update_id: int, outcome: dict[str, Any]) -> None:
        upsert(
            self._col,
            {"business_id": business_id, "update_id": update_id},
            {
                "$set": {"outcome": outcome, "outcome_at": now_utc()},
                "$setOnInsert": {"claimed": False, "claimed_at": now_utc()},
            },
        )

    def _outcome(self, business_id: str, update_id: int) -> dict[str, Any] | None:
        doc = self._col.find_one({"business_id": business_id, "update_id": update_id}, {"outcome": 1})
        if doc is None or doc.get("outcome") is None:
            return None
        return dict(doc["outcome"])
