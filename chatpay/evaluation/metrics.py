"""Scores of the eval suites: pure functions over what the engine did.

Rates are fractions from 0 to 1. A rate over no cases is ``None`` (not a made-up 0 or 1),
so a store without ``ALL`` cases reports no ``all_accuracy`` rather than a perfect one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

HIST_BINS = 10


def rate(hits: int, total: int) -> float | None:
    """``hits / total`` rounded to 4 places, or ``None`` over nothing."""
    return round(hits / total, 4) if total else None


# ----------------------------------------------------------------- routing


def confusion(pairs: Iterable[tuple[str, str]], labels: Sequence[str]) -> dict[str, dict[str, int]]:
    """``{expected: {got: count}}`` with every label present on both axes."""
    matrix = {e: {g: 0 for g in labels} for e in labels}
    for expected, got in pairs:
        row = matrix.setdefault(expected, {g: 0 for g in labels})
        row[got] = row.get(got, 0) + 1
    return matrix


def per_intent(matrix: dict[str, dict[str, int]]) -> dict[str, dict[str, float | int | None]]:
    """Precision, recall, F1 and support per label, from a confusion matrix."""
    labels = list(matrix)
    out: dict[str, dict[str, float | int | None]] = {}
    for label in labels:
        tp = matrix[label].get(label, 0)
        support = sum(matrix[label].values())
        predicted = sum(matrix[e].get(label, 0) for e in labels)
        precision = rate(tp, predicted)
        recall = rate(tp, support)
        f1 = None
        if precision is not None and recall is not None:
            f1 = round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0
        out[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return out


def confidence_histogram(
    decisions: Iterable[tuple[float, bool]], bins: int = HIST_BINS
) -> dict[str, list[float] | list[int]]:
    """Counts of right and wrong decisions per confidence bin (``[0, 0.1), ..., [0.9, 1.0]``)."""
    right = [0] * bins
    wrong = [0] * bins
    for confidence, ok in decisions:
        i = min(max(int(confidence * bins), 0), bins - 1)
        (right if ok else wrong)[i] += 1
    edges = [round(i / bins, 3) for i in range(bins + 1)]
    return {"edges": edges, "right": right, "wrong": wrong}


# ----------------------------------------------------------------- retrieval


def first_rank(ranked: Sequence[str], expected: Iterable[str]) -> int | None:
    """The 1-based rank of the first expected key in ``ranked``, or ``None``."""
    wanted = set(expected)
    for i, key in enumerate(ranked, 1):
        if key in wanted:
            return i
    return None


def hit_at(ranked: Sequence[str], expected: Iterable[str], k: int) -> bool:
    rank = first_rank(ranked, expected)
    return rank is not None and rank <= k


def reciprocal_rank(ranked: Sequence[str], expected: Iterable[str]) -> float:
    rank = first_rank(ranked, expected)
    return 1.0 / rank if rank else 0.0


def ndcg_at(ranked: Sequence[str], expected: Iterable[str], k: int = 3) -> float:
    """Normalised discounted cumulative gain at ``k`` with binary relevance.

    Every expected key counts as relevant once; the ideal ranking puts
    ``min(len(expected), k)`` of them first.
    """
    wanted = set(expected)
    if not wanted:
        return 0.0
    seen: set[str] = set()
    dcg = 0.0
    for i, key in enumerate(ranked[:k]):
        if key in wanted and key not in seen:
            seen.add(key)
            dcg += 1.0 / math.log2(i + 2)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(wanted), k)))
    return dcg / ideal


def mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


# ----------------------------------------------------------------- usage


def usage_totals(records: Iterable[Any]) -> dict[str, Any]:
    """Calls, tokens and cost over usage records (offline records count as no call).

    ``cost_usd`` is ``None`` when any model call had no known price.
    """
    calls = prompt = completion = 0
    cost = 0.0
    unknown = False
    for r in records:
        if r.kind == "offline":
            continue
        calls += 1
        prompt += r.prompt_tokens
        completion += r.completion_tokens
        if r.cost_usd is None:
            unknown = True
        else:
            cost += float(r.cost_usd)
    return {
        "llm_calls": calls,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "cost_usd": None if unknown else round(cost, 6),
    }
