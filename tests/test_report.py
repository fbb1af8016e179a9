"""``chatpay report``: figures read back from the records the stores wrote, to the exact decimal."""

from __future__ import annotations

import argparse
import io
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

import pytest

from chatpay.adapters.memory import FixedClock
from chatpay.adapters.mongo import embedded_database, mongo_stores
from chatpay.bootstrap import build
from chatpay.config import Settings
from chatpay.core.errors import InvalidInput
from chatpay.core.pricing import cost_usd
from chatpay.core.telemetry import Event, UsageRecord
from chatpay.report import add_parser, build_report, parse_since, report_as_json, run
from tests.core.shop import garden_shop
from tests.core.test_service import runtime_with, say

START = datetime(2026, 1, 1, tzinfo=UTC)
# More digits than Decimal128 keeps, so the store keeps it as a string (encode_cost).
LONG_COST = Decimal("0.000001234567890123456789012345678901234567")


@dataclass
class Expected:
    """What the records of one business add up to, computed here from the records themselves."""

    cost: Decimal = field(default_factory=Decimal)
    prompt: int = 0
    completion: int = 0
    calls: int = 0
    unknown: int = 0
    turns: set[str] = field(default_factory=set)
    rows: dict[tuple[str, str], Decimal] = field(default_factory=dict)


async def generate(db: Any, business: str, *, seed: int, turns: int, start: datetime = START,
                   step: timedelta = timedelta(hours=1)) -> Expected:
    """``turns`` turns of one business through the real Mongo stores: model calls of priced and
    unpriced models, offline turns, one cost too long for Decimal128; and funnel events."""
    stores = mongo_stores(db)
    rng = random.Random(seed)
    exp = Expected()
    with localcontext() as exact:
        exact.prec = 100
        for n in range(turns):
            at = start + step * n
            thread, turn = f"{business}-shopper-{n % 7}", f"{business}-turn-{n}"
            calls: list[tuple[str, str, str, int, int, Decimal | None]] = []
            if n % 5 == 0:
                calls.append(("turn", "offline", "offline", 0, 0, Decimal(0)))
            else:
                for _ in range(rng.randint(1, 3)):
                    agent = rng.choice(["turn", "enquiry", "cart_add", "payments"])
                    model = rng.choice(["gpt-4o-mini", "gpt-4.1-nano", "gpt-4o", "mystery-model"])
                    p, c = rng.randint(1, 5000), rng.randint(0, 900)
                    calls.append((agent, model, "chat", p, c, cost_usd(model, p, c)))
                if n % 11 == 3:
                    calls.append(("enquiry", "text-embedding-3-small", "embedding", 17, 0, LONG_COST))
            for agent, model, kind, p, c, cost in calls:
                await stores.usage.record(UsageRecord(
                    business_id=business, thread_id=thread, turn_id=turn, agent=agent, kind=kind,  # type: ignore[arg-type]
                    model=model, engine="test", prompt_tokens=p, completion_tokens=c, cost_usd=cost,
                    latency_ms=float(rng.randint(50, 3000)), at=at))
                exp.turns.add(turn)
                exp.prompt += p
                exp.completion += c
                exp.calls += kind != "offline"
                if cost is None:
                    exp.unknown += 1
                else:
                    exp.cost += cost
                    exp.rows[(agent, model)] = exp.rows.get((agent, model), Decimal(0)) + cost
            for name in (["EnquiryAnswered"] if n % 2 == 0 else []) + (["CartItemAdded"] if n % 3 == 0 else []):
                await stores.events.record(Event(business, thread, turn, name, {}, at))
    return exp


def report_of(db: Any, **kw: Any) -> dict[str, Any]:
    return {b["business_id"]: b for b in report_as_json(build_report(db, **kw))["businesses"]}


