"""The scores: confusion, per-intent precision/recall, hit@k, MRR, nDCG@3, histograms, usage."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from chatpay.core.telemetry import UsageRecord
from chatpay.evaluation import metrics

LABELS = ["enquiry", "cart_add", "chitchat"]


def test_confusion_and_per_intent_scores() -> None:
    pairs = [("enquiry", "enquiry")] * 8 + [("enquiry", "cart_add")] * 2 + [("cart_add", "cart_add")] * 5
    matrix = metrics.confusion(pairs, LABELS)
    assert matrix["enquiry"] == {"enquiry": 8, "cart_add": 2, "chitchat": 0}
    scores = metrics.per_intent(matrix)
    assert scores["enquiry"] == {"precision": 1.0, "recall": 0.8, "f1": pytest.approx(0.8889, abs=1e-4), "support": 10}
    assert scores["cart_add"]["precision"] == pytest.approx(5 / 7, abs=1e-4)
    assert scores["chitchat"] == {"precision": None, "recall": None, "f1": None, "support": 0}


def test_rates_over_nothing_are_none_not_perfect() -> None:
    assert metrics.rate(0, 0) is None
    assert metrics.mean([]) is None
    assert metrics.rate(2, 3) == 0.6667


def test_hit_at_k_and_reciprocal_rank_use_the_first_expected_key() -> None:
    ranked = ["a", "b", "c", "d"]
    assert not metrics.hit_at(ranked, ["c"], 1)
    assert metrics.hit_at(ranked, ["c"], 3)
    assert metrics.hit_at(ranked, ["z", "b"], 2)
    assert metrics.reciprocal_rank(ranked, ["c", "d"]) == pytest.approx(1 / 3)
    assert metrics.reciprocal_rank(ranked, ["z"]) == 0.0


def test_ndcg_at_3_rewards_relevant_keys_early() -> None:
    assert metrics.ndcg_at(["a", "b", "c"], ["a"]) == 1.0
    assert metrics.ndcg_at(["x", "a", "c"], ["a"]) == pytest.approx(1 / math.log2(3))
    # Two relevant keys: finding both in the top 3 beats finding one first.
    both_late = metrics.ndcg_at(["x", "a", "b"], ["a", "b"])
    one_first = metrics.ndcg_at(["a", "x", "y"], ["a", "b"])
    assert both_late == pytest.approx((1 / math.log2(3) + 0.5) / (1 + 1 / math.log2(3)))
    assert one_first == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert metrics.ndcg_at(["x", "y", "z", "a"], ["a"]) == 0.0
    assert metrics.ndcg_at(["a", "a", "a"], ["a", "b"]) < 1.0  # a key counts once


def test_confidence_histogram_separates_right_from_wrong() -> None:
    hist = metrics.confidence_histogram([(0.95, True), (1.0, True), (0.35, False), (0.05, True), (0.31, False)])
    assert hist["edges"][0] == 0.0 and hist["edges"][-1] == 1.0
    assert hist["right"][9] == 2 and hist["right"][0] == 1
    assert hist["wrong"][3] == 2 and sum(hist["wrong"]) == 2


def _usage(kind: str, prompt: int, completion: int, cost: Decimal | None) -> UsageRecord:
    return UsageRecord("b", "t", "turn", "router", kind, "m", "m", prompt, completion, cost, 1.0)  # type: ignore[arg-type]


def test_usage_totals_count_model_calls_and_keep_unknown_cost_unknown() -> None:
    records = [_usage("chat", 100, 10, Decimal("0.001")), _usage("offline", 0, 0, Decimal(0)),
               _usage("chat", 50, 5, Decimal("0.0005"))]
    assert metrics.usage_totals(records) == {"llm_calls": 2, "prompt_tokens": 150, "completion_tokens": 15,
                                             "cost_usd": 0.0015}
    assert metrics.usage_totals([*records, _usage("chat", 1, 1, None)])["cost_usd"] is None


def test_a_turn_is_destructive_only_when_it_took_away_what_should_stay() -> None:
    from chatpay.evaluation.suites import is_destructive

    assert is_destructive({"a": 1, "b": 2}, {"a": 1, "b": 2}, {"a": 1})  # b was removed on a guess
    assert is_destructive({"a": 2}, {"a": 2}, {"a": 1})  # lowered
    assert not is_destructive({"a": 1, "b": 1}, {"a": 1}, {"a": 1})  # b never added: a miss, not harm
    assert not is_destructive({"a": 1}, {"a": 1, "b": 1}, {"a": 1})  # b removed as asked
    assert not is_destructive(None, {"a": 1}, {})  # the case does not say
