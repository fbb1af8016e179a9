"""The catalog in MongoDB: versioned product documents behind a pointer document.

A replace never needs a transaction: the new products are written under a freshly
reserved ``catalog_version``, then the business's pointer document in ``catalogs`` is
flipped to that version with a conditional update, then older versions are deleted.
Readers read the pointer first, so a replace that fails part-way leaves the old
catalog served and only unreferenced documents behind (removed by the next replace).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from chatpay.adapters.mongo._base import CATALOGS, PRODUCTS, Runner, now_utc
from chatpay.core.catalog import Catalog, PolicyDoc, Product, Variant
from chatpay.core.errors import ConcurrencyConflict, StorageError
from chatpay.core.money import Money

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
_READ_ATTEMPTS = 3


# --------------------------------------------------------------------------- codec


def variant_doc(v: Variant) -> dict[str, Any]:
    return {
        "id": v.id,
        "title": v.title,
        "price_minor": v.price.minor,
        "currency": v.price.currency,
        "sku": v.sku,
        "available": v.available,
        "options": [[name, value] for name, value in v.options],
    }


def variant_from_doc(doc: Mapping[str, Any]) -> Variant:
    return Variant(
        id=doc["id"],
        title=doc["title"],
        price=Money(int(doc["price_minor"]), doc["currency"]),
        sku=doc.get("sku"),
        available=bool(doc.get("available", True)),
        options=tuple((str(name), str(value)) for name, value in doc.get("options", [])),
    )


def product_doc(business_id: str, version: int, position: int, p: Product) -> dict[str, Any]:
    """The stored form of ``p``: money as integer minor units plus currency."""
    return {
        "business_id": business_id,
        "catalog_version": version,
        "position": position,
        "handle": p.handle,
        "name": p.name,
        "description": p.description,
        "product_type": p.product_type,
        "tags": list(p.tags),
        "images": list(p.images),
        "url": p.url,
        "vendor": p.vendor,
        "variants": [variant_doc(v) for v in p.variants],
    }


def product_from_doc(doc: Mapping[str, Any]) -> Product:
    return Product(
        handle=doc["handle"],
        name=doc["name"],
        description=doc.get("description", ""),
        variants=tuple(variant_from_doc(v) for v in doc["variants"]),
        product_type=doc.get("product_type", ""),
        tags=tuple(doc.get("tags", ())),
        images=tuple(doc.get("images", ())),
        url=doc.get("url"),
        vendor=doc.get("vendor", ""),
    )


def policy_doc(p: PolicyDoc) -> dict[str, Any]:
    return {"id": p.id, "title": p.title, "text": p.text, "keywords": list(p.keywords)}


def policy_from_doc(doc: Mapping[str, Any]) -> PolicyDoc:
    return PolicyDoc(doc["id"], doc["title"], doc["text"], tuple(doc.get("keywords", ())))


# --------------------------------------------------------------------------- store


class MongoCatalogStore:
    """:class:`~chatpay.core.ports.CatalogStore` on the ``catalogs`` and ``products`` collections.

    Reads cost one small pointer lookup when the catalog has not changed: products of
    a version never change, so the last catalog read is kept per business.
    """

    def __init__(self, db: Database[Any], run: Runner) -> None:
        self._catalogs = db[CATALOGS]
        self._products = db[PRODUCTS]
        self._run = run
        self._cache: dict[str, tuple[str, Catalog]] = {}

    async def get(self, business_id: str) -> Catalog | None:
        return await self._run("catalog get", self._get, business_id)

    async def replace(self, catalog: Catalog) -> Catalog:
        return await self._run("catalog replace", self._replace, catalog)

    async def businesses(self) -> list[str]:
        return await self._run("catalog businesses", self._businesses)

    # ------------------------------------------------------------------ blocking work

    def _get(self, business_id: str) -> Catalog | None:
        for _ in range(_READ_ATTEMPTS):
            # The pointer without its policies first: on a cache hit (nearly every turn) that is all.
            pointer = self._catalogs.find_one({"business_id": business_id}, {"policies": 0})
            if pointer is None or "version" not in pointer:
                return None
            cached = self._cache.get(business_id)
            if cached is not None and cached[0] == pointer["catalog_id"]:
                return cached[1]
            pointer = self._catalogs.find_one({"business_id": business_id})
            if pointer is None or "version" not in pointer:
                return None
            docs = list(
                self._products.find({"business_id": business_id, "catalog_version": pointer["version"]})
                .sort("position", 1)
            )
            # Old versions are deleted only after the pointer moves: if it has not moved
            # since, every document of this version was still there when read.
            again = self._catalogs.find_one({"business_id": business_id}, {"catalog_id": 1})
            if again is not None and again.get("catalog_id") == pointer["catalog_id"]:
                catalog = Catalog(
                    business_id=business_id,
                    currency=pointer["currency"],
                    products={d["handle"]: product_from_doc(d) for d in docs},
                    policies=tuple(policy_from_doc(p) for p in pointer.get("policies", [])),
                    store_name=pointer.get("store_name", ""),
                    version=int(pointer["version"]),
                )
                self._cache[business_id] = (pointer["catalog_id"], catalog)
                return catalog
        raise StorageError("catalog get", "the catalog kept changing while it was read")

    def _reserve_version(self, business_id: str) -> int:
        for attempt in range(2):
            try:
                doc = self._catalogs.find_one_and_update(
                    {"business_id": business_id},
                    {"$inc": {"next_version": 1}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                    projection={"next_version": 1},
                )
                if doc is None:  # an upsert returning the document after it never does this
                    raise StorageError("catalog replace", "no catalog version could be reserved")
                return int(doc["next_version"])
            except DuplicateKeyError:
                if attempt:  # two first-ever upserts raced; the second try finds the document
                    raise
        raise AssertionError("unreachable")

    def _replace(self, catalog: Catalog) -> Catalog:
        business_id = catalog.business_id
        version = self._reserve_version(business_id)
        try:
            docs = [product_doc(business_id, version, i, p) for i, p in enumerate(catalog.products.values())]
            for start in range(0, len(docs), BATCH_SIZE):
                self._products.insert_many(docs[start : start + BATCH_SIZE], ordered=True)
        except Exception:
            self._discard(business_id, version)
            raise
        catalog_id = uuid.uuid4().hex
        flipped = self._catalogs.update_one(
            {
                "business_id": business_id,
                "$or": [{"version": {"$exists": False}}, {"version": {"$lt": version}}],
            },
            {
                "$set": {
                    "version": version,
                    "catalog_id": catalog_id,
                    "currency": catalog.currency,
                    "store_name": catalog.store_name,
                    "policies": [policy_doc(p) for p in catalog.policies],
                    "product_count": len(docs),
                    "updated_at": now_utc(),
                }
            },
        )
        if flipped.matched_count == 0:
            # A replace that reserved a later version flipped first; it wins.
            self._discard(business_id, version)
            raise ConcurrencyConflict(f"catalog of {business_id}", version - 1)
        try:
            self._products.delete_many({"business_id": business_id, "catalog_version": {"$lt": version}})
        except PyMongoError as exc:  # the new catalog is served; leftovers go with the next replace
            log.warning("catalog %s: old versions not deleted yet: %s", business_id, type(exc).__name__)
        stored = replace(catalog, products=dict(catalog.products), version=version)
        self._cache[business_id] = (catalog_id, stored)
        log.info("catalog %s replaced: version %d, %d products", business_id, version, len(docs))
        return stored

    def _discard(self, business_id: str, version: int) -> None:
        try:
            self._products.delete_many({"business_id": business_id, "catalog_version": version})
        except PyMongoError as exc:
            log.warning("catalog %s: unreferenced version %d left: %s", business_id, version, type(exc).__name__)

    def _businesses(self) -> list[str]:
        return sorted(self._catalogs.distinct("business_id", {"version": {"$exists": True}}))
