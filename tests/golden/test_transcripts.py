"""Golden transcripts: every demo conversation's normalised output against its snapshot.

A snapshot holds, per turn, the reply as rendered for Telegram, the routing decision,
the cart and the trace's shape (see :mod:`chatpay.evaluation.transcripts`). Any change
fails; accept one with ``pytest tests/golden --update-golden`` and review the diff.
"""

from __future__ import annotations

import asyncio
import difflib
import json
from pathlib import Path
from typing import Any

import pytest

from chatpay.config import Settings
from chatpay.evaluation.cases import Conversation, load_cases
from chatpay.evaluation.harness import EngineChoice, known_stores, prepare_runtime
from chatpay.evaluation.transcripts import slug, transcripts

REPO = Path(__file__).resolve().parents[2]
CASES = REPO / "evals" / "cases" / "demo" / "conversations.jsonl"
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
CONVERSATIONS: list[Conversation] = load_cases("conversations", CASES)


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


@pytest.fixture(scope="module")
def produced() -> dict[str, dict[str, Any]]:
    """Every demo conversation run once on the offline engine, each on its own thread."""

    async def run() -> dict[str, dict[str, Any]]:
        runtime = await prepare_runtime(known_stores()["demo"], Settings(), EngineChoice("offline"), backend="memory")
        return await transcripts(runtime, CONVERSATIONS)

    return asyncio.run(run())


def test_names_give_distinct_snapshot_files() -> None:
    assert len({slug(c.name) for c in CONVERSATIONS}) == len(CONVERSATIONS)


@pytest.mark.parametrize("name", [c.name for c in CONVERSATIONS])
def test_transcript_matches_snapshot(name: str, produced: dict[str, dict[str, Any]], update_golden: bool) -> None:
    path = SNAPSHOTS / f"{slug(name)}.json"
    now = dumps(produced[name])
    if update_golden:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(now, encoding="utf-8")
        return
    if not path.is_file():
        pytest.fail(f"no snapshot {path.name} for conversation {name!r}: run pytest tests/golden --update-golden")
    before = path.read_text(encoding="utf-8")
    if before != now:
        diff = "".join(difflib.unified_diff(before.splitlines(True), now.splitlines(True),
                                            f"snapshot/{path.name}", "now", n=2))
        lines = diff.splitlines()
        shown = "\n".join(lines[:80]) + (f"\n… {len(lines) - 80} more diff lines" if len(lines) > 80 else "")
        pytest.fail(f"transcript of {name!r} changed (accept with pytest tests/golden --update-golden):\n{shown}")


def test_no_orphan_snapshots(update_golden: bool) -> None:
    wanted = {f"{slug(c.name)}.json" for c in CONVERSATIONS}
    orphans = sorted(p for p in SNAPSHOTS.glob("*.json") if p.name not in wanted)
    if update_golden:
        for p in orphans:
            p.unlink()
        return
    assert not orphans, f"snapshots of conversations that no longer exist: {[p.name for p in orphans]}"
