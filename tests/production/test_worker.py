"""The worker in this process against a real redis-server, a real Redis Cluster, and the HTTP Bot API double.

Every test runs twice: on one redis-server and on a three-master Redis Cluster.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from chatpay.adapters.memory import ScriptedChatModel
from chatpay.adapters.mongo import embedded_database, mongo_stores
from chatpay.bootstrap import Runtime, build
from chatpay.config import Settings
from chatpay.core.telemetry import UsageRecord
from tests.production.conftest import running_worker, started
from tests.production.helpers import TOKEN, callback, cart_quantity, message, pre_checkout, wait_until
from tests.support.botapi import BotApiDouble

pytestmark = pytest.mark.timeout(120)

ADD = "add 1 Kenyan AA Nyeri"


@pytest.fixture
def redis_url(any_redis_url: str) -> str:
    """Each test here runs on one redis-server and on a Redis Cluster."""
    return any_redis_url


def texts(bot_api: BotApiDouble, chat: int) -> list[str]:
    return [c.params["text"] for c in bot_api.delivered("sendMessage") if str(c.params.get("chat_id")) == str(chat)]


async def test_each_update_is_answered_in_order_and_leaves_the_queue(
    runtime: Runtime, redis_url: str, bot_api: BotApiDouble
) -> None:
    async with running_worker(runtime, redis_url, bot_api) as w:
        for i, text in enumerate([ADD, ADD, "what's in my cart?"], start=1):
            await w.queue.push(message(i, 501, text))
        await wait_until(lambda: len(texts(bot_api, 501)) == 3, 20, "three replies")
        assert [cart_quantity(t) for t in texts(bot_api, 501)] == [1, 2, 2]
        assert (await w.state.carts.get("demo", "501")).item_count() == 2
        await wait_until(lambda: w.worker.counts.get("done") == 3, 5, "three acknowledged turns")
        depth = await w.queue.depth()
    assert depth == {"inbound": 0, "staging": 0, "lanes": 0, "ready_lanes": 0, "fast": 0, "dead": 0}
    assert not bot_api.violations


async def test_an_update_delivered_twice_has_one_effect_and_one_reply(
    runtime: Runtime, redis_url: str, bot_api: BotApiDouble
) -> None:
    async with running_worker(runtime, redis_url, bot_api) as w:
        await w.queue.push(message(77, 502, ADD))
        await w.queue.push(message(77, 502, ADD))  # Telegram retried the webhook
        await w.queue.push(message(78, 502, "what's in my cart?"))
        await wait_until(lambda: w.worker.counts.get("done") == 2 and w.worker.counts.get("replayed") == 1, 20,
                         "two turns and one replay")
        assert (await w.state.carts.get("demo", "502")).item_count() == 1
    assert [cart_quantity(t) for t in texts(bot_api, 502)] == [1, 1]


async def test_with_mongodb_as_the_store_a_duplicate_is_replayed_not_run_again(
    redis_url: str, bot_api: BotApiDouble
) -> None:
    runtime = await asyncio.to_thread(started, build(Settings(business_id="demo")))  # mongomock stores
    async with running_worker(runtime, redis_url, bot_api, shared_state=False) as w:
        await w.queue.push(message(7, 509, ADD))
        await w.queue.push(message(7, 509, ADD))
        await w.queue.push(message(8, 509, "what's in my cart?"))
        await wait_until(lambda: w.worker.counts.get("done") == 2 and w.worker.counts.get("replayed") == 1, 20,
                         "two turns and one replay")
        assert (await runtime.stores.carts.get("demo", "509")).item_count() == 1
        assert (await runtime.stores.turns.outcome("demo", 7) or {})["sent"] == 1
    assert [cart_quantity(t) for t in texts(bot_api, 509)] == [1, 1]


async def test_a_recorded_outcome_is_sent_from_where_it_stopped_instead_of_running_again(
    runtime: Runtime, redis_url: str, bot_api: BotApiDouble
) -> None:
    async with running_worker(runtime, redis_url, bot_api) as w:
        # A worker committed update 90's turn, sent the first message and died before the second.
        recorded = [{"method": "sendMessage", "params": {"chat_id": "503", "text": f"part {i}"}} for i in (1, 2)]
        await w.state.turns.claim("demo", 90, "t-dead")
        await w.state.turns.record_outcome("demo", 90, {"chat_id": "503", "messages": recorded, "sent": 1})
        await w.queue.push(message(90, 503, ADD))
        await wait_until(lambda: w.worker.counts.get("replayed") == 1, 20, "the replay")
        assert (await w.state.carts.get("demo", "503")).is_empty  # the turn did not run again
        assert (await w.state.turns.outcome("demo", 90) or {})["sent"] == 2
    assert texts(bot_api, 503) == ["part 2"]


async def test_every_button_press_is_answered(runtime: Runtime, redis_url: str, bot_api: BotApiDouble) -> None:
    async with running_worker(runtime, redis_url, bot_api) as w:
        await w.queue.push(callback(5, 504, "v", "cbq-1"))
        await wait_until(lambda: texts(bot_api, 504), 20, "the cart reply")
    answers = bot_api.delivered("answerCallbackQuery")
    assert [a.params["callback_query_id"] for a in answers] == ["cbq-1"]
    assert "cart is empty" in texts(bot_api, 504)[0]


class ExplodingUsageLog:
    """Usage storage that refuses one thread's records: every turn of that thread fails."""

    def __init__(self, inner: object, thread_id: str) -> None:
        self.inner, self.thread_id = inner, thread_id

    async def record(self, record: UsageRecord) -> None:
        if record.thread_id == self.thread_id:
            raise RuntimeError("usage store refused the record")
        await self.inner.record(record)  # type: ignore[attr-defined]

    async def list(self, business_id: str, **kw: object) -> list[UsageRecord]:
        return await self.inner.list(business_id, **kw)  # type: ignore[attr-defined]

    async def total_tokens(self, business_id: str) -> int:
        return await self.inner.total_tokens(business_id)  # type: ignore[attr-defined]


