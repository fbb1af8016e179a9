"""The vector store contract: product vectors kept per catalog version and encoder, for every process."""

from __future__ import annotations

import numpy as np

from chatpay.adapters.mongo import vectors as mongo_vectors
from chatpay.core.ports import StoredVectors, Stores


def _vectors(rows: int, dim: int = 8, seed: int = 1) -> StoredVectors:
    m = np.random.default_rng(seed).standard_normal((rows, dim)).astype("<f2")
    return StoredVectors(m.tobytes(), rows, dim)


async def test_vectors_come_back_as_stored_for_their_version_and_model_only(stores: Stores) -> None:
    assert stores.vectors is not None
    v = _vectors(5)
    await stores.vectors.put("acme", 3, "enc", v)
    assert await stores.vectors.get("acme", 3, "enc") == v
    assert await stores.vectors.get("acme", 2, "enc") is None
    assert await stores.vectors.get("acme", 3, "other") is None
    assert await stores.vectors.get("other-shop", 3, "enc") is None


async def test_a_new_version_replaces_the_old_one(stores: Stores) -> None:
    assert stores.vectors is not None
    await stores.vectors.put("acme", 1, "enc", _vectors(4, seed=1))
    new = _vectors(6, seed=2)
    await stores.vectors.put("acme", 2, "enc", new)
    assert await stores.vectors.get("acme", 1, "enc") is None
    assert await stores.vectors.get("acme", 2, "enc") == new


async def test_large_sets_are_chunked_and_reassembled(stores: Stores, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert stores.vectors is not None
    monkeypatch.setattr(mongo_vectors, "CHUNK_ROWS", 3)  # a small chunk, to cross several documents
    big = _vectors(10)
    await stores.vectors.put("acme", 7, "enc", big)
    assert await stores.vectors.get("acme", 7, "enc") == big
