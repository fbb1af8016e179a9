"""Per-business budgets: caps per UTC day and month, the 80 % warning once, exact USD, reconciliation.

The guard reads one counter per check; the usage records are summed only by reconciliation.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from chatpay.adapters.memory import FixedClock, InMemoryEventLog, ScriptedChatModel, in_memory_stores
from chatpay.adapters.mongo import embedded_database, mongo_stores
from chatpay.adapters.redis.budget import MongoUsageTotals
from chatpay.bootstrap import build
from chatpay.businesses import Budget
from chatpay.config import Settings
from chatpay.core.budget import (
    USD_SCALE,
    BudgetCapReached,
    BudgetGuard,
    InMemoryBudgetCounter,
    Periods,
    Spent,
    period_end,
    usd_units,
)
from chatpay.core.errors import BudgetExceeded, ModelError
from chatpay.core.metering import MeteredChatModel, UsageMeter, call_context
from chatpay.core.ports import ChatMessage, ChatRequest
from chatpay.core.pricing import MILLION, PRICES, cost_usd
from chatpay.core.telemetry import UsageRecord
from tests.core.shop import garden_shop

NOON = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)


def guard(budget: Budget, counter: Any = None, events: Any = None, **kw: Any) -> BudgetGuard:
    return BudgetGuard(budget, counter or InMemoryBudgetCounter(), events, **kw)


# ----------------------------------------------------------------------------- caps and periods


async def test_a_daily_token_cap_refuses_once_reached_and_not_before() -> None:
    g = guard(Budget(daily_tokens=100))
    await g.record("a", 99, Decimal(0), NOON)
    await g.check("a", NOON)  # 99 of 100: still allowed
    await g.record("a", 1, Decimal(0), NOON)
    with pytest.raises(BudgetCapReached) as caught:
        await g.check("a", NOON)
    assert isinstance(caught.value, BudgetExceeded) and isinstance(caught.value, ModelError)
    assert (caught.value.cap, caught.value.period_key, caught.value.spent, caught.value.limit) == (
        "daily_tokens", "day:2026-03-14", 100, 100)
    assert (caught.value.spent_tokens, caught.value.budget_tokens) == (100, 100)
    await g.check("b", NOON)  # another business is untouched


async def test_the_day_rolls_over_at_utc_midnight_and_the_month_on_the_first() -> None:
    g = guard(Budget(daily_tokens=50, monthly_tokens=120))
    last_second = datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC)
    await g.record("a", 50, Decimal(0), last_second)
    with pytest.raises(BudgetCapReached, match="daily_tokens"):
        await g.check("a", last_second)
    feb = last_second + timedelta(seconds=1)
    await g.check("a", feb)  # a new day and a new month
    assert await g.counter.spent("a", feb) == Spent()
    for day in range(1, 4):  # 40 a day for three days: the month's 120 is reached, no day's 50 is
        at = datetime(2026, 2, day, 9, tzinfo=UTC)
        await g.check("a", at)
        await g.record("a", 40, Decimal(0), at)
    with pytest.raises(BudgetCapReached, match="monthly_tokens"):
        await g.check("a", datetime(2026, 2, 28, 23, tzinfo=UTC))
    await g.check("a", datetime(2026, 3, 1, tzinfo=UTC))


async def test_a_time_in_another_zone_counts_in_its_utc_day() -> None:
    g = guard(Budget(daily_tokens=10))
    from zoneinfo import ZoneInfo

    late_in_tokyo = datetime(2026, 3, 15, 8, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 2026-03-14 23:00 UTC
    await g.record("a", 10, Decimal(0), late_in_tokyo)
    with pytest.raises(BudgetCapReached, match="day:2026-03-14"):
        await g.check("a", NOON)


async def test_usd_caps_are_exact_to_the_last_fraction_of_a_cent() -> None:
    nano = cost_usd("gpt-5-nano", 1, 0)  # 5e-8 USD: one input token of the cheapest chat model
    assert nano == Decimal("0.05") / MILLION
    g = guard(Budget(daily_usd=nano * 3))
    for _ in range(2):
        await g.record("a", 1, nano, NOON)
    await g.check("a", NOON)  # 2 x 5e-8 < 1.5e-7
    spent = await g.record("a", 1, nano, NOON)
    assert spent is not None and spent.day_usd == Decimal("1.5E-7") == nano * 3
    with pytest.raises(BudgetCapReached) as caught:
        await g.check("a", NOON)
    assert caught.value.spent == caught.value.limit == Decimal("1.5E-7")


async def test_a_million_small_costs_add_up_exactly() -> None:
    counter = InMemoryBudgetCounter()
    cost = cost_usd("text-embedding-3-small", 7, 0)  # 1.4e-7 USD
    assert cost is not None
    for _ in range(1000):
        await counter.add("a", 7, cost, NOON)
    spent = await counter.spent("a", NOON)
    assert spent.month_usd == Decimal("0.00014") and spent.month_tokens == 7000


def test_every_listed_price_costs_a_whole_number_of_counter_units_per_token() -> None:
    for model, price in PRICES.items():
        for per_million in (price.input_per_million, price.output_per_million):
            per_token_units = per_million * USD_SCALE / MILLION
            assert per_token_units == per_token_units.to_integral_value(), model


def test_unknown_and_finer_costs_never_round_down() -> None:
    assert usd_units(None) == 0
    assert usd_units(Decimal("1E-10")) == 1  # finer than a nano-dollar: counted as one, never as zero
    assert usd_units(Decimal("0.00045")) == 450_000


def test_period_keys_and_ends() -> None:
    p = Periods.of(datetime(2024, 2, 29, 23, 30, tzinfo=UTC))
    assert (p.day_key, p.month_key) == ("day:2024-02-29", "month:2024-02")
    assert period_end(p.day_key) == p.day_end == datetime(2024, 3, 1, tzinfo=UTC)
    assert period_end("month:2024-12") == datetime(2025, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        period_end("week:2024-10")


async def test_no_caps_means_no_counter_traffic() -> None:
    class Refusing(InMemoryBudgetCounter):
        async def spent(self, business_id: str, at: datetime) -> Spent:
            raise AssertionError("read")

        async def add(self, business_id: str, tokens: int, cost_usd: Decimal, at: datetime) -> Spent:
            raise AssertionError("written")

    g = guard(Budget(), Refusing())
    await g.check("a", NOON)
    assert await g.record("a", 10**9, Decimal(100), NOON) is None


# ----------------------------------------------------------------------------- the 80 % warning


async def test_the_warning_is_recorded_once_per_period_when_80_percent_is_reached() -> None:
    events = InMemoryEventLog()
    g = guard(Budget(daily_tokens=100, monthly_tokens=1000), events=events)
    await g.record("a", 79, Decimal(0), NOON, thread_id="t1", turn_id="u1")
    assert events.events == []
    await g.record("a", 1, Decimal(0), NOON, thread_id="t1", turn_id="u2")  # 80 of 100
    await g.record("a", 5, Decimal(0), NOON)
    [warning] = events.events
    assert (warning.business_id, warning.thread_id, warning.turn_id, warning.name) == ("a", "t1", "u2", "BudgetWarning")
    assert warning.data == {"period": "day", "period_key": "2026-03-14", "cap": "daily_tokens", "limit": "100",
                            "spent": "80", "threshold": "80%", "caps": ["daily_tokens"]}
    await g.record("a", 15, Decimal(0), NOON)  # 100: spent
    assert [e.name for e in events.events] == ["BudgetWarning", "BudgetSpent"]
    tomorrow = NOON + timedelta(days=1)
    await g.record("a", 85, Decimal(0), tomorrow)  # a new day warns again; the month is at 185 of 1000
    assert [(e.name, e.data["period_key"]) for e in events.events][-1] == ("BudgetWarning", "2026-03-15")


async def test_many_concurrent_recorders_record_one_warning() -> None:
    events = InMemoryEventLog()
    counter = InMemoryBudgetCounter()
    guards = [guard(Budget(monthly_usd=Decimal("1.00")), counter, events) for _ in range(4)]
    cents = Decimal("0.01")
    await asyncio.gather(*(guards[i % 4].record("a", 1, cents, NOON) for i in range(100)))
    assert [e.name for e in events.events] == ["BudgetWarning", "BudgetSpent"]
    assert events.events[0].data["cap"] == "monthly_usd" and events.events[0].data["limit"] == "1"


async def test_the_first_cap_to_cross_names_the_warning_and_others_are_listed() -> None:
    events = InMemoryEventLog()
    g = guard(Budget(daily_tokens=10, daily_usd=Decimal("0.001")), events=events)
    await g.record("a", 9, Decimal("0.0009"), NOON)
    [warning] = events.events
    assert warning.data["caps"] == ["daily_tokens", "daily_usd"]


# ----------------------------------------------------------------------------- reconciliation


def usage(business: str, at: datetime, prompt: int, completion: int, model: str = "gpt-4o-mini") -> UsageRecord:
    return UsageRecord(business, "t", "u", "enquiry", "chat", model, model, prompt, completion,
                       cost_usd(model, prompt, completion), 12.5, at)


async def seeded_mongo() -> tuple[Any, Any]:
    db = embedded_database("budget")
    stores = mongo_stores(db)
    for rec in [
        usage("a", NOON, 1000, 500),                                    # today
        usage("a", NOON.replace(hour=1), 200, 100),                     # today, earlier
        usage("a", NOON - timedelta(days=3), 10_000, 0),                # this month
        usage("a", NOON.replace(month=2), 99_999, 99_999),              # last month
        usage("a", NOON, 7, 3, model="my-local-llama"),                  # unknown price: tokens only
        usage("b", NOON, 5, 5),                                         # another business
    ]:
        await stores.usage.record(rec)
    return db, stores


async def test_reconciliation_sets_the_counters_from_the_usage_records() -> None:
    db, stores = await seeded_mongo()
    g = guard(Budget(daily_tokens=10**6))
    counter: InMemoryBudgetCounter = g.counter  # type: ignore[assignment]
    await counter.add("a", 123_456, Decimal("9"), NOON)  # drift the records do not back
    day_usd = cost_usd("gpt-4o-mini", 1000, 500) + cost_usd("gpt-4o-mini", 200, 100)  # type: ignore[operator]
    month_usd = day_usd + cost_usd("gpt-4o-mini", 10_000, 0)
    expected = Spent(1500 + 300 + 10, 1500 + 300 + 10 + 10_000, day_usd, month_usd)
    assert await g.reconcile("a", MongoUsageTotals(db), NOON) == expected
    assert await counter.spent("a", NOON) == expected
    assert await g.reconcile("a", stores.usage, NOON) == expected  # a plain usage log, by listing
    assert await g.reconcile("nobody", MongoUsageTotals(db), NOON) == Spent()


async def test_the_first_check_reconciles_and_later_checks_never_touch_the_records() -> None:
    db, _ = await seeded_mongo()

    class Counting(MongoUsageTotals):
        calls = 0

        async def usage_totals(self, business_id: str, periods: Periods) -> Any:
            Counting.calls += 1
            return await super().usage_totals(business_id, periods)

    g = guard(Budget(daily_tokens=1810), usage=Counting(db))
    with pytest.raises(BudgetCapReached):  # the records already hold 1810 tokens today
        await g.check("a", NOON)
    for _ in range(50):
        with pytest.raises(BudgetCapReached):
            await g.check("a", NOON)
    await g.check("b", NOON)
    assert Counting.calls == 2  # once for a, once for b: never per check


# ----------------------------------------------------------------------------- through the meter


def chat() -> ChatRequest:
    return ChatRequest(messages=(ChatMessage("user", "hi"),))


async def test_the_meter_checks_before_and_counts_after_each_call() -> None:
    stores = in_memory_stores()
    g = guard(Budget(daily_tokens=30), events=stores.events)
    model = ScriptedChatModel(["one", "two", "three"])
    metered = MeteredChatModel(model, UsageMeter(stores.usage, FixedClock(NOON), engine="scripted", guard=g))
    with call_context(business_id="a", thread_id="t", turn_id="u"):
        await metered.complete(chat())
        await metered.complete(chat())  # 30 of 30 tokens
        with pytest.raises(BudgetExceeded):
            await metered.complete(chat())
    assert len(model.requests) == 2  # refused before the model was asked
    assert [e.name for e in stores.events.events] == ["BudgetWarning", "BudgetSpent"]  # type: ignore[attr-defined]


async def test_an_unreadable_counter_refuses_the_call_and_an_unwritable_one_does_not_fail_it() -> None:
    class Down(InMemoryBudgetCounter):
        async def spent(self, business_id: str, at: datetime) -> Spent:
            raise ConnectionError("counter down")

        async def add(self, business_id: str, tokens: int, cost_usd: Decimal, at: datetime) -> Spent:
            raise ConnectionError("counter down")

    stores = in_memory_stores()
    model = ScriptedChatModel(["one"])
    meter = UsageMeter(stores.usage, FixedClock(NOON), engine="scripted", guard=guard(Budget(daily_tokens=5), Down()))
    metered = MeteredChatModel(model, meter)
    with call_context(business_id="a"), pytest.raises(ModelError, match="cannot be checked"):
        await metered.complete(chat())
    assert model.requests == []
    meter.guard = guard(Budget(daily_tokens=5_000))
    meter.guard.counter = Down()
    meter.guard.check = guard(Budget()).check  # type: ignore[method-assign]  (reads nothing)
    with call_context(business_id="a"):
        assert (await metered.complete(chat())).text == "one"
    assert len(stores.usage.records) == 1  # type: ignore[attr-defined]  the record is kept


async def test_token_budget_setting_is_a_monthly_token_cap_that_resumes_next_month() -> None:
    clock = FixedClock(datetime(2026, 1, 31, 12, tzinfo=UTC))
    model = ScriptedChatModel(["generated"] * 5)
    rt = build(Settings(business_id="garden", token_budget=15), stores=in_memory_stores(), no_embedder=True,
               clock=clock, llm=model)
    await rt.import_catalog(garden_shop())
    await rt.service.handle(rt.turn("do you have basil seeds?"))  # 15 tokens: the month's cap
    clock.advance(3600)
    r = await rt.service.handle(rt.turn("do you have tomato seeds?"))
    assert len(model.requests) == 1 and r.engine == "offline" and r.error is None
    clock.advance(86_400)  # February
    r = await rt.service.handle(rt.turn("do you have basil seeds?"))
    assert len(model.requests) == 2 and r.engine == "scripted"


async def test_token_budget_counts_the_records_already_kept() -> None:
    stores = in_memory_stores()
    await stores.usage.record(usage("garden", NOON, 10, 5))
    model = ScriptedChatModel(["generated"] * 5)
    rt = build(Settings(business_id="garden", token_budget=15), stores=stores, no_embedder=True,
               clock=FixedClock(NOON), llm=model)
    await rt.import_catalog(garden_shop())
    r = await rt.service.handle(rt.turn("do you have basil seeds?"))
    assert model.requests == [] and r.engine == "offline" and "Sweet Basil Seeds" in r.reply.text


# ----------------------------------------------------------------------------- two businesses, one counter


async def test_a_budget_spent_mid_conversation_sends_that_business_offline_and_nobody_else() -> None:
    counter = InMemoryBudgetCounter()
    clock = FixedClock(NOON)
    runtimes, models = {}, {}
    for business, caps in (("a", Budget(daily_tokens=30)), ("b", Budget(daily_tokens=10_000))):
        stores = in_memory_stores()
        models[business] = ScriptedChatModel([f"Model answer {n} for {business}." for n in range(20)])
        runtimes[business] = build(Settings(business_id=business), stores=stores, no_embedder=True, clock=clock,
                                   llm=models[business], budget=BudgetGuard(caps, counter, stores.events))
        await runtimes[business].import_catalog(garden_shop(business))

    async def say(business: str, text: str) -> Any:
        return await runtimes[business].service.handle(runtimes[business].turn(text, thread_id="shopper"))

    for n in range(2):  # two generated answers spend a's 30 tokens
        r = await say("a", "do you have basil seeds?")
        assert r.reply.text == f"Model answer {n} for a." and r.engine == "scripted"
    for text, product in (("do you have tomato seeds?", "Heirloom Tomato Seeds"),
                          ("do you have basil seeds?", "Sweet Basil Seeds")):
        r = await say("a", text)
        assert r.engine == "offline" and r.error is None and product in r.reply.text
        assert "Model answer" not in r.reply.text and "went wrong" not in r.reply.text
        r = await say("b", text)
        assert r.engine == "scripted" and r.reply.text.startswith("Model answer")
    r = await say("a", "add 2 tomato seeds")  # the conversation goes on offline
    assert r.cart.quantities() == {"tomato-seeds": 2} and r.error is None
    assert len(models["a"].requests) == 2 and len(models["b"].requests) == 2
    assert [e.name for e in await runtimes["a"].stores.events.list("a", limit=1000)
            if e.name.startswith("Budget")] == ["BudgetWarning", "BudgetSpent"]
    assert not [e for e in await runtimes["b"].stores.events.list("b", limit=1000) if e.name.startswith("Budget")]
