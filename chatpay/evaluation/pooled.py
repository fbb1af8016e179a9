"""Scores pooled over a group of stores: every case counts once, whichever store it comes from.

A shop with 120 questions weighs more than one with 40, so a pooled hit@1 is the share of all
product questions answered right, not a mean of per-shop means. The groups are named in
``evals/shops.json``: ``pooled`` (the development shops written blind, the figures the
language-engine and dialogue issues hold to) and ``test`` (the locked shops, scored once).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from chatpay.evaluation.tables import fmt

# The floors the language-engine and dialogue issues set for pooled figures (turn accuracy: 0.97
# on the development shops, 0.95 on the locked test shops). Shown beside each figure; not gated,
# since the gate's floors are per store (chatpay.evaluation.gate.FLOORS).
TARGETS: dict[str, float] = {
    "routing accuracy": 0.97,
    "hit@1": 0.92,
    "hit@3": 0.97,
    "hit@1 through the router": 0.90,
    '"not sold" declined': 0.9,
    "turn accuracy": 0.97,
    "destructive errors": 0.0,
}
TEST_TURN_TARGET = 0.95


@dataclass(frozen=True)
class PooledScore:
    """One figure over a group of stores: its value, how many cases it counts, and the stores."""

    label: str
    value: float
    n: int
    stores: tuple[str, ...]


def _weighted(rows: Sequence[Mapping[str, Any]], value: Any, weight: str) -> tuple[float, int] | None:
    total = sum(int(r.get(weight) or 0) for r in rows)
    if not total:
        return None
    return sum(float(value(r) or 0.0) * int(r.get(weight) or 0) for r in rows) / total, total


def pool(summaries: Iterable[Mapping[str, Any]], stores: Sequence[str]) -> list[PooledScore]:
    """The pooled figures of the runs on ``stores`` (those of other stores are left out)."""
    runs = [s for s in summaries if s.get("store") in stores]
    out: list[PooledScore] = []

    def add(label: str, suite: str, value: Any, weight: str) -> None:
        rows = [s for s in runs if s["suite"] == suite]
        got = _weighted(rows, value, weight)
        if got is not None:
            out.append(PooledScore(label, got[0], got[1], tuple(str(s["store"]) for s in rows)))

    add("routing accuracy", "routing", lambda s: s["accuracy"], "cases")
    add("hit@1", "retrieval", lambda s: s["hit_at_1"], "list_cases")
    add("hit@3", "retrieval", lambda s: s["hit_at_3"], "list_cases")
    add("MRR", "retrieval", lambda s: s["mrr"], "list_cases")
    add("hit@1 through the router", "retrieval", lambda s: (s.get("through_router") or {}).get("hit_at_1"),
        "list_cases")
    add('"not sold" declined', "retrieval", lambda s: s["abstain_accuracy"], "none_cases")
    add('"not sold" declined through the router', "retrieval",
        lambda s: (s.get("through_router") or {}).get("abstain_accuracy"), "none_cases")
    add("turn accuracy", "conversations", lambda s: s["turn_accuracy"], "turns")
    add("conversations passed", "conversations", lambda s: s["conversation_rate"], "cases")
    conversations = [s for s in runs if s["suite"] == "conversations"]
    if conversations:
        out.append(PooledScore("destructive errors", float(sum(int(s.get("destructive_errors") or 0)
                                                                for s in conversations)),
                               sum(int(s["turns"]) for s in conversations),
                               tuple(str(s["store"]) for s in conversations)))
    return out


def pooled_table(scores: Sequence[PooledScore], title: str, *, turn_target: float = TARGETS["turn accuracy"]) -> Table:
    """The pooled figures with the number of cases behind each and the issues' target."""
    targets = {**TARGETS, "turn accuracy": turn_target}
    table = Table(title=title, title_justify="left")
    for col in ("figure", "value", "cases", "target", "stores"):
        table.add_column(col, justify="left" if col in ("figure", "stores") else "right")
    for s in scores:
        target = targets.get(s.label)
        if s.label == "destructive errors":
            value, shown_target = str(int(s.value)), "0"
            style = "green" if s.value == 0 else "red"
        else:
            value, shown_target = fmt(s.value), ("" if target is None else fmt(target))
            style = "" if target is None else ("green" if s.value >= target else "red")
        table.add_row(s.label, f"[{style}]{value}[/]" if style else value, str(s.n), shown_target,
                      str(len(set(s.stores))))
    return table