async def test_poison_updates_are_dead_lettered_with_their_reason_and_the_rest_flows(
    redis_url: str, bot_api: BotApiDouble
) -> None:
    stores = mongo_stores(embedded_database())
    stores = replace(stores, usage=ExplodingUsageLog(stores.usage, "666"))
    runtime = await asyncio.to_thread(started, build(Settings(business_id="demo"), stores=stores))
    async with running_worker(runtime, redis_url, bot_api) as w:
        await w.queue.push('{"update_id": 1, "message": {oops')
        await w.queue.push(message(2, 666, ADD))
        await w.queue.push(message(3, 666, "what's in my cart?"))
        await w.queue.push(message(4, 505, ADD))
        dead = await wait_until(lambda: _dead(w.queue, 3), 30, "three dead letters")
        await wait_until(lambda: texts(bot_api, 505), 10, "the healthy user's reply")
        assert w.worker.counts.get("failed") == 4  # two tries each for updates 2 and 3, then dead
    reasons = {d["raw"]: d["reason"] for d in dead}
    assert reasons['{"update_id": 1, "message": {oops'].startswith("invalid update: update: invalid JSON at line 1")
    for raw in (message(2, 666, ADD), message(3, 666, "what's in my cart?")):
        assert reasons[raw] == "failed 3 times; last error: RuntimeError: usage store refused the record"
    assert texts(bot_api, 666) == []
    assert cart_quantity(texts(bot_api, 505)[0]) == 1


async def _dead(queue: object, n: int) -> list[dict[str, object]] | None:
    found = await queue.dead_letters()  # type: ignore[attr-defined]
    return found if len(found) >= n else None


async def test_pre_checkout_is_answered_while_slow_model_turns_hold_every_slot(
    redis_url: str, bot_api: BotApiDouble
) -> None:
    model = ScriptedChatModel(["Lovely weather for coffee!"] * 4, delay=3.0)
    runtime = await asyncio.to_thread(started, build(Settings(business_id="demo"), llm=model))
    async with running_worker(runtime, redis_url, bot_api, concurrency=1) as w:
        await w.queue.push(message(1, 506, "hello there, how are you today?"))
        await wait_until(lambda: model.requests, 10, "the slow model call")
        pushed = time.time()
        await w.queue.push(pre_checkout(2, 507, "pcq-1"))
        answer = await wait_until(lambda: bot_api.delivered("answerPreCheckoutQuery"), 5, "the pre-checkout answer")
        assert answer[0].at - pushed < 1.0
        assert not texts(bot_api, 506)  # the slow turn is still running
        await wait_until(lambda: texts(bot_api, 506), 10, "the slow reply")
    assert answer[0].params["pre_checkout_query_id"] == "pcq-1"
    assert answer[0].params["ok"] in (False, "false")  # its payload matches no cart: refused, with a reason
    assert answer[0].params["error_message"]
    actions = [c for c in bot_api.delivered("sendChatAction") if str(c.params["chat_id"]) == "506"]
    assert actions and actions[0].params["action"] == "typing"  # shown while the slow turn ran
    reply = next(c for c in bot_api.delivered("sendMessage") if str(c.params["chat_id"]) == "506")
    assert actions[0].at < reply.at


