"""The offline embedder: a static model2vec model shipped inside the package.

The model (``models/minilm-static``, about 8 MB) was distilled once from all-MiniLM-L6-v2 by
``scripts/make_embedder.py``. It runs on numpy alone: no torch, no network, no cost. The
weights are loaded on the first :meth:`LocalEmbedder.embed` call (or :meth:`LocalEmbedder.load`),
only ever from a local folder: model2vec would try the Hugging Face hub for a path that does not
exist, so the folder is checked first and a missing file is a :class:`ConfigError`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatpay.core.errors import ConfigError, ModelError
from chatpay.core.ports import Embeddings
from chatpay.core.telemetry import Usage

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

MODEL_DIR = Path(__file__).resolve().parent / "models" / "minilm-static"
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")
# Batches larger than this are encoded in a worker thread so the event loop keeps serving turns.
THREAD_THRESHOLD = 256


class LocalEmbedder:
    """Unit-length sentence vectors from the shipped static model.

    ``embed`` returns ``Embeddings.vectors`` as a float32 numpy array of shape
    ``(len(texts), dim)`` (a sequence of rows), with zero token usage. An empty text gets
    the zero vector.

    Args:
        path: the model folder; the one shipped with ChatPay when omitted.
        name: the model's name in usage records and traces.

    Raises:
        ConfigError: the folder or one of its files is missing or unreadable.
    """

    def __init__(self, path: Path | str | None = None, *, name: str = "minilm-static") -> None:
        self.path = Path(path) if path is not None else MODEL_DIR
        self.name = name
        self.dim = self._read_dim()
        self._model: Any = None
        self._lock = threading.Lock()

    def _read_dim(self) -> int:
        missing = [f for f in REQUIRED_FILES if not (self.path / f).is_file()]
        if missing:
            raise ConfigError(
                "local embedding model",
                f"{self.path} lacks {', '.join(missing)}; reinstall ChatPay or run scripts/make_embedder.py",
            )
        try:
            config = json.loads((self.path / "config.json").read_text(encoding="utf-8"))
            return int(config["hidden_dim"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError("local embedding model", f"{self.path / 'config.json'} is unreadable: {exc}") from exc

    def load(self) -> None:
        """Load the weights now (idempotent, thread-safe); ``embed`` calls it when needed."""
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            try:
                from model2vec import StaticModel

                model = StaticModel.from_pretrained(self.path, normalize=True)
            except Exception as exc:  # model2vec/safetensors raise plain exceptions
                raise ConfigError("local embedding model", f"cannot load {self.path}: {exc}") from exc
            if model.dim != self.dim:
                raise ConfigError("local embedding model", f"weights have {model.dim} dims, config {self.dim}")
            log.info("loaded local embedding model %s (%d dims)", self.path.name, self.dim)
            self._model = model

    def _encode(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        try:
            out = self._model.encode(texts, use_multiprocessing=False)
        except Exception as exc:
            raise ModelError(f"local embedding failed: {exc}") from exc
        return np.ascontiguousarray(out, dtype=np.float32).reshape(len(texts), self.dim)

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        """Embed ``texts``; big batches run in a worker thread."""
        batch = [str(t) for t in texts]
        if len(batch) > THREAD_THRESHOLD or self._model is None:
            vectors = await asyncio.to_thread(self._encode, batch)
        else:
            vectors = self._encode(batch)
        return Embeddings(vectors, Usage(), self.name)  # type: ignore[arg-type]  # ndarray rows are sequences