async def test_total_cost_equals_the_sum_of_the_usage_records_to_the_cent_and_exactly() -> None:
    db = embedded_database()
    acme = await generate(db, "acme", seed=1, turns=120)
    bolt = await generate(db, "bolt", seed=2, turns=80)
    assert db["usage"].count_documents({"cost_usd": {"$type": "string"}}) > 0  # the long cost took its path
    found = report_of(db)
    assert sorted(found) == ["acme", "bolt"]
    for name, exp in (("acme", acme), ("bolt", bolt)):
        got = found[name]
        assert Decimal(got["cost_usd"]) == exp.cost  # every digit
        assert Decimal(got["cost_usd"]).quantize(Decimal("0.01")) == exp.cost.quantize(Decimal("0.01"))
        with localcontext() as exact:
            exact.prec = 100
            assert sum((Decimal(r["cost_usd"]) for r in got["agents"]), Decimal(0)) == exp.cost
        assert {(r["agent"], r["model"]): Decimal(r["cost_usd"]) for r in got["agents"]
                if r["model"] != "mystery-model"} == exp.rows  # the unpriced model costs nothing
        assert all(r["cost_usd"] == "0" and r["cost_unknown_calls"] > 0
                   for r in got["agents"] if r["model"] == "mystery-model")
        assert (got["prompt_tokens"], got["completion_tokens"]) == (exp.prompt, exp.completion)
        assert (got["model_calls"], got["cost_unknown_calls"]) == (exp.calls, exp.unknown)
        assert got["turns"] == len(exp.turns)
        assert sum(r["prompt_tokens"] for r in got["agents"]) == exp.prompt
    # The whole database's cost, from the raw documents, is the two businesses' sum.
    with localcontext() as exact:
        exact.prec = 100
        raw = sum((Decimal(str(d["cost_usd"])) for d in db["usage"].find({"cost_usd": {"$ne": None}})), Decimal(0))
        assert build_report(db).cost_usd == raw == acme.cost + bolt.cost


async def test_one_business_is_reported_alone_and_as_in_the_full_report() -> None:
    db = embedded_database()
    await generate(db, "acme", seed=3, turns=40)
    bolt = await generate(db, "bolt", seed=4, turns=30)
    out = io.StringIO()
    assert run(argparse.Namespace(business="bolt", since=None, json=True), db, out=out) == 0
    doc = json.loads(out.getvalue())
    assert doc["business"] == "bolt" and [b["business_id"] for b in doc["businesses"]] == ["bolt"]
    assert doc["businesses"][0] == report_of(db)["bolt"]
    assert Decimal(doc["businesses"][0]["cost_usd"]) == bolt.cost
    assert "acme" not in out.getvalue()  # no thread, turn or figure of the other business


async def test_the_funnel_of_real_turns_counts_threads_turns_and_orders_per_business() -> None:
    db = embedded_database()
    stores = mongo_stores(db)
    garden = await runtime_with(stores)
    await say(garden, "do you have basil seeds?", thread="ann")
    await say(garden, "add 2 basil seeds and a watering can", thread="ann")  # two items, one turn
    await say(garden, callback_data="p", thread="ann")  # the sandbox: created and paid at once
    await say(garden, "add 3 tomato seeds", thread="bob")
    await say(garden, "add a watering can", thread="bob")
    plots = build(Settings(business_id="plots"), stores=stores, no_embedder=True, clock=FixedClock())
    await plots.import_catalog(garden_shop("plots"))
    await say(plots, "do you have basil seeds?", thread="cara")
    await say(plots, "do you sell tomato seeds?", thread="cara")
    await say(plots, "what watering cans do you have?", thread="dan")

    found = report_of(db)
    assert found["garden"]["funnel"] == {
        "enquiry": {"threads": 1, "count": 1}, "cart": {"threads": 2, "count": 3},
        "checkout": {"threads": 1, "count": 1}, "paid": {"threads": 1, "count": 1}}
    assert found["plots"]["funnel"] == {
        "enquiry": {"threads": 2, "count": 3}, "cart": {"threads": 0, "count": 0},
        "checkout": {"threads": 0, "count": 0}, "paid": {"threads": 0, "count": 0}}
    assert (found["garden"]["turns"], found["plots"]["turns"]) == (5, 3)
    for b in found.values():  # offline: turns, no model call, no cost
        assert b["model_calls"] == 0 and b["cost_usd"] == "0"
        assert [(r["agent"], r["model"], r["turns"]) for r in b["agents"]] == [("turn", "offline", b["turns"])]
        # Offline turns call no model: their rows have no model-call latency; the turn latency is above.
        latency = b["turn_latency_ms"]  # every real turn leaves a TurnCompleted event with its time
        assert latency["turns"] == b["turns"] and 0 < latency["p50"] <= latency["p95"]
        assert b["agents"][0]["latency_ms"] == {"p50": None, "p95": None, "records": 0}

    # A payment turn run again (at least once with MongoDB) records OrderPaid twice: one order still.
    [paid] = [e for e in await stores.events.list("garden", "ann") if e.name == "OrderPaid"]
    await stores.events.record(Event("garden", "ann", "replayed-turn", "OrderPaid", dict(paid.data), paid.at))
    assert report_of(db)["garden"]["funnel"]["paid"] == {"threads": 1, "count": 1}