async def test_a_worker_presumed_dead_mid_turn_neither_commits_nor_replies_twice(
    redis_url: str, bot_api: BotApiDouble
) -> None:
    model = ScriptedChatModel(["Nice to meet you!"] * 4, delay=1.5)
    runtime = await asyncio.to_thread(started, build(Settings(business_id="demo"), llm=model))
    async with running_worker(runtime, redis_url, bot_api, worker_id="slow", concurrency=1,
                              heartbeat_ttl=30) as a:
        await a.queue.push(message(1, 508, "hello there, how are you today?"))
        await wait_until(lambda: model.requests, 10, "the first worker's model call")
        # Its heartbeat is lost (a long GC pause, a network partition): another worker reaps it.
        await a.client.delete(a.queue.heartbeat_key)
        async with running_worker(runtime, redis_url, bot_api, worker_id="rescuer", concurrency=1) as b:
            await wait_until(lambda: len(model.requests) == 2, 10, "the rescuer running the turn again")
            await wait_until(lambda: b.worker.counts.get("done") == 1, 10, "the rescuer's turn")
            await wait_until(lambda: a.worker.counts.get("fenced") == 1, 10, "the first worker to stand down")
        assert not await a.queue.heartbeat()  # it learns it was reaped and carries on under a new id
        assert a.queue.worker_id == "slow.1"
    assert len(texts(bot_api, 508)) == 1


OTHER_TOKEN = "654321:OTHER-bot-token"


def runtime_for(business: str) -> Runtime:
    """A started runtime serving ``business`` with the demo catalog imported under its name."""
    from chatpay.resources import demo_store

    runtime = build(Settings(business_id=business))

    async def load() -> None:
        products, store = demo_store()
        await runtime.load_catalog_file(products, business_id=business, store_file=store)
        await runtime.start()

    asyncio.run(load())
    return runtime


async def test_two_businesses_on_one_redis_share_nothing(
    runtime: Runtime, redis_url: str, bot_api: BotApiDouble
) -> None:
    north = await asyncio.to_thread(runtime_for, "north")
    async with running_worker(runtime, redis_url, bot_api, worker_id="demo-w") as demo, \
            running_worker(north, redis_url, bot_api, worker_id="north-w", token=OTHER_TOKEN) as other:
        assert demo.queue.name != other.queue.name
        await demo.limiter.pause(3.0)  # Telegram answered 429 to the demo business's bot
        pushed = time.monotonic()
        # The same update id and the same shopper id in both businesses: neither is a duplicate.
        await demo.queue.push(message(1, 700, ADD))
        await other.queue.push(message(1, 700, ADD))
        await other.queue.push(message(2, 700, ADD))
        await wait_until(lambda: len(sent(bot_api, OTHER_TOKEN)) == 2, 10, "the other bot's two replies")
        assert time.monotonic() - pushed < 2.5  # not held by the demo bot's pause
        assert sent(bot_api, TOKEN) == []  # the demo bot is still paused
        await wait_until(lambda: sent(bot_api, TOKEN), 10, "the demo bot's reply after its pause")
        assert time.monotonic() - pushed >= 2.9
        await wait_until(lambda: demo.worker.counts.get("done") == 1 and other.worker.counts.get("done") == 2, 5,
                         "every turn acknowledged")
        assert "replayed" not in demo.worker.counts and "replayed" not in other.worker.counts
        assert (await demo.state.carts.get("demo", "700")).item_count() == 1
        assert (await other.state.carts.get("north", "700")).item_count() == 2
        assert len(await demo.state.conversations.recent("demo", "700", 50)) == 2  # one message, one reply
        assert len(await other.state.conversations.recent("north", "700", 50)) == 4
        assert {w.split(".")[0] for w in await demo.queue.workers()} == {"demo-w"}
        assert {w.split(".")[0] for w in await other.queue.workers()} == {"north-w"}
        assert await other.limiter.paused_for() == 0
    assert [cart_quantity(t) for t in sent(bot_api, TOKEN)] == [1]
    assert [cart_quantity(t) for t in sent(bot_api, OTHER_TOKEN)] == [1, 2]


def sent(bot_api: BotApiDouble, token: str) -> list[str]:
    """The texts one bot sent."""
    return [c.params["text"] for c in bot_api.delivered("sendMessage") if c.token == token]


async def test_a_bot_api_outage_keeps_the_update_and_delivers_it_once_when_telegram_is_back(
    runtime: Runtime, redis_url: str, bot_api: BotApiDouble, caplog: pytest.LogCaptureFixture
) -> None:
    """An outage is not poison: 36 failed sends (12 tries, more than the 10 starts that mark a crash loop)
    dead-letter nothing; the reply goes out once when the Bot API is back, and no log line carries the text."""
    secret_words = "add 1 Kenyan AA Nyeri please, my name is Zebulon Quartz"
    bot_api.fail_next(36, status=502, description="Bad Gateway")
    with caplog.at_level("DEBUG"):
        async with running_worker(runtime, redis_url, bot_api, concurrency=2) as w:
            await w.queue.push(message(1, 808, secret_words))
            await wait_until(lambda: texts(bot_api, 808), 90, "the reply after the outage")
            assert w.worker.counts.get("retried", 0) >= 10
            assert await w.queue.dead_letters() == []
            await asyncio.sleep(0.3)
    assert len(texts(bot_api, 808)) == 1 and cart_quantity(texts(bot_api, 808)[0]) == 1
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "Zebulon" not in logged and "Quartz" not in logged
