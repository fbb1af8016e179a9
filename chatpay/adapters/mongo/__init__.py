"""The MongoDB system of record, on PyMongo's sync API (a real server or mongomock).

Every document carries ``business_id`` and every query filters on it. Start-up calls
:func:`ensure_indexes`; :func:`mongo_stores` does so too, since unique indexes are what
make cart versions and turn claims safe.

Collections: ``catalogs`` (one pointer per business), ``products`` (per catalog
version), ``conversations`` and ``carts`` (one per thread), ``events``, ``usage``,
``turns`` (claims, outcomes and turn journals, 48 h TTL), ``catalog_vectors`` and ``orders``.
A worker commits each turn through :class:`MongoJournal` (see :mod:`chatpay.adapters.mongo.journal`),
whose journal is the update's ``turns`` document, under the same TTL index.

An order is unique per ``(business_id, id)`` and per ``(business_id, payment_key)``, where the
payment key is ``<provider>:<payment id>`` once paid and ``order:<id>`` before, so a payment
delivered twice pays one order once (see :mod:`chatpay.adapters.mongo.orders`).
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.database import Database
from pymongo.errors import PyMongoError

from chatpay.adapters.mongo._base import (
    CARTS,
    CATALOGS,
    CONVERSATIONS,
    EVENTS,
    ORDERS,
    PRODUCTS,
    TURNS,
    USAGE,
    VECTORS,
    Runner,
)
from chatpay.adapters.mongo.catalog import MongoCatalogStore
from chatpay.adapters.mongo.journal import MongoJournal, MongoStagedTurn, TurnUsageLog, route_usage
from chatpay.adapters.mongo.logs import MongoEventLog, MongoTurnStore, MongoUsageLog
from chatpay.adapters.mongo.orders import MongoOrderStore
from chatpay.adapters.mongo.threads import MAX_MESSAGES, MongoCartStore, MongoConversationStore
from chatpay.adapters.mongo.vectors import MongoVectorStore
from chatpay.core.errors import StorageError
from chatpay.core.ports import Stores

__all__ = [
    "CLAIM_TTL_SECONDS",
    "MongoCartStore",
    "MongoCatalogStore",
    "MongoConversationStore",
    "MongoEventLog",
    "MongoJournal",
    "MongoStagedTurn",
    "MongoTurnStore",
    "MongoUsageLog",
    "TurnUsageLog",
    "embedded_database",
    "ensure_indexes",
    "mongo_stores",
    "route_usage",
]

log = logging.getLogger(__name__)

CLAIM_TTL_SECONDS = 48 * 3600
"""How long a Telegram update id stays claimed (Telegram redelivers for up to 24 h)."""

_A = ASCENDING

INDEXES: dict[str, list[IndexModel]] = {
    CATALOGS: [IndexModel([("business_id", _A)], unique=True, name="business")],
    PRODUCTS: [
        IndexModel([("business_id", _A), ("handle", _A), ("catalog_version", _A)], unique=True,
                   name="business_handle_version"),
        IndexModel([("business_id", _A), ("catalog_version", _A), ("position", _A)], name="business_version_order"),
    ],
    CONVERSATIONS: [IndexModel([("business_id", _A), ("thread_id", _A)], unique=True, name="business_thread")],
    CARTS: [IndexModel([("business_id", _A), ("thread_id", _A)], unique=True, name="business_thread")],
    EVENTS: [
        IndexModel([("business_id", _A), ("thread_id", _A), ("at", _A)], name="business_thread_at"),
        IndexModel([("business_id", _A), ("at", _A)], name="business_at"),
    ],
    USAGE: [
        IndexModel([("business_id", _A), ("thread_id", _A), ("at", _A)], name="business_thread_at"),
        IndexModel([("business_id", _A), ("turn_id", _A)], name="business_turn"),
    ],
    VECTORS: [IndexModel([("business_id", _A), ("model", _A), ("version", _A), ("chunk", _A)], unique=True,
                         name="business_model_version_chunk")],
    TURNS: [
        IndexModel([("business_id", _A), ("update_id", _A)], unique=True, name="business_update"),
        IndexModel([("claimed_at", _A)], expireAfterSeconds=CLAIM_TTL_SECONDS, name="claim_ttl"),
    ],
    ORDERS: [
        IndexModel([("business_id", _A), ("id", _A)], unique=True, name="business_order"),
        IndexModel([("business_id", _A), ("payment_key", _A)], unique=True, name="business_payment"),
        IndexModel([("business_id", _A), ("thread_id", _A), ("created_at", _A)], name="business_thread_created"),
        IndexModel([("state", _A), ("provider", _A)], name="state_provider"),
    ],
}


def ensure_indexes(db: Database[Any]) -> None:
    """Create every index ChatPay relies on; a no-op when they exist.

    Raises:
        StorageError: the server is unreachable, or an index exists with other options.
    """
    try:
        for name, models in INDEXES.items():
            db[name].create_indexes(models)
    except PyMongoError as exc:
        raise StorageError("ensure_indexes", f"{type(exc).__name__} from the database") from exc
    log.debug("mongo indexes ensured on %s", db.name)


def mongo_stores(db: Database[Any], *, offload: bool = False, max_messages: int = MAX_MESSAGES) -> Stores:
    """Every store on one database, with its indexes ensured.

    Args:
        db: a PyMongo database, or a mongomock one (see :func:`embedded_database`).
        offload: run each blocking call in :func:`asyncio.to_thread`; set it for a real
            server, leave it off for mongomock.
        max_messages: messages kept per conversation thread.
    """
    ensure_indexes(db)
    run = Runner(offload=offload)
    return Stores(
        catalogs=MongoCatalogStore(db, run),
        conversations=MongoConversationStore(db, run, max_messages=max_messages),
        carts=MongoCartStore(db, run),
        events=MongoEventLog(db, run),
        usage=MongoUsageLog(db, run),
        turns=MongoTurnStore(db, run),
        vectors=MongoVectorStore(db, run),
        orders=MongoOrderStore(db, run),
    )


def embedded_database(name: str = "chatpay") -> Database[Any]:
    """A fresh in-process database (mongomock): nothing shared, nothing on disk."""
    try:
        import mongomock
    except ImportError:  # a server install (`pip install chatpay`): production runs on MongoDB
        from chatpay.core.errors import ConfigError

        raise ConfigError("MONGODB_URI", "is not set, and the embedded store is not installed: set MONGODB_URI, or "
                                         "install the embedded default with `pip install \"chatpay[embedded]\"`") from None

    db: Database[Any] = mongomock.MongoClient(tz_aware=True)[name]
    return db
