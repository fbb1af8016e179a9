"""What every Mongo store shares: running blocking calls, translating errors, dates."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from bson.errors import BSONError
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError, PyMongoError

from chatpay.core.errors import StorageError

log = logging.getLogger(__name__)

T = TypeVar("T")

# Collection names: one place, so indexes and stores cannot drift apart.
CATALOGS = "catalogs"
PRODUCTS = "products"
CONVERSATIONS = "conversations"
CARTS = "carts"
EVENTS = "events"
USAGE = "usage"
TURNS = "turns"
ORDERS = "orders"
VECTORS = "catalog_vectors"


class Runner:
    """Runs a store's blocking PyMongo work, on a worker thread when ``offload`` is set.

    PyMongo's sync API blocks; against a real server every call goes through
    :func:`asyncio.to_thread` so the event loop keeps serving other turns. mongomock
    answers from memory at once, so it is called directly.
    Any PyMongo or BSON error that the store did not handle becomes a
    :class:`~chatpay.core.errors.StorageError` naming the operation.
    """

    def __init__(self, *, offload: bool) -> None:
        self.offload = offload

    async def __call__(self, operation: str, fn: Callable[..., T], *args: Any) -> T:
        call = functools.partial(_translated, operation, fn, *args)
        if self.offload:
            return await asyncio.to_thread(call)
        return call()


def _translated(operation: str, fn: Callable[..., T], *args: Any) -> T:
    try:
        return fn(*args)
    except (PyMongoError, BSONError, OverflowError) as exc:
        # The class name is enough to act on; messages may echo hosts, so keep them out.
        log.warning("mongo %s failed: %s", operation, type(exc).__name__)
        raise StorageError(operation, f"{type(exc).__name__} from the database") from exc


def to_utc(value: datetime | None) -> datetime | None:
    """A datetime from the database as an aware UTC datetime (PyMongo returns naive UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def now_utc() -> datetime:
    return datetime.now(UTC)


def plain_json(value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` as JSON would store it (tuples become lists), like the in-memory twins."""
    result: dict[str, Any] = json.loads(json.dumps(dict(value)))
    return result


def without_id(doc: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    return {k: v for k, v in doc.items() if k != "_id"}


def upsert(collection: Collection[Any], query: Mapping[str, Any], update: Mapping[str, Any]) -> None:
    """``update_one(..., upsert=True)``, retried once when two first-ever upserts race.

    MongoDB may answer the loser of such a race with a duplicate key error on the
    unique index; by then the document exists and the retry updates it.
    """
    try:
        collection.update_one(query, update, upsert=True)
    except DuplicateKeyError:
        collection.update_one(query, update, upsert=True)
