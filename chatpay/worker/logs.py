"""Structured logs for the worker: one JSON object per line on stderr, never a secret.

Every record carries the worker id; records made inside a turn carry the business, thread
and turn ids that the core passes as ``extra``. The bot token and API keys are replaced by
``<secret>`` wherever they might appear (a URL in an error, an exception's text).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """``{"at", "level", "logger", "msg", "worker", ...extra}`` with secrets redacted."""

    def __init__(self, worker_id: Callable[[], str], secrets: Sequence[str] = ()) -> None:
        super().__init__()
        self._worker_id = worker_id
        self._secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "msg": record.getMessage(),
        }
        data.setdefault("worker", self._worker_id())
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        text = json.dumps(data, default=str, ensure_ascii=False)
        for secret in self._secrets:
            text = text.replace(secret, "<secret>")
        return text


def configure_logging(level: str, *, worker_id: str | Callable[[], str], secrets: Sequence[str] = ()) -> None:
    """Send every log record as one JSON line to stderr at ``level`` (httpx's chatter at WARNING)."""
    handler = logging.StreamHandler(sys.stderr)
    name = worker_id if callable(worker_id) else (lambda: str(worker_id))
    handler.setFormatter(JsonFormatter(name, secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "telegram", "aiohttp"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
