"""Mongo-specific behaviour beyond the storage contract: indexes, partial failures, documents."""

from __future__ import annotations

import socket
from decimal import Decimal
from typing import Any

import pymongo
import pytest
from bson.decimal128 import Decimal128

from chatpay.adapters.mongo import CLAIM_TTL_SECONDS, embedded_database, ensure_indexes, mongo_stores
from chatpay.adapters.mongo._base import Runner
from chatpay.adapters.mongo.catalog import product_doc
from chatpay.adapters.mongo.threads import MongoCartStore
from chatpay.core.cart import Cart
from chatpay.core.catalog import Catalog, Product, Variant
from chatpay.core.errors import ConcurrencyConflict, InvalidInput, StorageError
from chatpay.core.money import Money
from chatpay.core.telemetry import UsageRecord
from chatpay.core.turns import Message


def _catalog(business_id: str, *handles: str, price: int = 1000) -> Catalog:
    return Catalog.of(
        business_id,
        "EUR",
        [Product(h, h.title(), "", (Variant("default", "Default Title", Money(price, "EUR")),)) for h in handles],
    )


def _indexes(db: Any, collection: str) -> dict[str, dict[str, Any]]:
    return {
        name: {**info, "key": [tuple(k) for k in list(info["key"])]}
        for name, info in db[collection].index_information().items()
    }


def _unique_keys(db: Any, collection: str) -> list[list[str]]:
    return [[k for k, _ in i["key"]] for i in _indexes(db, collection).values() if i.get("unique")]


def test_indexes_enforce_what_the_stores_rely_on() -> None:
    db = embedded_database()
    ensure_indexes(db)
    ensure_indexes(db)  # start-up runs it every time
    assert ["business_id", "handle", "catalog_version"] in _unique_keys(db, "products")
    assert ["business_id", "thread_id"] in _unique_keys(db, "carts")
    assert ["business_id", "thread_id"] in _unique_keys(db, "conversations")
    assert ["business_id", "update_id"] in _unique_keys(db, "turns")
    assert ["business_id", "id"] in _unique_keys(db, "orders")
    assert ["business_id", "payment_key"] in _unique_keys(db, "orders")
    ttl = [i["expireAfterSeconds"] for i in _indexes(db, "turns").values() if "expireAfterSeconds" in i]
    assert ttl == [CLAIM_TTL_SECONDS] and CLAIM_TTL_SECONDS >= 48 * 3600
    for collection in ("events", "usage"):
        keys = [[k for k, _ in i["key"]] for i in _indexes(db, collection).values()]
        assert ["business_id", "thread_id", "at"] in keys


async def test_a_replace_failing_part_way_leaves_the_old_catalog_served() -> None:
    db = embedded_database()
    stores = mongo_stores(db)
    old = await stores.catalogs.replace(_catalog("a", "mug", "tent"))
    # A document already holding the next version's third handle makes the insert fail
    # after two of the new products were written.
    pointer = db.catalogs.find_one({"business_id": "a"})
    db.products.insert_one({"business_id": "a", "handle": "stove", "catalog_version": pointer["next_version"] + 1})

    with pytest.raises(StorageError) as info:
        await stores.catalogs.replace(_catalog("a", "lamp", "socks", "stove", "cup"))
    assert info.value.operation == "catalog replace"
    assert await stores.catalogs.get("a") == old
    assert await mongo_stores(db).catalogs.get("a") == old  # another worker, no cache
    assert db.products.count_documents({"business_id": "a", "catalog_version": {"$ne": old.version}}) == 0

    new = await stores.catalogs.replace(_catalog("a", "lamp"))
    assert new.version > old.version and list((await stores.catalogs.get("a") or new).products) == ["lamp"]


async def test_products_of_a_writer_that_died_before_the_flip_are_never_read() -> None:
    db = embedded_database()
    stores = mongo_stores(db)
    old = await stores.catalogs.replace(_catalog("a", "mug"))
    reserved = db.catalogs.find_one_and_update({"business_id": "a"}, {"$inc": {"next_version": 1}},
                                               return_document=pymongo.ReturnDocument.AFTER)["next_version"]
    stray = Product("ghost", "Ghost", "", (Variant("default", "Default Title", Money(1, "EUR")),))
    db.products.insert_one(product_doc("a", reserved, 0, stray))

    assert await mongo_stores(db).catalogs.get("a") == old
    await stores.catalogs.replace(_catalog("a", "tent"))
    assert db.products.count_documents({"handle": "ghost"}) == 0


async def test_a_replace_that_loses_the_flip_keeps_the_newer_catalog() -> None:
    db = embedded_database()
    slow, fast = mongo_stores(db), mongo_stores(db)
    await slow.catalogs.replace(_catalog("a", "mug"))
    # ``slow`` reserves version 2 and is still writing when ``fast`` reserves 3 and
    # publishes it; then ``slow`` finishes (rewinding the counter replays its reservation).
    db.catalogs.update_one({"business_id": "a"}, {"$inc": {"next_version": 1}})
    newer = await fast.catalogs.replace(_catalog("a", "tent"))
    db.catalogs.update_one({"business_id": "a"}, {"$set": {"next_version": 1}})
    with pytest.raises(ConcurrencyConflict):
        await slow.catalogs.replace(_catalog("a", "stove"))
    assert await slow.catalogs.get("a") == newer
    assert db.products.count_documents({"business_id": "a"}) == 1


