"""The bundled intent training phrasings: well formed, balanced enough, shop-neutral, and no eval text."""

from __future__ import annotations

import json
from collections import Counter
from importlib import resources
from pathlib import Path

import pytest

from chatpay.core.turns import INTENTS
from chatpay.nlu.intent import training_files
from chatpay.nlu.text import tokens

MIN_PER_INTENT = 200
MIN_PRODUCT_SHARE = 0.30


def _rows(lang: str = "", name: str = "train.jsonl") -> list[dict[str, str]]:
    """A training file: the legacy classifier's own (no language) or one under ``chatpay/nlu/lang``."""
    if lang:
        raw = resources.files("chatpay.nlu").joinpath("lang", lang, name).read_text(encoding="utf-8")
    else:
        raw = resources.files("chatpay.core.intent_data").joinpath(name).read_text(encoding="utf-8")
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


ALL_ROWS = [row for lang, name in training_files() for row in _rows(lang, name)]
EVAL_CASES = Path(__file__).resolve().parents[2] / "evals" / "cases"


def _eval_texts() -> set[str]:
    texts: set[str] = set()
    for path in EVAL_CASES.glob("*/*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            case = json.loads(line)
            texts.update(filter(None, (case.get("text"), case.get("query"))))
            texts.update(m["content"] for m in case.get("history", ()) if m.get("role") == "user")
            texts.update(t["user"] for t in case.get("turns", ()) if "user" in t)  # not button presses
    return texts


def _key(text: str) -> str:
    return " ".join(tokens(text))


def test_every_training_file_of_every_language_is_well_formed() -> None:
    assert {lang for lang, _ in training_files()} == {"en", "ru"}
    for row in ALL_ROWS:
        assert set(row) == {"text", "intent"} and row["intent"] in INTENTS, row


def test_no_eval_text_appears_in_the_training_data() -> None:
    """An eval case found in the training phrasings would score the classifier on what it memorised.

    This holds for the fitted classifier's files; the legacy classifier's own copy
    (``chatpay/core/intent_data``) was tuned on the demo store's cases and is left as it was.
    """
    training = {_key(row["text"]) for row in ALL_ROWS}
    leaked = sorted(t for t in _eval_texts() if _key(t) in training and len(_key(t).split()) > 2)
    assert leaked == []


def test_the_leak_check_would_catch_a_leak() -> None:
    some_eval = next(t for t in sorted(_eval_texts()) if len(_key(t).split()) > 2)
    assert _key(some_eval.upper() + "!") in {_key(some_eval)}
