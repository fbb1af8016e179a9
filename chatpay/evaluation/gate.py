"""The regression gate: floors every score must reach, and the committed baseline.

A headline score is named ``<store>.<suite>.<metric>`` (``demo.routing.accuracy``). The
gate fails when a score is below its floor, or more than the noise band below the
baseline recorded for the same engine. Each failure's message names the metric, the
floor or baseline, and the cases that changed since the baseline (now failing, now
passing), found by diffing the run's failures against the baseline's failure list.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from chatpay.core.errors import InvalidInput
from chatpay.evaluation.tables import describe_failure

NOISE = 0.01
FLOORS: dict[str, float] = {
    "demo.routing.accuracy": 0.97,
    "bikes.routing.accuracy": 0.95,
    "demo.retrieval.hit_at_1": 0.95,
    "demo.retrieval.hit_at_3": 0.98,
    "demo.retrieval.abstain_accuracy": 0.9,
    "demo.conversations.turn_accuracy": 1.0,
}
GATED: dict[str, tuple[str, ...]] = {
    "routing": ("accuracy",),
    "retrieval": ("hit_at_1", "hit_at_3", "mrr", "ndcg_at_3", "abstain_accuracy", "all_accuracy"),
    "conversations": ("turn_accuracy", "conversation_rate"),
}
CASES_NAMED = 10


@dataclass(frozen=True)
class GateFailure:
    """One score that failed the gate, and why."""

    metric: str
    value: float
    kind: Literal["floor", "baseline"]
    limit: float
    baseline: float | None
    now_failing: tuple[str, ...]
    now_passing: tuple[str, ...]
    message: str
    head: str = ""
    changed: tuple[str, ...] = ()


def run_key(summary: Mapping[str, Any]) -> str:
    return f"{summary.get('store', 'eval')}.{summary['suite']}"


def headline(summaries: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """The gated scores of a run, by ``<store>.<suite>.<metric>`` (scores over no cases left out)."""
    out: dict[str, float] = {}
    for s in summaries:
        for metric in GATED[s["suite"]]:
            value = s.get(metric)
            if value is not None:
                out[f"{run_key(s)}.{metric}"] = float(value)
    return out


def failure_ids(summary: Mapping[str, Any]) -> list[str]:
    return sorted({str(f.get("id")) for f in summary["failures"]})


def make_baseline(summaries: Iterable[Mapping[str, Any]], existing: Mapping[str, Any] | None = None,
                  *, noise: float = NOISE) -> dict[str, Any]:
    """A baseline holding this run's scores and failing cases per engine, keeping other engines'."""
    runs = list(summaries)
    engines: dict[str, Any] = dict((existing or {}).get("engines", {}))
    for engine in sorted({s["engine"] for s in runs}):
        mine = [s for s in runs if s["engine"] == engine]
        entry = dict(engines.get(engine, {"scores": {}, "failures": {}}))
        entry["scores"] = {**entry.get("scores", {}), **headline(mine)}
        entry["failures"] = {**entry.get("failures", {}), **{run_key(s): failure_ids(s) for s in mine}}
        entry["cases"] = {**entry.get("cases", {}), **{run_key(s): s["cases"] for s in mine}}
        entry["updated"] = datetime.now(UTC).isoformat(timespec="seconds")
        engines[engine] = entry
    return {"noise": (existing or {}).get("noise", noise), "floors": FLOORS, "engines": engines}


def load_baseline(path: Path) -> dict[str, Any] | None:
    """The committed baseline, or None when there is none yet."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"not valid JSON ({exc.msg})", source=str(path), item=f"line {exc.lineno}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("engines"), dict):
        raise InvalidInput("must be an object with 'engines'", source=str(path), field="engines")
    return data


def _describe(summary: Mapping[str, Any], ids: Iterable[str]) -> list[str]:
    by_id = {str(f.get("id")): f for f in summary["failures"]}
    out = []
    for case_id in ids:
        f = by_id.get(case_id)
        if f is None:
            out.append(repr(case_id))
            continue
        case, expected, got = describe_failure(summary["suite"], f)
        out.append(f"{case!r} (expected {expected}, got {got})" if expected else f"{case!r} ({got})")
    return out


def _named(label: str, items: list[str]) -> str:
    if not items:
        return ""
    lines = [f"\n    {label} ({len(items)}):"] + [f"\n      - {item}" for item in items[:CASES_NAMED]]
    if len(items) > CASES_NAMED:
        lines.append(f"\n      - … and {len(items) - CASES_NAMED} more (see the JSON results)")
    return "".join(lines)


def check(
    summaries: Iterable[Mapping[str, Any]],
    baseline: Mapping[str, Any] | None,
    *,
    floors: Mapping[str, float] = FLOORS,
    noise: float | None = None,
) -> list[GateFailure]:
    """Every gated score below its floor or beyond the noise band under its baseline."""
    band = noise if noise is not None else float((baseline or {}).get("noise", NOISE))
    engines = (baseline or {}).get("engines", {})
    failures: list[GateFailure] = []
    for s in summaries:
        # The floors are the default (legacy) engine's guarantees on the demo store; another language
        # engine ("offline+fitted") is held to its own baseline until it reaches them.
        its_floors = floors if "+" not in str(s["engine"]) else {}
        base = engines.get(s["engine"]) or {}
        base_scores: Mapping[str, float] = base.get("scores", {})
        base_failures = base.get("failures", {}).get(run_key(s))
        current = failure_ids(s)
        if base_failures is None:
            now_failing, now_passing = current, []
        else:
            now_failing = sorted(set(current) - set(base_failures))
            now_passing = sorted(set(base_failures) - set(current))
        named: list[str] = []
        for metric, value in headline([s]).items():
            floor = its_floors.get(metric)
            before = base_scores.get(metric)
            if floor is not None and value < floor - 1e-9:
                kind: Literal["floor", "baseline"] = "floor"
                limit = floor
                head = f"{metric} = {value:.4f} is below its floor {floor:.4f}"
                if before is not None:
                    head += f" (baseline {before:.4f})"
            elif before is not None and value < before - band - 1e-9:
                kind, limit = "baseline", before
                head = (f"{metric} = {value:.4f} dropped {before - value:.4f} below its baseline {before:.4f} "
                        f"(noise band {band:.2f})")
            else:
                continue
            label = "now failing since the baseline" if base_failures is not None else "failing (no baseline)"
            if named:  # the same run's cases were listed under its first failing metric
                message = head + f"\n    cases: as listed under {named[0]}"
            else:
                message = (head + _named(label, _describe(s, now_failing))
                           + _named("now passing since the baseline", [repr(i) for i in now_passing]))
                if base_failures is not None and not now_failing and not now_passing:
                    message += "\n    no case changed since the baseline"
                    if kind == "floor":
                        message += _named("still failing", _describe(s, current))
            named.append(metric)
            failures.append(GateFailure(metric, value, kind, limit, before, tuple(now_failing),
                                        tuple(now_passing), message, head, tuple(_describe(s, now_failing))))
    return failures


def write_baseline(path: Path, baseline: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(baseline, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