async def test_model_call_latency_percentiles_and_errors_are_read_from_the_records() -> None:
    db = embedded_database()
    stores = mongo_stores(db)
    for i, ms in enumerate([100.0, 200.0, 300.0, 400.0, 5000.0]):
        await stores.usage.record(UsageRecord("acme", "t", f"turn{i}", "enquiry", "chat", "gpt-4o-mini", "x", 10, 5,
                                              cost_usd("gpt-4o-mini", 10, 5), ms, START))
    for business, turn, ms, error in (("acme", "turn1", 120.0, "ModelError: x"), ("acme", "turn2", 80.0, None),
                                      ("acme", "turn3", 400.0, None), ("bolt", "b", 10.0, "StorageError: y")):
        await stores.events.record(Event(business, "t", turn, "TurnCompleted",
                                         {"intent": "enquiry", "ms": ms, "error": error, "engine": "x"}, START))
    found = report_of(db)
    [row] = found["acme"]["agents"]
    assert row["latency_ms"] == {"p50": 300.0, "p95": 5000.0, "records": 5}  # nearest rank
    assert found["acme"]["turn_latency_ms"] == {"p50": 120.0, "p95": 400.0, "turns": 3}
    assert (found["acme"]["errors"], found["bolt"]["errors"]) == (1, 1)
    assert found["bolt"]["turns"] == 0 and found["bolt"]["agents"] == []


async def test_since_keeps_records_from_that_moment_on() -> None:
    db = embedded_database()
    # One turn an hour from 2026-01-01 00:00 UTC: turn n at n hours.
    await generate(db, "acme", seed=5, turns=72)
    stores = mongo_stores(db)
    await stores.events.record(Event("acme", "t", "x", "TurnCompleted", {"ms": 5.0, "error": "ModelError: x"},
                                     datetime.now(UTC)))

    def turns_since(text: str) -> int:
        out = io.StringIO()
        run(argparse.Namespace(business=None, since=parse_since(text), json=True), db, out=out)
        doc = json.loads(out.getvalue())
        return doc["businesses"][0]["turns"] if doc["businesses"] else 0

    assert turns_since("2026-01-01") == 72
    assert turns_since("2026-01-02") == 48  # midnight UTC, inclusive
    assert turns_since("2026-01-03T12:00:00+02:00") == 14  # 10:00 UTC: turns 58..71
    assert turns_since("2026-01-03T10:00:00") == 14  # no zone: UTC
    assert turns_since("2026-02-01") == 0
    later = build_report(db, since=parse_since("2026-01-03T10:00:00Z")).businesses[0]
    everything = build_report(db).businesses[0]
    assert later.cost_usd < everything.cost_usd and later.funnel["enquiry"].count == 7  # even turns 58..70
    assert everything.funnel["enquiry"].count == 36
    assert later.errors == 1  # the failed turn was recorded just now
    assert build_report(db, since=parse_since("2100-01-01")).businesses == []


async def test_the_json_document_keeps_its_documented_shape() -> None:
    db = embedded_database()
    await generate(db, "acme", seed=6, turns=12)
    out = io.StringIO()
    args = argparse.Namespace(business=None, since="2026-01-01", json=True)
    assert run(args, db, out=out) == 0
    doc = json.loads(out.getvalue())
    assert list(doc) == ["schema", "since", "business", "currency", "businesses"]
    assert (doc["schema"], doc["since"], doc["business"], doc["currency"]) == (
        "chatpay.report/1", "2026-01-01T00:00:00+00:00", None, "USD")
    [b] = doc["businesses"]
    assert list(b) == ["business_id", "turns", "model_calls", "prompt_tokens", "completion_tokens", "cost_usd",
                       "cost_unknown_calls", "turn_latency_ms", "errors", "funnel", "agents"]
    assert list(b["funnel"]) == ["enquiry", "cart", "checkout", "paid"]
    assert isinstance(b["cost_usd"], str) and "E" not in b["cost_usd"]
    for r in b["agents"]:
        assert list(r) == ["agent", "model", "turns", "model_calls", "prompt_tokens", "completion_tokens",
                           "cost_usd", "cost_unknown_calls", "latency_ms"]
        assert isinstance(r["cost_usd"], str) and set(r["latency_ms"]) == {"p50", "p95", "records"}
    assert [(r["agent"], r["model"]) for r in b["agents"]] == sorted((r["agent"], r["model"]) for r in b["agents"])
    again = io.StringIO()
    run(args, db, out=again)
    assert again.getvalue() == out.getvalue()  # the same records, the same document


