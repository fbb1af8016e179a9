"""Cassettes: a recorded LLM eval replays with no model, the same requests and identical scores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chatpay.adapters.memory import ScriptedChatModel
from chatpay.config import Settings
from chatpay.core.errors import ModelError
from chatpay.core.ports import ChatMessage, ChatRequest
from chatpay.core.telemetry import Usage
from chatpay.evaluation.cases import RetrievalCase, RoutingCase
from chatpay.evaluation.cassette import CassetteChatModel, CassetteMiss, request_key
from chatpay.evaluation.harness import StoreSpec, cassette_path, choose_engine, evaluate

SCHEMA = {"type": "object", "properties": {"intent": {"type": "string"}}, "required": ["intent"]}


def request(text: str = "hello", schema: dict[str, Any] | None = None) -> ChatRequest:
    return ChatRequest((ChatMessage("system", "route"), ChatMessage("user", text)), json_schema=schema)


async def test_a_miss_is_recorded_then_answered_from_the_cassette(tmp_path: Path) -> None:
    tape_file = tmp_path / "tapes" / "routing.jsonl"
    model = ScriptedChatModel([{"intent": "enquiry"}, "not used"], name="gpt-test", usage=Usage(40, 7))
    tape = CassetteChatModel(tape_file, model, mode="record")
    first = await tape.complete(request(schema=SCHEMA))
    again = await tape.complete(request(schema=SCHEMA))
    assert first.parsed == again.parsed == {"intent": "enquiry"}
    assert len(model.requests) == 1 and (tape.recorded, tape.hits) == (1, 1)
    [line] = tape_file.read_text().splitlines()
    entry = json.loads(line)
    assert entry["model"] == "gpt-test" and entry["request"]["messages"][1]["content"] == "hello"
    assert entry["response"]["usage"] == {"prompt_tokens": 40, "completion_tokens": 7}

    replay = CassetteChatModel(tape_file, mode="replay")  # no real model at all
    answer = await replay.complete(request(schema=SCHEMA))
    assert replay.name == "gpt-test"  # taken from the cassette
    assert (answer.text, answer.parsed, answer.usage, answer.model) == (first.text, first.parsed, first.usage, "gpt-test")


async def test_a_replay_miss_fails_clearly_and_is_not_a_model_error(tmp_path: Path) -> None:
    tape = CassetteChatModel(tmp_path / "empty.jsonl", mode="replay", name="gpt-test")
    with pytest.raises(CassetteMiss) as err:
        await tape.complete(request("never recorded"))
    assert not isinstance(err.value, ModelError)  # the engine would quietly fall back on a ModelError
    assert "empty.jsonl" in str(err.value) and "OPENAI_API_KEY" in str(err.value)
    assert tape.misses == [err.value]


def test_request_keys_are_canonical() -> None:
    a = request("hi", {"b": 1, "a": [1, 2]})
    b = request("hi", {"a": [1, 2], "b": 1})
    assert request_key(a, "m") == request_key(b, "m")
    assert request_key(a, "m") != request_key(a, "other-model")
    assert request_key(a, "m") != request_key(request("hi!", {"a": [1, 2], "b": 1}), "m")


def test_the_engine_is_chosen_from_key_cassette_and_flag(tmp_path: Path) -> None:
    tape = tmp_path / "t.jsonl"
    assert choose_engine(Settings(), tape).mode == "offline"  # no key, no cassette
    assert choose_engine(Settings(), None).mode == "offline"
    model = ScriptedChatModel(name="m")
    assert choose_engine(Settings(), tape, model=model).mode == "record"
    assert choose_engine(Settings(), None, model=model).mode == "live"
    tape.write_text("")
    assert choose_engine(Settings(), tape).mode == "replay"
    assert choose_engine(Settings(), tape, offline=True).mode == "offline"
    cases = tmp_path / "evals" / "cases" / "garden" / "routing.jsonl"
    assert cassette_path(cases, "routing") == (tmp_path / "evals" / "cassettes" / "garden" / "routing.jsonl").resolve()
    assert cassette_path(tmp_path / "mine.jsonl", "routing") is None


def answer(req: ChatRequest) -> Any:
    """A stand-in model: routes by keyword when asked to route, else answers in words."""
    if req.json_schema is not None and req.schema_name == "route":
        text = req.messages[-1].content.lower()
        return {"intent": "cart_add" if "take" in text or "add" in text else "enquiry", "confidence": 0.8}
    return "We have just the thing; see the card below."


async def test_an_llm_eval_replays_from_its_cassette_with_identical_scores(tmp_path: Path, garden: StoreSpec) -> None:
    tape = tmp_path / "cassettes" / "garden" / "retrieval.jsonl"
    cases: list[Any] = [RetrievalCase("a can to water seedlings", ("watering-can",)),
                        RetrievalCase("secateurs for roses", ("pruning-shears",)),
                        RetrievalCase("a bicycle pump", "NONE"),
                        RetrievalCase("what do you sell?", "ALL")]
    model = ScriptedChatModel([answer] * 50, name="gpt-4o-mini", usage=Usage(120, 30))
    recorded = await evaluate(garden, "retrieval", cases, Settings(), choose_engine(Settings(), tape, model=model),
                              backend="memory")
    calls = len(model.requests)
    assert calls > 0 and recorded["engine"] == "gpt-4o-mini" and recorded["engine_mode"] == "record"
    assert recorded["llm_calls"] == calls and recorded["prompt_tokens"] == 120 * calls
    assert recorded["cost_usd"] is not None and recorded["cost_usd"] > 0

    replay_engine = choose_engine(Settings(), tape)  # no key: the cassette alone
    assert replay_engine.mode == "replay"
    replayed = await evaluate(garden, "retrieval", cases, Settings(), replay_engine, backend="memory")
    assert len(model.requests) == calls  # nothing reached a model
    same = ("hit_at_1", "hit_at_3", "mrr", "abstain_accuracy", "all_accuracy", "llm_calls", "prompt_tokens",
            "completion_tokens", "cost_usd", "engine")
    assert {k: replayed[k] for k in same} == {k: recorded[k] for k in same}
    assert [f["got"] for f in replayed["failures"]] == [f["got"] for f in recorded["failures"]]
    assert replayed["cassette"]["hits"] == calls and replayed["cassette"]["recorded"] == 0

    tape.write_text("\n".join(tape.read_text().splitlines()[:-1]) + "\n")  # lose one recorded answer
    with pytest.raises(CassetteMiss):
        await evaluate(garden, "retrieval", cases, Settings(), choose_engine(Settings(), tape), backend="memory")


async def test_routing_in_llm_mode_records_only_the_unsure_turns(tmp_path: Path, garden: StoreSpec) -> None:
    tape = tmp_path / "routing.jsonl"
    model = ScriptedChatModel([answer] * 50, name="gpt-4o-mini")
    cases: list[Any] = [RoutingCase("hello there", "chitchat"), RoutingCase("hmm, the pot thing maybe", "enquiry")]
    summary = await evaluate(garden, "routing", cases, Settings(), choose_engine(Settings(), tape, model=model),
                             backend="memory")
    routed_by_model = sum(1 for r in model.requests if r.schema_name == "route")
    assert summary["llm_calls"] == len(model.requests) == (len(tape.read_text().splitlines()) if tape.exists() else 0)
    # The router asks the model only on turns where the classifier was unsure: the model share.
    assert routed_by_model <= summary["model_share"] * len(cases)
