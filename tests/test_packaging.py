"""The production install: what `chatpay-worker` and `chatpay webhook` load, and what the package pins."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXTRAS_ONLY = ("mongomock", "fakeredis", "textual", "matplotlib", "chatpay.adapters.memory", "chatpay_tui",
               "chatpay.evaluation")

PROBE = """
import asyncio, json, sys
import chatpay.worker, chatpay.webhook, chatpay.cli, chatpay.dlq_cli, chatpay.business_cli
import chatpay.adapters.mongo as mongo
from chatpay.bootstrap import build
from chatpay.config import load_settings
mongo.ensure_indexes = lambda db: None  # no server here: the probe is about what gets imported
runtime = build(load_settings())
print(json.dumps(sorted(m for m in sys.modules)))
"""


def test_the_production_entry_points_load_no_test_twin_and_no_extra(tmp_path: Path) -> None:
    """With MONGODB_URI set, wiring a runtime imports neither the in-memory twins nor the TUI/eval/embedded extras."""
    env = {**os.environ, "MONGODB_URI": "mongodb://127.0.0.1:1", "REDIS_URL": "redis://127.0.0.1:1/0",
           "TELEGRAM_BOT_TOKEN": "1:x"}
    env.pop("CHATPAY_BUSINESSES", None)
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    offenders = [m for m in loaded if any(m == x or m.startswith(x + ".") for x in EXTRAS_ONLY)]
    assert offenders == []


def test_every_runtime_dependency_has_an_upper_bound_and_extras_hold_the_rest() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    unbounded = [d for d in project["dependencies"] if "<" not in d]
    assert unbounded == []
    names = {re.split(r"[<>=\[ ]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    assert not names & {"mongomock", "fakeredis", "textual", "matplotlib"}
    extras = project["optional-dependencies"]
    assert {"server", "embedded", "tui", "eval", "all", "dev"} <= set(extras)