async def test_the_table_right_aligns_numbers_and_shows_dollars() -> None:
    db = embedded_database()
    exp = await generate(db, "acme", seed=7, turns=30)
    out = io.StringIO()
    assert run(argparse.Namespace(business="acme", since=None, json=False), db, out=out) == 0
    text = out.getvalue()
    assert "acme: 30 turns, all records" in text and "acme: funnel" in text
    total = next(line for line in text.splitlines() if "│ total" in line)
    cells = [c.strip() for c in total.strip("│ ").split("│")]
    assert cells[2] == "30" and cells[6].startswith("≈$")  # the long cost has more digits than the table shows
    shown = Decimal(cells[6].removeprefix("≈$").removesuffix(" *").replace(",", ""))
    assert shown == exp.cost.quantize(Decimal("0.000001")) != exp.cost
    assert cells[6].endswith(" *") and "*: calls whose model has no known price" in text  # mystery-model
    # Right-aligned: the cell's text ends one space before the column's border.
    assert f"{cells[6]} │" in total and f" {cells[2]} │" in total
    offline = next(line for line in text.splitlines() if "│ offline" in line)
    assert [c.strip() for c in offline.strip("│ ").split("│")][2:] == ["6", "0", "0", "0", "$0.00", "-", "-"]
    paid = next(line for line in text.splitlines() if "│ paid" in line)
    assert [c.strip() for c in paid.strip("│ ").split("│")] == ["paid", "0", "0", "orders"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chatpay")
    add_parser(p.add_subparsers(dest="command"))
    return p


@pytest.mark.parametrize("bad", ["2026-13-01", "yesterday", "2026-02-30", "", "01/02/2026"])
def test_a_bad_since_is_one_line_naming_the_option_and_the_value(
        bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_since(bad)
    message = str(caught.value)
    assert message.startswith("--since: ") and repr(bad) in message and "\n" not in message
    with pytest.raises(SystemExit) as stopped:
        parser().parse_args(["report", "--since", bad])
    assert stopped.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "argument --since" in last and repr(bad) in last and "YYYY-MM-DD" in last
    with pytest.raises(InvalidInput, match="--since"):  # a Namespace built by hand is checked too
        run(argparse.Namespace(business=None, since=bad, json=True), embedded_database(), out=io.StringIO())


def test_the_options_parse_and_each_says_its_default() -> None:
    args = parser().parse_args(["report", "--business", "acme", "--since", "2026-03-04", "--json"])
    assert (args.business, args.since, args.json) == ("acme", datetime(2026, 3, 4, tzinfo=UTC), True)
    args = parser().parse_args(["report"])
    assert (args.business, args.since, args.json) == (None, None, False)
    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    options = [a for a in sub.choices["report"]._actions if a.dest != "help"]
    assert {a.dest for a in options} == {"business", "since", "json"}
    assert all(a.help and "default" in a.help for a in options)


async def test_an_unknown_business_or_no_database_is_bad_input() -> None:
    db = embedded_database()
    await generate(db, "acme", seed=8, turns=3)
    with pytest.raises(InvalidInput) as caught:
        build_report(db, business="acm")
    assert str(caught.value) == "--business: no records of business 'acm' (businesses there are: acme)"
    with pytest.raises(InvalidInput, match="not a MongoDB database"):
        run(argparse.Namespace(business=None, since=None, json=True), None, out=io.StringIO())
    empty = io.StringIO()
    assert run(argparse.Namespace(business=None, since=None, json=False), embedded_database(), out=empty) == 0
    assert "no usage or events recorded" in empty.getvalue()
