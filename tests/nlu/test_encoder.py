"""The shipped sentence encoder, run for real: all-MiniLM-L6-v2 int8 through onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from chatpay.adapters.encoders.onnx_minilm import OnnxMiniLMEncoder


@pytest.fixture(scope="module")
def encoder() -> OnnxMiniLMEncoder:
    e = OnnxMiniLMEncoder()
    e.load()
    return e


def test_vectors_are_unit_length_and_empty_text_is_zero(encoder: OnnxMiniLMEncoder) -> None:
    v = encoder.encode(["a waterproof jacket", "", "x" * 5000])
    assert v.shape == (3, 384)
    assert np.allclose(np.linalg.norm(v[[0, 2]], axis=1), 1.0, atol=1e-4)
    assert not v[1].any()


def test_a_paraphrase_is_nearer_than_an_unrelated_text(encoder: OnnxMiniLMEncoder) -> None:
    query, para, other = encoder.encode(["keep me dry in the rain", "waterproof rain jacket", "chocolate cake"])
    assert float(query @ para) > float(query @ other) + 0.2


def test_batching_does_not_change_a_vector(encoder: OnnxMiniLMEncoder) -> None:
    texts = ["short", "a much longer sentence about a stainless steel kettle with a gooseneck spout"] * 5
    together = encoder.encode(texts)
    alone = np.vstack([encoder.encode([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-4)


async def test_embed_satisfies_the_port(encoder: OnnxMiniLMEncoder) -> None:
    out = await encoder.embed(["tea"] * 20)  # enough to run in a worker thread
    assert len(out.vectors) == 20 and out.model == encoder.name and out.usage.total_tokens == 0
