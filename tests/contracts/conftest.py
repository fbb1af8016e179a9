"""Every implementation of the storage ports, for the contract suite.

``memory`` and ``mongomock`` always run; ``mongodb`` runs against a real server when
``CHATPAY_TEST_MONGODB_URI`` is set (a fresh database per test, dropped afterwards).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from chatpay.adapters.memory import in_memory_stores
from chatpay.adapters.mongo import embedded_database, mongo_stores
from chatpay.core.ports import Stores

BACKENDS = ["memory", "mongomock", "mongodb"]


@pytest.fixture(params=BACKENDS)
def stores(request: pytest.FixtureRequest) -> Iterator[Stores]:
    backend = request.param
    if backend == "memory":
        yield in_memory_stores()
    elif backend == "mongomock":
        yield mongo_stores(embedded_database())
    else:
        uri = os.environ.get("CHATPAY_TEST_MONGODB_URI")
        if not uri:
            pytest.skip("CHATPAY_TEST_MONGODB_URI not set")
        import pymongo

        client: pymongo.MongoClient = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000, tz_aware=True)
        name = f"chatpay_test_{uuid.uuid4().hex[:12]}"
        try:
            yield mongo_stores(client[name], offload=True)
        finally:
            client.drop_database(name)
            client.close()
