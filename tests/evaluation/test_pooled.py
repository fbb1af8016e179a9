"""Figures pooled over several stores, and the locked test stores scored on their own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatpay.evaluation import all as evals
from chatpay.evaluation.harness import StoreSpec
from chatpay.evaluation.pooled import pool
from tests.evaluation.test_cli import lines


def _retrieval(store: str, hit1: float, lists: int, abstain: float, nones: int) -> dict[str, object]:
    return {"suite": "retrieval", "store": store, "hit_at_1": hit1, "hit_at_3": hit1, "mrr": hit1,
            "list_cases": lists, "abstain_accuracy": abstain, "none_cases": nones,
            "through_router": {"hit_at_1": hit1 / 2, "abstain_accuracy": abstain}}


def test_a_pooled_figure_counts_every_case_once_whichever_shop_it_is_from() -> None:
    """90 of 100 questions in one shop and 0 of 10 in another is 90 of 110, not the mean 0.45;
    a store outside the group counts for nothing."""
    runs = [
        _retrieval("big", 0.9, 100, 1.0, 30), _retrieval("small", 0.0, 10, 0.5, 10), _retrieval("other", 0.0, 500, 0.0, 9),
        {"suite": "conversations", "store": "big", "turn_accuracy": 1.0, "turns": 30, "conversation_rate": 1.0,
         "cases": 5, "destructive_errors": 0},
        {"suite": "conversations", "store": "small", "turn_accuracy": 0.5, "turns": 10, "conversation_rate": 0.0,
         "cases": 2, "destructive_errors": 1},
    ]
    got = {s.label: (round(s.value, 4), s.n) for s in pool(runs, ["big", "small"])}
    assert got["hit@1"] == (round(90 / 110, 4), 110)
    assert got["hit@1 through the router"] == (round(45 / 110, 4), 110)
    assert got['"not sold" declined'] == (round(35 / 40, 4), 40)
    assert got["turn accuracy"] == (round(35 / 40, 4), 40)
    assert got["destructive errors"] == (1.0, 40)
    assert "routing accuracy" not in got  # no routing run in the group


def test_the_locked_test_stores_are_scored_apart_without_gate_or_baseline(
    tmp_path: Path, garden: StoreSpec, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = {}
    for name in ("lockeda", "lockedb"):
        cases = tmp_path / "evals" / "cases" / name
        lines(cases / "routing.jsonl", {"text": "hello", "intent": "chitchat"},
              {"text": "thanks, bye", "intent": "payments"})
        specs[name] = StoreSpec(name, garden.catalog, garden.profile, cases_dir=cases)
    monkeypatch.setattr(evals, "locked_test_stores", lambda: specs)
    monkeypatch.setattr(evals, "shop_splits", lambda: {"dev": [], "test": list(specs), "reference": [], "pooled": []})
    results, baseline = tmp_path / "results", tmp_path / "baseline.json"
    args = ["--results", str(results), "--baseline", str(baseline), "--backend", "memory", "--brief", "--locked-test"]

    assert evals.main(args) == 0  # a wrong case is reported, never gated
    out = capsys.readouterr().out
    assert "Locked test stores, pooled" in out and "routing accuracy" in out
    summary = json.loads((results / "locked-test" / "lockeda" / "routing.json").read_text())
    assert summary["cases"] == 2 and not baseline.exists()

    assert evals.main([*args, "--update-baseline"]) == 2
    assert "writes no baseline" in capsys.readouterr().err