async def test_a_catalog_replaced_by_another_worker_is_seen() -> None:
    db = embedded_database()
    reader, writer = mongo_stores(db), mongo_stores(db)
    await writer.catalogs.replace(_catalog("a", "mug", price=1000))
    assert (await reader.catalogs.get("a") or _catalog("a")).products["mug"].price == Money(1000, "EUR")
    await writer.catalogs.replace(_catalog("a", "mug", price=1250))
    assert (await reader.catalogs.get("a") or _catalog("a")).products["mug"].price == Money(1250, "EUR")
    db.drop_collection("catalogs")
    db.drop_collection("products")
    ensure_indexes(db)
    await writer.catalogs.replace(_catalog("a", "tent"))  # versions start again at 1
    assert list((await reader.catalogs.get("a") or _catalog("a")).products) == ["tent"]


async def test_a_cart_changed_elsewhere_is_not_overwritten() -> None:
    db = embedded_database()
    stores = mongo_stores(db)
    mug = _catalog("a", "mug").products["mug"]
    mine = await stores.carts.save(Cart("a", "1").add(mug))
    doc = db.carts.find_one({"business_id": "a", "thread_id": "1"})
    assert doc["version"] == 1 and doc["lines"] == [{"handle": "mug", "variant_id": "default", "quantity": 1}]
    db.carts.update_one({"_id": doc["_id"]}, {"$set": {"lines": [], "version": 2}})  # another worker
    with pytest.raises(ConcurrencyConflict):
        await stores.carts.save(mine.add(mug))
    assert db.carts.find_one({"_id": doc["_id"]})["lines"] == []


async def test_messages_are_bounded_in_the_database() -> None:
    db = embedded_database()
    stores = mongo_stores(db, max_messages=3)
    for i in range(10):
        await stores.conversations.append("a", "1", Message("user", f"m{i}"))
    doc = db.conversations.find_one({"business_id": "a", "thread_id": "1"})
    assert [m["content"] for m in doc["messages"]] == ["m7", "m8", "m9"]


async def test_state_keys_that_mongo_would_misread_are_refused() -> None:
    stores = mongo_stores(embedded_database())
    with pytest.raises(InvalidInput):
        await stores.conversations.update_state("a", "1", {"last.shown": 1})
    with pytest.raises(InvalidInput):
        await stores.conversations.update_state("a", "1", {"$where": 1})


async def test_costs_are_stored_as_exact_decimals() -> None:
    db = embedded_database()
    stores = mongo_stores(db)
    costs = [Decimal("0.000150"), Decimal("1.2345678901234567890123456789012345678901"), None]
    for i, cost in enumerate(costs):
        await stores.usage.record(UsageRecord("a", "1", f"t{i}", "router", "chat", "m", "m", 1, 2, cost, 3.5))
    raw = [d["cost_usd"] for d in db.usage.find({"business_id": "a"}).sort("turn_id", 1)]
    assert raw[0] == Decimal128("0.000150")
    assert raw[1] == "1.2345678901234567890123456789012345678901"  # beyond Decimal128: kept as text
    assert raw[2] is None
    assert [r.cost_usd for r in await stores.usage.list("a")] == costs
    assert str((await stores.usage.list("a"))[0].cost_usd) == "0.000150"


async def test_offloaded_calls_work_from_worker_threads() -> None:
    stores = mongo_stores(embedded_database(), offload=True)
    mug = _catalog("a", "mug").products["mug"]
    saved = await stores.carts.save(Cart("a", "1").add(mug, quantity=3))
    assert await stores.carts.get("a", "1") == saved
    assert await stores.turns.claim("a", 1, "t") is True
    assert await stores.turns.claim("a", 1, "t") is False


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_server_is_a_storage_error_without_the_password() -> None:
    uri = f"mongodb://shop:s3cret-pass@127.0.0.1:{_closed_port()}/?serverSelectionTimeoutMS=150&connectTimeoutMS=150"
    client: pymongo.MongoClient = pymongo.MongoClient(uri)
    try:
        with pytest.raises(StorageError) as info:
            mongo_stores(client["chatpay"])
        assert info.value.operation == "ensure_indexes"
        assert isinstance(info.value.__cause__, pymongo.errors.PyMongoError)
        assert "s3cret" not in str(info.value)

        carts = MongoCartStore(client["chatpay"], Runner(offload=True))
        with pytest.raises(StorageError) as info:
            await carts.get("a", "1")
        assert info.value.operation == "cart get" and "s3cret" not in str(info.value)
    finally:
        client.close()


def test_each_embedded_database_starts_empty() -> None:
    first, second = embedded_database(), embedded_database()
    first.carts.insert_one({"business_id": "a"})
    assert second.carts.count_documents({}) == 0
    assert embedded_database("shop").name == "shop"
