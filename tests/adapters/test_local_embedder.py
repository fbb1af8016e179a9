"""The shipped static embedding model: offline, unit vectors, meaning close where it should be."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from chatpay.adapters.local_embedder import MODEL_DIR, LocalEmbedder
from chatpay.core.errors import ConfigError
from chatpay.core.ports import Embedder


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return LocalEmbedder()


def test_the_model_ships_inside_the_package_and_is_small() -> None:
    size = sum(p.stat().st_size for p in MODEL_DIR.iterdir())
    assert size < 20_000_000


def test_satisfies_the_embedder_port(embedder: LocalEmbedder) -> None:
    assert isinstance(embedder, Embedder)
    assert embedder.dim == 256


async def test_vectors_have_unit_length_and_cost_nothing(embedder: LocalEmbedder) -> None:
    out = await embedder.embed(["dark roast coffee", "a waterproof jacket", "?"])
    vectors = np.asarray(out.vectors)
    assert vectors.shape == (3, embedder.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert out.usage.total_tokens == 0
    assert out.model == embedder.name


async def test_empty_batch_and_empty_text(embedder: LocalEmbedder) -> None:
    assert len((await embedder.embed([])).vectors) == 0
    (vec,) = (await embedder.embed([""])).vectors
    assert not np.any(vec)


async def test_paraphrases_are_closer_than_unrelated_products(embedder: LocalEmbedder) -> None:
    query, near, far = (await embedder.embed(
        ["something to help me sleep", "calming herbal tea for bedtime", "stainless steel bicycle chain"]
    )).vectors
    assert float(np.dot(query, near)) > float(np.dot(query, far)) + 0.2


async def test_same_text_same_vector_across_batches(embedder: LocalEmbedder) -> None:
    big = [f"product number {i}" for i in range(300)]  # runs in a worker thread
    alone = (await embedder.embed(["product number 7"])).vectors[0]
    assert np.allclose((await embedder.embed(big)).vectors[7], alone, atol=1e-6)


def test_missing_files_are_a_config_error_not_a_download(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model.safetensors"):
        LocalEmbedder(tmp_path)


async def test_corrupt_weights_are_a_config_error(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    shutil.copytree(MODEL_DIR, folder)
    (folder / "model.safetensors").write_bytes(b"not a tensor file")
    broken = LocalEmbedder(folder)
    with pytest.raises(ConfigError, match="cannot load"):
        await broken.embed(["coffee"])
