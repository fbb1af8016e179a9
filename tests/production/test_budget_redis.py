"""Budget counters on a real redis-server (started by the fixture on a free port, stopped by pid)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from redis.crc import key_slot

from chatpay.adapters.memory import FixedClock, ScriptedChatModel
from chatpay.adapters.mongo import embedded_database, mongo_stores
from chatpay.adapters.redis import connect
from chatpay.adapters.redis.budget import MongoUsageTotals, RedisBudgetCounter
from chatpay.bootstrap import build
from chatpay.businesses import Budget
from chatpay.config import Settings
from chatpay.core.budget import BudgetCapReached, BudgetGuard, Spent
from chatpay.core.errors import ModelError, StorageError
from chatpay.core.metering import MeteredChatModel, UsageMeter, call_context
from chatpay.core.ports import ChatMessage, ChatRequest
from chatpay.core.pricing import cost_usd
from chatpay.core.telemetry import UsageRecord
from tests.core.shop import garden_shop
from tests.support.redis_server import free_port

pytestmark = pytest.mark.timeout(120)

NOON = datetime(2099, 3, 14, 12, 0, tzinfo=UTC)  # keys expire by the wall clock: a day still to come


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Any]:
    c = connect(redis_url)
    yield c
    await c.aclose()


async def test_adds_are_counted_per_day_and_month_under_the_business_hash_tag(client: Any) -> None:
    counter = RedisBudgetCounter(client)
    cost = cost_usd("gpt-4o-mini", 1000, 500)
    assert cost == Decimal("0.00045")
    after = await counter.add("acme", 1500, cost, NOON)
    assert after == Spent(1500, 1500, cost, cost)
    await counter.add("acme", 10, Decimal("0.00000002"), NOON + timedelta(days=1))
    assert await counter.spent("acme", NOON) == Spent(1500, 1510, cost, Decimal("0.00045002"))
    assert await counter.spent("acme", NOON + timedelta(days=1)) == Spent(10, 1510, Decimal("0.00000002"),
                                                                          Decimal("0.00045002"))
    assert await counter.spent("other", NOON) == Spent()
    keys = sorted(await client.keys("*"))
    assert keys == ["chatpay:{acme}:budget:day:2099-03-14", "chatpay:{acme}:budget:day:2099-03-15",
                    "chatpay:{acme}:budget:month:2099-03"]
    assert len({key_slot(k.encode()) for k in keys}) == 1
    assert await client.hgetall("chatpay:{acme}:budget:day:2099-03-14") == {"tokens": "1500", "usd_nanos": "450000"}
    day_expiry = await client.expiretime("chatpay:{acme}:budget:day:2099-03-14")
    month_expiry = await client.expiretime("chatpay:{acme}:budget:month:2099-03")
    assert day_expiry == int(datetime(2099, 3, 17, tzinfo=UTC).timestamp())  # the day's end + 2 days
    assert month_expiry == int(datetime(2099, 4, 3, tzinfo=UTC).timestamp())


async def test_odd_business_ids_keep_one_hash_tag(client: Any) -> None:
    counter = RedisBudgetCounter(client)
    await counter.add("a:b{c}", 1, Decimal(0), NOON)
    keys = sorted(await client.keys("*"))
    assert keys == ["chatpay:{a%3Ab%7Bc%7D}:budget:day:2099-03-14", "chatpay:{a%3Ab%7Bc%7D}:budget:month:2099-03"]


async def test_set_overwrites_one_period_with_an_expiry(client: Any) -> None:
    counter = RedisBudgetCounter(client)
    await counter.add("acme", 999, Decimal("5"), NOON)
    await counter.set("acme", "month:2099-03", 42, Decimal("0.000000123"))
    assert await counter.spent("acme", NOON) == Spent(999, 42, Decimal(5), Decimal("0.000000123"))
    assert await client.expiretime("chatpay:{acme}:budget:month:2099-03") > 0


async def test_many_processes_record_concurrently_and_one_warning_is_recorded(redis_url: str) -> None:
    """Eight threads, each its own event loop, Redis connection and guard, cross 80 % at the same moment.

    Each round is a new day whose counter already stands at 79.5 %: all eight recorders, released
    together, push it past 80 % and race to record the warning. Exactly one may win each day.
    """
    threads, days = 8, 12
    events: list[Any] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    class SharedEvents:
        async def record(self, event: Any) -> None:
            with lock:
                events.append(event)

    async def prepare() -> None:
        c = connect(redis_url)
        for d in range(days):
            await RedisBudgetCounter(c).set("acme", f"day:2099-03-{d + 1:02d}", 795, Decimal(0))
        await c.aclose()

    def recorder() -> None:
        async def run() -> None:
            c = connect(redis_url)
            g = BudgetGuard(Budget(daily_tokens=1000), RedisBudgetCounter(c), SharedEvents())  # type: ignore[arg-type]
            await c.ping()
            for d in range(days):
                barrier.wait()
                await g.record("acme", 10, Decimal("0.000001"), datetime(2099, 3, d + 1, 12, tzinfo=UTC))
            await c.aclose()

        asyncio.run(run())

    await prepare()
    workers = [threading.Thread(target=recorder) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    check = connect(redis_url)
    for d in range(days):
        spent = await RedisBudgetCounter(check).spent("acme", datetime(2099, 3, d + 1, tzinfo=UTC))
        assert (spent.day_tokens, spent.day_usd) == (795 + 10 * threads, Decimal("0.000001") * threads)
    await check.aclose()
    warned = sorted(e.data["period_key"] for e in events if e.name == "BudgetWarning")
    assert warned == [f"2099-03-{d + 1:02d}" for d in range(days)]  # one a day, never two
    assert [e for e in events if e.name != "BudgetWarning"] == []


async def test_reconciliation_from_mongo_usage_records_reaches_the_redis_counter(client: Any) -> None:
    db = embedded_database("budget")
    stores = mongo_stores(db)
    for at, prompt in ((NOON, 100), (NOON - timedelta(days=1), 1000), (NOON.replace(month=2), 5000)):
        await stores.usage.record(UsageRecord("acme", "t", "u", "enquiry", "chat", "gpt-4o", "gpt-4o", prompt, 0,
                                              cost_usd("gpt-4o", prompt, 0), 1.0, at))
    g = BudgetGuard(Budget(monthly_usd=Decimal("0.00275")), RedisBudgetCounter(client))
    await g.record("acme", 10**6, Decimal(0), NOON)  # drift: a counter the records do not back
    spent = await g.reconcile("acme", MongoUsageTotals(db), NOON)
    assert spent == Spent(100, 1100, Decimal("0.00025"), Decimal("0.00275"))
    assert await g.counter.spent("acme", NOON) == spent
    with pytest.raises(BudgetCapReached, match="monthly_usd"):
        await g.check("acme", NOON)


async def test_a_redis_outage_sends_turns_offline_instead_of_spending() -> None:
    down = connect(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    counter = RedisBudgetCounter(down)
    with pytest.raises(StorageError):
        await counter.spent("acme", NOON)
    model = ScriptedChatModel(["never"])
    stores = mongo_stores(embedded_database())
    meter = UsageMeter(stores.usage, FixedClock(NOON), engine="scripted",
                       guard=BudgetGuard(Budget(daily_tokens=10), counter))
    with call_context(business_id="acme"), pytest.raises(ModelError):
        await MeteredChatModel(model, meter).complete(ChatRequest(messages=(ChatMessage("user", "hi"),)))
    assert model.requests == []
    await down.aclose()


async def test_two_businesses_share_one_redis_counter_and_only_the_spent_one_goes_offline(client: Any) -> None:
    """Business a's budget runs out in the middle of a conversation; b keeps its model."""
    counter = RedisBudgetCounter(client)
    clock = FixedClock(NOON)
    db = embedded_database()
    stores = mongo_stores(db)  # one system of record for both, as in production
    runtimes, models = {}, {}
    for business, caps in (("a", Budget(daily_usd=Decimal("0.0000045"))), ("b", Budget(daily_usd=Decimal("1")))):
        # gpt-4o-mini pricing: each scripted call (10 prompt + 5 completion tokens) costs $0.0000045
        models[business] = ScriptedChatModel([f"Model answer {n} for {business}." for n in range(20)],
                                             name="gpt-4o-mini")
        guard = BudgetGuard(caps, counter, stores.events, usage=MongoUsageTotals(db))
        runtimes[business] = build(Settings(business_id=business), stores=stores, no_embedder=True, clock=clock,
                                   llm=models[business], budget=guard)
        await runtimes[business].import_catalog(garden_shop(business))

    async def say(business: str, text: str) -> Any:
        clock.advance(30)
        return await runtimes[business].service.handle(runtimes[business].turn(text, thread_id="shopper"))

    r = await say("a", "do you have basil seeds?")
    assert r.engine == "gpt-4o-mini" and r.reply.text == "Model answer 0 for a."
    r = await say("b", "do you have basil seeds?")
    assert r.engine == "gpt-4o-mini" and r.reply.text == "Model answer 0 for b."
    for text, product in (("do you have tomato seeds?", "Heirloom Tomato Seeds"),
                          ("any pruning shears?", "Bypass Pruning Shears")):
        r = await say("a", text)
        assert r.engine == "offline" and r.error is None and product in r.reply.text
        assert "Model answer" not in r.reply.text and "went wrong" not in r.reply.text.lower()
        r = await say("b", text)
        assert r.engine == "gpt-4o-mini" and r.reply.text.startswith("Model answer")
    assert (len(models["a"].requests), len(models["b"].requests)) == (1, 3)
    spent_a, spent_b = await counter.spent("a", clock.now()), await counter.spent("b", clock.now())
    assert (spent_a.day_usd, spent_b.day_usd) == (Decimal("0.0000045"), Decimal("0.0000135"))
    names = [(e.business_id, e.name) for b in "ab" for e in await stores.events.list(b, limit=1000)
             if e.name.startswith("Budget")]
    assert names == [("a", "BudgetWarning"), ("a", "BudgetSpent")]

