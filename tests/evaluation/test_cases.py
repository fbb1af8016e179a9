"""Eval case files: valid ones load, bad ones name the file, the line and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatpay.core.errors import InvalidInput
from chatpay.evaluation.cases import (
    Conversation,
    RetrievalCase,
    RoutingCase,
    check_keys,
    load_cases,
)

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, *lines: object) -> Path:
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def test_routing_cases_load_with_history_and_skip_comments(tmp_path: Path) -> None:
    path = write(tmp_path, "# hard pairs", {"text": "do you have decaf?", "intent": "enquiry"}, "",
                 {"text": "yes", "intent": "cart_add",
                  "history": [{"role": "user", "content": "tell me about the decaf"},
                              {"role": "assistant", "content": "Would you like it?"}]})
    cases = load_cases("routing", path)
    assert [c.text for c in cases] == ["do you have decaf?", "yes"]
    assert isinstance(cases[1], RoutingCase) and cases[1].line == 4
    assert cases[1].id == "yes ⟵ tell me about the decaf"  # same text after other history stays distinct
    assert cases[1].to_json()["history"][1]["role"] == "assistant"


def test_retrieval_expected_may_be_keys_none_or_all(tmp_path: Path) -> None:
    path = write(tmp_path, {"query": "decaf", "expected": ["swiss-water-decaf"]},
                 {"query": "wine", "expected": "NONE"}, {"query": "what do you sell", "expected": "ALL"})
    kinds = [c.kind for c in load_cases("retrieval", path)]
    assert kinds == ["list", "NONE", "ALL"]


@pytest.mark.parametrize(
    ("suite", "line", "field", "words"),
    [
        ("routing", {"text": "hi", "intent": "greeting"}, "intent", "must be one of"),
        ("routing", {"text": "", "intent": "chitchat"}, "text", "non-empty"),
        ("routing", {"text": "yes", "intent": "cart_add", "history": [{"role": "bot", "content": "x"}]},
         "history[0].role", "'user' or 'assistant'"),
        ("routing", {"text": "hi", "intent": "chitchat", "lang": "en"}, "lang", "unknown field"),
        ("retrieval", {"query": "tea", "expected": "SOME"}, "expected", "'NONE' or 'ALL'"),
        ("retrieval", {"query": "tea", "expected": []}, "expected", "non-empty list"),
        ("retrieval", {"query": "tea", "expected": ["ok", 3]}, "expected[1]", "handle"),
        ("conversations", {"name": "c", "turns": [{"user": "add 2", "cart": {"mug": 0}}]}, "turns[0].cart.mug",
         "at least 1"),
        ("conversations", {"name": "c", "turns": [{"user": "add", "subtotal": 12.5}]}, "turns[0].subtotal",
         "decimal string"),
        ("conversations", {"name": "c", "turns": [{"user": "hi", "intent": "hello"}]}, "turns[0].intent",
         "must be one of"),
        ("conversations", {"name": "c", "turns": []}, "turns", "non-empty"),
        ("conversations", {"name": "c", "turns": [{"user": "pay", "press": "Checkout"}]}, "turns[0]",
         "exactly one of 'user'"),
        ("conversations", {"name": "c", "turns": [{"press": "Checkout", "order": "done"}]}, "turns[0].order",
         "pending, paid"),
    ],
)
def test_a_bad_case_names_file_line_and_field(
    tmp_path: Path, suite: str, line: dict[str, object], field: str, words: str
) -> None:
    good = {"routing": {"text": "hi", "intent": "chitchat"}, "retrieval": {"query": "tea", "expected": "ALL"},
            "conversations": {"name": "ok", "turns": [{"user": "hi"}]}}[suite]
    path = write(tmp_path, good, line)
    with pytest.raises(InvalidInput) as err:
        load_cases(suite, path)
    message = str(err.value)
    assert str(path) in message and "line 2" in message and f"field '{field}'" in message and words in message


def test_broken_json_and_duplicate_names_are_reported_by_line(tmp_path: Path) -> None:
    path = write(tmp_path, {"text": "hi", "intent": "chitchat"}, '{"text": "oops", ')
    with pytest.raises(InvalidInput, match=r"line 2: not valid JSON"):
        load_cases("routing", path)
    dup = write(tmp_path, {"name": "a", "turns": [{"user": "hi"}]}, {"name": "a", "turns": [{"user": "yo"}]})
    with pytest.raises(InvalidInput, match=r"line 2, field 'name': duplicate name \(first on line 1\)"):
        load_cases("conversations", dup)


def test_missing_and_empty_files_are_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        load_cases("routing", tmp_path / "nope.jsonl")
    with pytest.raises(InvalidInput, match="holds no cases"):
        load_cases("routing", write(tmp_path, "# only a comment"))


def test_cases_naming_unknown_products_are_caught_against_the_store(tmp_path: Path) -> None:
    cases = load_cases("retrieval", write(tmp_path, {"query": "mug", "expected": ["mug"]},
                                          {"query": "returns", "expected": ["policy:refunds"]}))
    with pytest.raises(InvalidInput, match=r"line 2, field 'expected\[0\]': 'policy:refunds' is not"):
        check_keys(cases, {"mug", "policy:returns"}, source="cases.jsonl")
    convo = load_cases("conversations", write(tmp_path, {"name": "x", "turns": [{"user": "add", "cart": {"cup": 1}}]}))
    with pytest.raises(InvalidInput, match=r"turns\[0\]\.cart\.cup"):
        check_keys(convo, {"mug"}, source="c.jsonl")


@pytest.mark.parametrize("store", ["demo", "bikes"])
@pytest.mark.parametrize("suite", ["routing", "retrieval", "conversations"])
def test_committed_cases_are_valid(store: str, suite: str) -> None:
    cases = load_cases(suite, REPO / "evals" / "cases" / store / f"{suite}.jsonl")
    kind = {"routing": RoutingCase, "retrieval": RetrievalCase, "conversations": Conversation}[suite]
    assert cases and all(isinstance(c, kind) for c in cases)
