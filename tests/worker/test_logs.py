"""The worker's log lines: one JSON object each, with ids, and never a secret."""

from __future__ import annotations

import json
import logging

from chatpay.worker.logs import JsonFormatter

TOKEN = "123456:AAE-secret-token"


def line(record: logging.LogRecord, worker: str = "w-1") -> dict[str, object]:
    text = JsonFormatter(lambda: worker, secrets=[TOKEN, ""]).format(record)
    assert "\n" not in text
    parsed: dict[str, object] = json.loads(text)
    return parsed


def record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("chatpay.worker", logging.WARNING, __file__, 1, msg, args, None)
    rec.__dict__.update(extra)
    return rec


def test_a_line_carries_the_worker_and_the_turns_ids() -> None:
    got = line(record("turn done", business_id="demo", thread_id="42", turn_id="t1", update_id=7))
    assert got["worker"] == "w-1" and got["level"] == "WARNING" and got["msg"] == "turn done"
    assert (got["business_id"], got["thread_id"], got["turn_id"], got["update_id"]) == ("demo", "42", "t1", 7)


def test_the_token_never_appears_wherever_it_hides() -> None:
    try:
        raise RuntimeError(f"POST https://api.telegram.org/bot{TOKEN}/sendMessage failed")
    except RuntimeError:
        import sys

        rec = record("call to %s failed", f"/bot{TOKEN}/x", error=f"bot{TOKEN}")
        rec.exc_info = sys.exc_info()
    text = JsonFormatter(lambda: "w", secrets=[TOKEN]).format(rec)
    assert TOKEN not in text
    assert text.count("<secret>") == 3
