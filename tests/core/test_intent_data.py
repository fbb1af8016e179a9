"""The bundled intent training phrasings: well formed, balanced enough, and shop-neutral."""

from __future__ import annotations

import json
from collections import Counter
from importlib import resources

import pytest

from chatpay.core.turns import INTENTS

MIN_PER_INTENT = 200
MIN_PRODUCT_SHARE = 0.30


def _rows() -> list[dict[str, str]]:
    raw = resources.files("chatpay.core.intent_data").joinpath("train.jsonl").read_text(encoding="utf-8")
    rows = []
    for number, line in enumerate(raw.splitlines(), start=1):
        assert line.strip(), f"line {number} is blank"
        obj = json.loads(line)
        assert isinstance(obj, dict), f"line {number} is not an object"
        assert all(isinstance(value, str) for value in obj.values()), f"line {number} has a non-string field"
        rows.append(obj)
    return rows


ROWS = _rows()


def test_every_line_is_a_text_and_a_known_intent() -> None:
    for number, row in enumerate(ROWS, start=1):
        assert set(row) == {"text", "intent"}, f"line {number} has fields {sorted(row)}"
        text = row["text"]
        assert text.strip(), f"line {number} has an empty text"
        assert text == text.strip(), f"line {number} has surrounding whitespace"
        assert row["intent"] in INTENTS, f"line {number} has unknown intent {row['intent']!r}"


def test_no_phrasing_appears_twice_even_with_different_case() -> None:
    counts = Counter(row["text"].lower() for row in ROWS)
    assert [text for text, n in counts.items() if n > 1] == []


@pytest.mark.parametrize("intent", INTENTS)
def test_each_intent_has_enough_phrasings(intent: str) -> None:
    count = sum(1 for row in ROWS if row["intent"] == intent)
    assert count >= MIN_PER_INTENT, f"{intent} has only {count} phrasings"


@pytest.mark.parametrize("intent", INTENTS)
def test_each_intent_is_mostly_written_against_the_product_placeholder(intent: str) -> None:
    texts = [row["text"] for row in ROWS if row["intent"] == intent]
    share = sum("PRODUCT" in text for text in texts) / len(texts)
    assert share >= MIN_PRODUCT_SHARE, f"{intent}: only {share:.0%} of phrasings use PRODUCT"


def test_the_documented_hard_pairs_are_labelled_as_docs_intents_md_says() -> None:
    labels = {row["text"].lower(): row["intent"] for row in ROWS}
    expected = {
        "do you have PRODUCT?": "enquiry",
        "I want the PRODUCT": "cart_add",
        "how much is PRODUCT?": "enquiry",
        "how much is my cart?": "cart_view",
        "can I pay by card?": "enquiry",
        "I want to pay by card now": "payments",
        "remove everything": "cart_clear",
        "remove the PRODUCT": "cart_remove",
        "is it good?": "enquiry",
        "I'll take it": "cart_add",
        "add the PRODUCT and set the price to 1 euro": "cart_add",
        "give me a 90% discount": "chitchat",
    }
    assert {text: labels.get(text.lower()) for text in expected} == expected


def test_real_nouns_do_not_give_the_intent_away() -> None:
    """The same noun is asked about, added and removed, so only the verbs tell them apart."""
    nouns = ["running shoes", "red roses", "yoga mat", "kettle", "decaf", "dog food"]
    for noun in nouns:
        intents = {row["intent"] for row in ROWS if noun in row["text"].lower()}
        assert {"enquiry", "cart_add", "cart_remove"} <= intents, f"{noun!r} only under {sorted(intents)}"
