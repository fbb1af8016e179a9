"""NumpyVectorIndex agrees with the naive index and handles the edges."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from chatpay.adapters.memory import PythonVectorIndex
from chatpay.adapters.vector_numpy import NumpyVectorIndex
from chatpay.core.errors import InvalidInput


def _unit_vectors(n: int, dim: int, seed: int) -> list[list[float]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        v = [rng.gauss(0, 1) for _ in range(dim)]
        norm = math.sqrt(sum(x * x for x in v))
        out.append([x / norm for x in v])
    return out


@pytest.mark.parametrize("k", [1, 5, 50, 500])
def test_same_neighbours_as_the_naive_index(k: int) -> None:
    vectors = _unit_vectors(300, 32, seed=1)
    fast, naive = NumpyVectorIndex(vectors), PythonVectorIndex(vectors)
    for query in _unit_vectors(10, 32, seed=2):
        got, want = fast.search(query, k), naive.search(query, k)
        assert [i for i, _ in got] == [i for i, _ in want]
        assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-5)
        assert len(got) == min(k, 300)


def test_best_first_with_the_cosine() -> None:
    index = NumpyVectorIndex([[1.0, 0.0], [0.0, 1.0], [math.sqrt(0.5), math.sqrt(0.5)]])
    hits = index.search([1.0, 0.0], 2)
    assert [i for i, _ in hits] == [0, 2]
    assert hits[1][1] == pytest.approx(math.sqrt(0.5), abs=1e-6)


def test_accepts_a_numpy_matrix_without_copying_rows() -> None:
    matrix = np.eye(4, dtype=np.float32)
    index = NumpyVectorIndex(matrix)
    assert len(index) == 4 and index.nbytes == 64
    assert index.search(matrix[3], 1) == [(3, 1.0)]


def test_empty_index_and_zero_k() -> None:
    assert NumpyVectorIndex([]).search([1.0, 0.0], 3) == []
    assert NumpyVectorIndex([[1.0, 0.0]]).search([1.0, 0.0], 0) == []


def test_bad_input_is_named() -> None:
    with pytest.raises(InvalidInput, match="vectors"):
        NumpyVectorIndex([[1.0, 0.0], [1.0]])
    with pytest.raises(InvalidInput, match="dims"):
        NumpyVectorIndex([[1.0, 0.0]]).search([1.0, 0.0, 0.0], 1)
