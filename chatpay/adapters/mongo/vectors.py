"""Product vectors in MongoDB, in chunks under the 16 MB document limit.

One set per business and encoder: putting a new catalog version's vectors replaces the old ones.
Each chunk holds up to :data:`CHUNK_ROWS` rows of float16 (384 dims: about 7.7 MB).
"""

from __future__ import annotations

from typing import Any

from bson.binary import Binary
from pymongo.database import Database

from chatpay.adapters.mongo._base import VECTORS, Runner
from chatpay.core.ports import StoredVectors

CHUNK_ROWS = 10_000


class MongoVectorStore:
    """:class:`chatpay.core.ports.VectorStore` on one database."""

    def __init__(self, db: Database[Any], run: Runner) -> None:
        self.col = db[VECTORS]
        self.run = run

    async def get(self, business_id: str, version: int, model: str) -> StoredVectors | None:
        query = {"business_id": business_id, "model": model, "version": version}

        def load() -> list[dict[str, Any]]:
            return list(self.col.find(query, {"_id": 0}).sort("chunk", 1))

        chunks = await self.run("vectors.get", load)
        if not chunks:
            return None
        rows, dim = int(chunks[0]["rows"]), int(chunks[0]["dim"])
        data = b"".join(bytes(c["data"]) for c in chunks)
        if len(chunks) != chunks[0]["chunks"] or len(data) != rows * dim * 2:
            return None  # a partial write: recompute rather than trust it
        return StoredVectors(data, rows, dim)

    async def put(self, business_id: str, version: int, model: str, vectors: StoredVectors) -> None:
        row_bytes = vectors.dim * 2
        step = CHUNK_ROWS * row_bytes
        parts = [vectors.data[i : i + step] for i in range(0, len(vectors.data), step)] or [b""]
        docs = [
            {"business_id": business_id, "model": model, "version": version, "chunk": i, "chunks": len(parts),
             "rows": vectors.rows, "dim": vectors.dim, "data": Binary(part)}
            for i, part in enumerate(parts)
        ]

        def write() -> None:
            self.col.delete_many({"business_id": business_id, "model": model, "version": version})
            self.col.insert_many(docs)
            self.col.delete_many({"business_id": business_id, "model": model, "version": {"$ne": version}})

        await self.run("vectors.put", write)
