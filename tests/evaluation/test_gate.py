"""The regression gate: floors, the baseline's noise band, and the cases that changed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from chatpay.config import Settings
from chatpay.core.classifier import Example, IntentClassifier, load_training_data
from chatpay.evaluation import gate
from chatpay.evaluation.cases import load_cases
from chatpay.evaluation.harness import EngineChoice, evaluate, known_stores

REPO = Path(__file__).resolve().parents[2]


def routing_summary(store: str, accuracy: float, failing: list[str], engine: str = "offline") -> dict[str, Any]:
    return {
        "suite": "routing", "store": store, "engine": engine, "cases": 100, "accuracy": accuracy,
        "failures": [{"id": t, "case": {"text": t, "intent": "cart_add"},
                      "got": {"intent": "enquiry", "confidence": 0.7, "layer": "classifier"}} for t in failing],
    }


def test_a_score_below_its_floor_fails_naming_metric_floor_and_failing_cases() -> None:
    [failure] = gate.check([routing_summary("demo", 0.96, ["I want the decaf"])], None)
    assert failure.metric == "demo.routing.accuracy" and failure.kind == "floor" and failure.limit == 0.97
    assert "demo.routing.accuracy = 0.9600 is below its floor 0.9700" in failure.message
    assert "'I want the decaf' (expected cart_add, got enquiry (0.70, classifier))" in failure.message


def test_a_drop_beyond_the_noise_band_fails_and_names_changed_cases() -> None:
    base = gate.make_baseline([routing_summary("shop", 0.95, ["old miss", "fixed now"])])
    assert gate.check([routing_summary("shop", 0.945, ["old miss"])], base) == []  # within 0.01
    [failure] = gate.check([routing_summary("shop", 0.93, ["old miss", "new miss"])], base)
    assert failure.kind == "baseline" and failure.baseline == 0.95
    assert "dropped 0.0200 below its baseline 0.9500 (noise band 0.01)" in failure.message
    assert failure.now_failing == ("new miss",) and failure.now_passing == ("fixed now",)
    assert "now failing since the baseline (1):" in failure.message and "'new miss'" in failure.message
    assert "now passing since the baseline (1):" in failure.message


def test_baselines_are_kept_per_engine() -> None:
    offline = gate.make_baseline([routing_summary("shop", 0.9, [])])
    both = gate.make_baseline([routing_summary("shop", 0.99, [], engine="gpt-4o-mini")], offline)
    assert set(both["engines"]) == {"offline", "gpt-4o-mini"}
    assert gate.check([routing_summary("shop", 0.95, [], engine="gpt-4o-mini")], both)  # its own baseline
    assert not gate.check([routing_summary("shop", 0.95, [])], both)  # offline's is 0.9


def test_the_baseline_file_round_trips_and_a_bad_one_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    assert gate.load_baseline(path) is None
    gate.write_baseline(path, gate.make_baseline([routing_summary("shop", 0.9, ["x"])]))
    loaded = gate.load_baseline(path)
    assert loaded is not None and loaded["engines"]["offline"]["failures"]["shop.routing"] == ["x"]
    path.write_text("{")
    from chatpay.core.errors import InvalidInput

    with pytest.raises(InvalidInput, match="baseline.json"):
        gate.load_baseline(path)


def swapped(examples: list[Example], a: str, b: str) -> list[Example]:
    flip = {a: b, b: a}
    return [Example(e.text, flip.get(e.intent, e.intent)) for e in examples]


def test_a_broken_router_fails_the_gate_naming_metric_limit_and_changed_cases() -> None:
    """Train the classifier with cart_add and enquiry examples swapped and run the demo routing suite."""
    broken = IntentClassifier().fit(swapped(load_training_data(), "cart_add", "enquiry"))
    cases = load_cases("routing", REPO / "evals" / "cases" / "demo" / "routing.jsonl")
    summary = asyncio.run(evaluate(known_stores()["demo"], "routing", cases, Settings(), EngineChoice("offline"),
                                   classifier=broken, backend="memory"))
    baseline = gate.load_baseline(REPO / "evals" / "baseline.json")
    failures = gate.check([summary], baseline)
    [routing] = [f for f in failures if f.metric == "demo.routing.accuracy"]
    assert routing.value < 0.8
    assert "demo.routing.accuracy" in routing.message and "below its floor 0.9700" in routing.message
    if baseline is not None:  # the committed baseline names what changed since it was taken
        base = baseline["engines"]["offline"]["scores"]["demo.routing.accuracy"]
        assert f"(baseline {base:.4f})" in routing.message
        assert "now failing since the baseline" in routing.message
    # Hard-pair cases that flipped are named with what the router did instead.
    assert "'I want the decaf' (expected cart_add, got enquiry" in routing.message or any(
        "I want the decaf" in c for c in routing.changed)
    assert len(routing.now_failing) >= 20


def test_a_floor_failure_with_nothing_changed_still_names_the_failing_cases() -> None:
    base = gate.make_baseline([routing_summary("demo", 0.9, ["still wrong"])])
    [failure] = gate.check([routing_summary("demo", 0.9, ["still wrong"])], base)
    assert "is below its floor 0.9700 (baseline 0.9000)" in failure.message
    assert "no case changed since the baseline" in failure.message
    assert "still failing (1):" in failure.message and "'still wrong' (expected cart_add" in failure.message


def test_the_fitted_engine_is_held_to_its_own_baseline_not_the_default_engines_floors() -> None:
    legacy = gate.make_baseline([routing_summary("demo", 0.99, [])])
    fitted = [routing_summary("demo", 0.955, ["x"], engine="offline+fitted")]
    assert gate.check(fitted, legacy) == []  # no fitted baseline yet, and the floors are the default engine's
    both = gate.make_baseline(fitted, legacy)
    assert set(both["engines"]) == {"offline", "offline+fitted"}
    [failure] = gate.check([routing_summary("demo", 0.93, ["x", "y"], engine="offline+fitted")], both)
    assert failure.kind == "baseline" and failure.baseline == 0.955
