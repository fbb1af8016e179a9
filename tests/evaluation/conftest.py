"""A tiny shop of another trade, written to disk as a catalog file and a store profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatpay.evaluation.harness import StoreSpec

PRODUCTS = [
    {"handle": "terracotta-pot", "name": "Terracotta Plant Pot", "price": 12.5, "currency": "EUR",
     "description": "A classic unglazed terracotta pot, 20 cm, with a drainage hole.", "available": True},
    {"handle": "watering-can", "name": "Galvanised Watering Can", "price": 24.0, "currency": "EUR",
     "description": "A 5 litre steel watering can with a brass rose for seedlings.", "available": True},
    {"handle": "pruning-shears", "name": "Bypass Pruning Shears", "price": 19.9, "currency": "EUR",
     "description": "Sharp bypass secateurs for roses and shrubs, with a locking catch.", "available": True},
    {"handle": "tomato-seeds", "name": "Heirloom Tomato Seeds", "price": 3.2, "currency": "EUR",
     "description": "Fifty seeds of a sweet red heirloom tomato for greenhouse or patio.", "available": True},
    {"handle": "compost-bag", "name": "Peat-Free Compost 40L", "price": 9.0, "currency": "EUR",
     "description": "Multi-purpose peat-free compost for pots, borders and seed sowing.", "available": False},
]
STORE = {"name": "Green Thumb Garden Shop", "currency": "EUR", "policies": [
    {"id": "delivery", "title": "Delivery", "text": "We deliver in 2-4 working days; free over €40.",
     "keywords": ["delivery", "shipping", "postage"]},
]}


@pytest.fixture
def garden(tmp_path: Path) -> StoreSpec:
    catalog = tmp_path / "garden" / "catalog.json"
    catalog.parent.mkdir()
    catalog.write_text(json.dumps(PRODUCTS))
    store = tmp_path / "garden" / "store.json"
    store.write_text(json.dumps(STORE))
    return StoreSpec("garden", catalog, store)
