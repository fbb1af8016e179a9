"""Exact cosine nearest neighbours with numpy: one matrix product and an ``argpartition``.

Satisfies :class:`chatpay.core.ports.VectorIndex`. Vectors are stored once as a contiguous
float32 matrix (4 bytes per dimension per product: 100k products of 256 dims take 100 MB and
about 1 GB as Python floats). A search reads the matrix once, so it is bound by memory
bandwidth: about 1 ms per 10k products of 256 dims on a small cloud machine, against about
30 ms per 1k for the pure-Python :class:`chatpay.adapters.memory.PythonVectorIndex`
(``bench/bench_retrieval.py`` measures both).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from chatpay.core.errors import InvalidInput


class NumpyVectorIndex:
    """Brute-force exact search over unit vectors.

    Args:
        vectors: one vector per item (lists, tuples or a numpy array), all of one length;
            they are expected to have unit length, so the dot product is the cosine.

    Raises:
        InvalidInput: the vectors are ragged or not numbers.
    """

    def __init__(self, vectors: Sequence[Sequence[float]]) -> None:
        try:
            matrix = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"vectors must be numbers of one length: {exc}", field="vectors") from exc
        if matrix.size == 0:
            matrix = matrix.reshape(0, matrix.shape[-1] if matrix.ndim == 2 else 0)
        if matrix.ndim != 2:
            raise InvalidInput(f"vectors must form a matrix, got shape {matrix.shape}", field="vectors")
        self._matrix = np.ascontiguousarray(matrix)

    def __len__(self) -> int:
        return int(self._matrix.shape[0])

    @property
    def dim(self) -> int:
        return int(self._matrix.shape[1])

    @property
    def nbytes(self) -> int:
        """Memory held by the stored vectors."""
        return int(self._matrix.nbytes)

    def search(self, vector: Sequence[float], k: int) -> list[tuple[int, float]]:
        """The ``k`` items most similar to ``vector``, best first, as ``(position, cosine)``."""
        n = len(self)
        if k <= 0 or n == 0:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if query.shape[0] != self.dim:
            raise InvalidInput(f"query has {query.shape[0]} dims, index {self.dim}", field="vector")
        scores = self._matrix @ query
        if k < n:
            top = np.argpartition(-scores, k - 1)[:k]
        else:
            top = np.arange(n)
        # Sort by score, then position, so ties come out in a stable order.
        order = top[np.lexsort((top, -scores[top]))]
        return [(int(i), float(scores[i])) for i in order]
