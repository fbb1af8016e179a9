"""Orders in MongoDB: one document per order, state changes as conditional writes.

Two unique indexes carry the guarantees: ``(business_id, id)`` (a checkout makes one order)
and ``(business_id, payment_key)`` (a payment delivered twice pays one order once). The
payment key is ``<provider>:<payment id>``, or ``order:<id>`` while the order holds no payment,
so the index needs no partial filter (which mongomock, our embedded store, does not honour). A state change is ``replace_one`` filtered on the
state it was read in, so two workers racing on one order cannot both move it.
"""

from __future__ import annotations

from typing import Any

from pymongo import DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from chatpay.adapters.mongo._base import ORDERS, Runner, to_utc
from chatpay.core.errors import ConcurrencyConflict, DuplicatePayment
from chatpay.core.orders import Order, order_from_doc, order_to_doc


def _read(doc: dict[str, Any] | None) -> Order | None:
    if doc is None:
        return None
    doc.pop("_id", None)
    doc.pop("payment_key", None)
    doc["created_at"] = to_utc(doc["created_at"])
    for t in doc.get("history", []):
        t["at"] = to_utc(t["at"])
    return order_from_doc(doc)


def _duplicate(exc: DuplicateKeyError, order: Order) -> Exception:
    if order.provider_payment_id is not None and "business_order" not in str(exc):
        return DuplicatePayment(order.provider, str(order.provider_payment_id))
    return exc


class MongoOrderStore:
    """:class:`~chatpay.core.ports.OrderStore` on the ``orders`` collection."""

    def __init__(self, db: Database[Any], run: Runner) -> None:
        self._col = db[ORDERS]
        self._run = run

    async def create(self, order: Order) -> Order:
        return await self._run("order create", self._create, order)

    async def get(self, business_id: str, order_id: str) -> Order | None:
        return await self._run("order get", lambda: _read(self._col.find_one({"business_id": business_id,
                                                                               "id": order_id})))

    async def find(self, order_id: str) -> Order | None:
        return await self._run("order find", lambda: _read(self._col.find_one({"id": order_id})))

    async def list(self, business_id: str | None = None, *, thread_id: str | None = None,
                   state: str | None = None, limit: int = 100) -> list[Order]:
        query: dict[str, Any] = {}
        if business_id is not None:
            query["business_id"] = business_id
        if thread_id is not None:
            query["thread_id"] = thread_id
        if state is not None:
            query["state"] = state

        def run() -> list[Order]:
            cursor = self._col.find(query).sort([("created_at", DESCENDING), ("id", DESCENDING)]).limit(limit)
            return [o for o in (_read(d) for d in cursor) if o is not None]

        return await self._run("order list", run)

    async def update(self, order: Order, expected_state: str) -> Order:
        return await self._run("order update", self._update, order, expected_state)

    async def by_payment(self, business_id: str, provider: str, payment_id: str) -> Order | None:
        return await self._run("order by_payment", lambda: _read(self._col.find_one(
            {"business_id": business_id, "payment_key": f"{provider}:{payment_id}"})))

    def _create(self, order: Order) -> Order:
        try:
            self._col.insert_one(self._doc(order))
        except DuplicateKeyError as exc:
            existing = _read(self._col.find_one({"business_id": order.business_id, "id": order.id}))
            if existing is not None:
                return existing
            raise _duplicate(exc, order) from exc
        return order

    def _update(self, order: Order, expected_state: str) -> Order:
        try:
            result = self._col.replace_one({"business_id": order.business_id, "id": order.id,
                                            "state": expected_state}, self._doc(order))
        except DuplicateKeyError as exc:
            raise _duplicate(exc, order) from exc
        if result.matched_count == 0:
            raise ConcurrencyConflict(f"order {order.id}", 0)
        return order

    @staticmethod
    def _doc(order: Order) -> dict[str, Any]:
        doc = order_to_doc(order)
        doc["payment_key"] = (f"{order.provider}:{order.provider_payment_id}" if order.provider_payment_id
                              else f"order:{order.id}")
        return doc
