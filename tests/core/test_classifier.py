"""The local intent classifier: delexicalised input, cached weights, the hard pairs."""

from __future__ import annotations

from pathlib import Path

import pytest

import chatpay.core.classifier as classifier
from chatpay.core.classifier import IntentClassifier, default_classifier, load_training_data
from chatpay.core.mentions import MentionIndex
from tests.core.shop import garden_shop


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(classifier, "_DEFAULT", None)
    return tmp_path


def test_cached_weights_predict_exactly_like_a_fresh_training(fresh_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trained = default_classifier()
    [cache] = list((fresh_cache / "chatpay").glob("intent-classifier-*.json"))
    monkeypatch.setattr(classifier, "_DEFAULT", None)
    loaded = default_classifier()
    assert loaded is not trained
    for text in ("add 2 PRODUCT", "do you have PRODUCT ?", "checkout", "hi", "empty my cart"):
        assert loaded.predict(text) == trained.predict(text)
    cache.write_text("{not json")  # a broken cache is retrained, not trusted
    monkeypatch.setattr(classifier, "_DEFAULT", None)
    assert default_classifier().predict("checkout")[0][0] == "payments"


@pytest.mark.parametrize(
    ("text", "intent"),
    [("do you have basil seeds?", "enquiry"), ("I want the basil seeds", "cart_add"),
     ("how much is the watering can?", "enquiry"), ("how much is my cart?", "cart_view"),
     ("can I pay by card?", "enquiry"), ("I want to pay by card now", "payments"),
     ("remove everything", "cart_clear"), ("remove the watering can", "cart_remove"),
     ("thanks, bye!", "chitchat")],
)
def test_the_hard_pairs_on_a_shop_the_classifier_never_saw(text: str, intent: str) -> None:
    delex = MentionIndex(garden_shop()).delexicalise(text)
    assert default_classifier().predict(delex.text)[0][0] == intent


def test_product_names_carry_no_intent_signal() -> None:
    """Swapping which product is named never changes the decision: names become PRODUCT first."""
    index = MentionIndex(garden_shop())
    for template in ("add two {}", "do you sell {}?", "take the {} out of my cart"):
        decisions = {default_classifier().predict(index.delexicalise(template.format(name)).text)[0][0]
                     for name in ("basil seeds", "watering can", "rose fertiliser", "pruning shears")}
        assert len(decisions) == 1, template


def test_training_is_deterministic() -> None:
    examples = load_training_data()[:300]
    a, b = IntentClassifier().fit(examples, epochs=3), IntentClassifier().fit(examples, epochs=3)
    assert a.weights == b.weights


def test_a_particle_in_a_product_name_never_names_the_product() -> None:
    """A shop of "Lace-Up Work Boots": "how much all up" asks the cart's total, so "up" stays a word
    (it became PRODUCT and the question was searched as a product); "lace up boots" still names them."""
    from chatpay.core.catalog import Catalog
    from tests.core.shop import product, variant

    index = MentionIndex(Catalog.of("garden", "EUR", [
        product("boots", "Steel Cap Lace-Up Work Boots", "Boots.", [variant("b", "Default Title", "99.00")]),
        *garden_shop()]))
    assert index.delexicalise("how much all up").text == "how much all up"
    assert "PRODUCT" in index.delexicalise("add the lace up boots").text
