"""The shipped intent classifier: fitted offline, loaded without training, reads Russian too."""

from __future__ import annotations

import pytest

from chatpay.nlu.intent import default_intent_classifier, features


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("do you have PRODUCT?", "enquiry"),
        ("add 2 PRODUCT", "cart_add"),
        ("remove the PRODUCT", "cart_remove"),
        ("what's in my basket", "cart_view"),
        ("checkout please", "payments"),
        ("hi there", "chitchat"),
        ("добавь два PRODUCT", "cart_add"),
        ("убери PRODUCT из корзины", "cart_remove"),
        ("что у меня в корзине", "cart_view"),
        ("оформить заказ", "payments"),
        ("сколько стоит PRODUCT?", "enquiry"),
    ],
)
def test_clear_phrasings_in_both_languages(text: str, intent: str) -> None:
    assert default_intent_classifier().predict(text)[0][0] == intent


def test_probabilities_cover_every_intent_and_sum_to_one() -> None:
    ranked = default_intent_classifier().predict("hmm")
    assert len(ranked) == 7
    assert abs(sum(p for _, p in ranked) - 1.0) < 1e-6


def test_placeholders_are_markers_not_words() -> None:
    feats = features("add PRODUCT in VARIANT")
    assert "w:‹p›" in feats and "w:‹v›" in feats
    assert not any("product" in f for f in feats)
