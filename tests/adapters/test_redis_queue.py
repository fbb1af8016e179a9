"""The Redis queue and shared state, on fakeredis, a real redis-server and a real Redis Cluster started here."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import pytest

from chatpay.adapters.memory import in_memory_stores
from chatpay.adapters.redis import RedisQueue, RedisStateStores, StagedTurn, connect, queue_name
from chatpay.core.cart import Cart, CartLine
from chatpay.core.errors import ConcurrencyConflict
from chatpay.core.telemetry import Event
from chatpay.core.turns import Message
from tests.support.redis_cluster import redis_cluster  # noqa: F401  (fixture)
from tests.support.redis_server import redis_server  # noqa: F401  (fixture)

pytestmark = pytest.mark.timeout(60)

Q = queue_name("q", "b")  # the queue of business "b", whose state the tests below use too


@pytest.fixture(params=["fakeredis", "redis-server", "redis-cluster"])
async def client(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    if request.param == "fakeredis":
        fake = fakeredis.FakeAsyncRedis(decode_responses=True)
        yield fake
        await fake.aclose()
        return
    if request.param == "redis-cluster":
        cluster = request.getfixturevalue("redis_cluster")
        cluster.flushall()
        on_cluster = connect(cluster.url, cluster=True)
        yield on_cluster
        await on_cluster.aclose()
        return
    server = request.getfixturevalue("redis_server")
    server.flushall()
    real = connect(server.url)
    yield real
    await real.aclose()


def update(update_id: int, user: int, text: str = "hi") -> str:
    return json.dumps({"update_id": update_id, "message": {
        "message_id": update_id, "date": 1, "chat": {"id": user, "type": "private"},
        "from": {"id": user, "is_bot": False, "first_name": "U"}, "text": text}})


def pre_checkout(update_id: int, user: int) -> str:
    return json.dumps({"update_id": update_id, "pre_checkout_query": {
        "id": f"q{update_id}", "from": {"id": user, "is_bot": False, "first_name": "U"}, "currency": "EUR",
        "total_amount": 100, "invoice_payload": "p"}})


def uid(raw: str) -> int:
    return int(json.loads(raw)["update_id"])


async def drain(queue: RedisQueue) -> list[int]:
    """Reserve and acknowledge everything, one at a time; the update ids in the order served."""
    served = []
    await queue.route()
    while (d := await queue.reserve(0.05)) is not None:
        served.append(uid(d.raw))
        assert await queue.ack(d)
    return served


async def test_each_users_updates_are_served_in_arrival_order(client: Any) -> None:
    queue = RedisQueue(client, Q, worker_id="w1")
    for i in range(1, 31):
        await queue.push(update(i, user=100 + i % 3))
    served = await drain(queue)
    assert sorted(served) == list(range(1, 31))
    for user in range(3):
        mine = [u for u in served if u % 3 == user]
        assert mine == sorted(mine)
    assert await queue.depth() == {"inbound": 0, "staging": 0, "lanes": 0, "ready_lanes": 0, "fast": 0, "dead": 0}


async def test_a_held_lane_is_invisible_to_other_workers_until_acknowledged(client: Any) -> None:
    a = RedisQueue(client, Q, worker_id="a")
    b = RedisQueue(client, Q, worker_id="b")
    for i, user in enumerate([1, 1, 2], start=1):
        await a.push(update(i, user))
    await a.route()
    first = await a.reserve(0.1)
    assert first is not None and uid(first.raw) == 1
    other = await b.reserve(0.1)
    assert other is not None and uid(other.raw) == 3  # user 2 runs in parallel; user 1's second waits
    assert await b.reserve(0.1) is None
    await b.ack(other)
    assert await a.ack(first)
    second = await b.reserve(0.1)
    assert second is not None and uid(second.raw) == 2


async def test_concurrent_routers_keep_each_users_order(client: Any) -> None:
    routers = [RedisQueue(client, Q, worker_id=f"r{i}") for i in range(4)]

    async def route_forever(q: RedisQueue, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await q.route(limit=3)
            await q.wait_inbound(0.01)

    stop = asyncio.Event()
    tasks = [asyncio.create_task(route_forever(q, stop)) for q in routers]
    for i in range(1, 201):
        await routers[0].push(update(i, user=7))
        if i % 20 == 0:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    stop.set()
    await asyncio.gather(*tasks)
    assert await drain(routers[0]) == list(range(1, 201))


async def test_a_dead_workers_lane_is_reclaimed_and_its_late_ack_refused(client: Any) -> None:
    dead = RedisQueue(client, Q, worker_id="dead", heartbeat_ttl=0.2)
    alive = RedisQueue(client, Q, worker_id="alive", heartbeat_ttl=5)
    await dead.heartbeat(register=True)
    await alive.heartbeat(register=True)
    await dead.push(update(1, 5))
    await dead.push(update(2, 5))
    await dead.route()
    taken = await dead.reserve(0.1)
    assert taken is not None
    assert await alive.reap() == []  # heartbeat still fresh
    await asyncio.sleep(0.35)
    assert await alive.reap() == ["dead"]
    again = await alive.reserve(0.1)
    assert again is not None and uid(again.raw) == 1 and again.attempts == 2
    assert not await dead.ack(taken)  # fenced: the lane is no longer the dead worker's
    assert await alive.ack(again)
    assert [uid(d) for d in [(await alive.reserve(0.1)).raw]] == [2]  # type: ignore[union-attr]
    assert not await dead.heartbeat()  # it learns it was reaped and takes a new id
    assert dead.worker_id == "dead.1"


async def test_a_lane_taken_under_an_id_given_up_is_handed_back_not_stranded(client: Any) -> None:
    """A worker presumed dead while it still runs (its loop blocked past the heartbeat) may still
    receive a lane under its old id; nobody serves that id's list, so the worker hands it back."""
    slow = RedisQueue(client, Q, worker_id="slow", heartbeat_ttl=0.2)
    alive = RedisQueue(client, Q, worker_id="alive", heartbeat_ttl=5)
    await slow.heartbeat(register=True)
    await alive.heartbeat(register=True)
    old_list = slow.owned_key
    await asyncio.sleep(0.35)
    assert await alive.reap() == ["slow"]  # presumed dead
    await slow.push(update(1, 6))
    await slow.push(update(2, 6))
    await slow.route()
    # A take issued under the old id before the worker noticed: the lane lands in the old list.
    assert await client.rpoplpush(f"{Q}:ready", old_list) is not None
    assert not await slow.heartbeat() and slow.worker_id == "slow.1"
    await slow.recover_orphans()
    assert await client.llen(old_list) == 0
    assert await drain(alive) == [1, 2]  # served, in order, by anyone


async def test_failures_dead_letter_after_three_tries_and_the_lane_flows_on(client: Any) -> None:
    queue = RedisQueue(client, Q, worker_id="w")
    await queue.push(update(1, 9, "poison"))
    await queue.push(update(2, 9, "fine"))
    await queue.route()
    outcomes = []
    for _ in range(3):
        d = await queue.reserve(0.1)
        assert d is not None and uid(d.raw) == 1
        outcomes.append(await queue.fail(d, "RuntimeError: boom"))
    assert outcomes == [False, False, True]
    nxt = await queue.reserve(0.1)
    assert nxt is not None and uid(nxt.raw) == 2 and nxt.attempts == 1
    dead = await queue.dead_letters()
    assert len(dead) == 1 and uid(dead[0]["raw"]) == 1
    assert dead[0]["reason"] == "failed 3 times; last error: RuntimeError: boom"


async def test_an_update_that_keeps_killing_workers_is_dead_lettered(client: Any) -> None:
    queue = RedisQueue(client, Q, worker_id="w", max_attempts=2)
    await queue.push(update(1, 9))
    await queue.route()
    for _ in range(2):  # started, then "died": the lane is recovered without an outcome
        assert await queue.reserve(0.1) is not None
        queue._active.clear()
        await queue.recover_orphans()
        await queue.recover_orphans()
    assert await queue.reserve(0.1) is None
    [dead] = await queue.dead_letters()
    assert "without finishing" in dead["reason"]


async def test_release_gives_the_attempt_back_and_keeps_the_head(client: Any) -> None:
    queue = RedisQueue(client, Q, worker_id="w")
    await queue.push(update(1, 3))
    await queue.route()
    d = await queue.reserve(0.1)
    assert d is not None
    await queue.release(d)
    again = await queue.reserve(0.1)
    assert again is not None and uid(again.raw) == 1 and again.attempts == 1


async def test_pre_checkout_takes_the_fast_path_beside_a_busy_lane(client: Any) -> None:
    queue = RedisQueue(client, Q, worker_id="w")
    await queue.push(update(1, 4))
    await queue.push(pre_checkout(2, 4))
    await queue.route()
    held = await queue.reserve(0.1)
    assert held is not None and uid(held.raw) == 1
    fast = await queue.reserve_fast(0.1)
    assert fast is not None and uid(fast.raw) == 2
    assert await queue.ack(fast)
    assert await queue.ack(held)
    assert (await queue.depth())["fast"] == 0


async def test_malformed_json_gets_a_lane_of_its_own_and_can_be_dead_lettered(client: Any) -> None:
    queue = RedisQueue(client, Q, worker_id="w")
    await queue.push("{not json")
    await queue.push(update(2, 4))
    await queue.route()
    served = {}
    while (d := await queue.reserve(0.05)) is not None:
        served[d.raw] = d
        if d.raw.startswith("{not"):
            await queue.dead_letter(d, "invalid JSON")
        else:
            await queue.ack(d)
    assert set(served) == {"{not json", update(2, 4)}
    assert [(e["raw"], e["reason"]) for e in await queue.dead_letters()] == [("{not json", "invalid JSON")]


async def test_retire_hands_everything_back(client: Any) -> None:
    leaving = RedisQueue(client, Q, worker_id="leaving")
    staying = RedisQueue(client, Q, worker_id="staying")
    await leaving.heartbeat(register=True)
    await leaving.push(update(1, 1))
    await leaving.push(pre_checkout(2, 1))
    await leaving.route()
    assert await leaving.reserve(0.1) is not None
    assert await leaving.reserve_fast(0.1) is not None
    await leaving.retire()
    assert "leaving" not in await staying.workers()
    assert (await staying.reserve(0.1)) is not None
    assert (await staying.reserve_fast(0.1)) is not None


# --------------------------------------------------------------------------- shared state


async def test_cart_versions_refuse_a_stale_save(client: Any) -> None:
    state = RedisStateStores(client)
    cart = await state.carts.get("b", "t")
    assert cart.version == 0 and cart.is_empty
    saved = await state.carts.save(Cart("b", "t", (CartLine("mug", "v1", 2),), 0))
    assert saved.version == 1
    with pytest.raises(ConcurrencyConflict):
        await state.carts.save(Cart("b", "t", (CartLine("mug", "v1", 5),), 0))
    assert (await state.carts.get("b", "t")).lines == (CartLine("mug", "v1", 2),)


async def test_claims_are_won_once_and_outcomes_kept(client: Any) -> None:
    state = RedisStateStores(client)
    assert await state.turns.claim("b", 42, "t1")
    assert not await state.turns.claim("b", 42, "t2")
    assert await state.turns.claim("other", 42, "t3")  # per business
    await state.turns.record_outcome("b", 42, {"messages": [("sendMessage", {"text": "hi"})]})
    assert await state.turns.outcome("b", 42) == {"messages": [["sendMessage", {"text": "hi"}]]}
    assert 47 * 3600 < await client.ttl(state.keys.claim("b", 42)) <= 48 * 3600


async def test_conversations_are_bounded_and_state_merges(client: Any) -> None:
    state = RedisStateStores(client, max_messages=3)
    for i in range(5):
        await state.conversations.append("b", "t:1", Message("user", f"m{i}", f"turn{i}"))
    assert [m.content for m in await state.conversations.recent("b", "t:1", 10)] == ["m2", "m3", "m4"]
    await state.conversations.update_state("b", "t:1", {"last_shown": ("a", "b")})
    await state.conversations.update_state("b", "t:1", {"offer": "a"})
    assert await state.conversations.get_state("b", "t:1") == {"last_shown": ["a", "b"], "offer": "a"}
    assert await state.conversations.recent("b", "t", 10) == []  # "t:1" and "t" never collide


async def test_a_staged_turn_writes_nothing_until_it_commits(client: Any) -> None:
    state = RedisStateStores(client)
    base = in_memory_stores()
    staged = StagedTurn(state, base)
    cart = await staged.stores.carts.get("b", "t")
    await staged.stores.carts.save(Cart("b", "t", (CartLine("mug", "v1", 1),), cart.version))
    await staged.stores.conversations.append("b", "t", Message("user", "add a mug", "turn1"))
    await staged.stores.conversations.update_state("b", "t", {"last_product": "mug"})
    await staged.stores.events.record(Event("b", "t", "turn1", "CartItemAdded", {}))
    assert (await staged.stores.carts.get("b", "t")).version == 1  # the turn sees its own writes
    assert (await state.carts.get("b", "t")).version == 0  # nobody else does yet
    assert await state.conversations.recent("b", "t") == []
    assert await base.events.list("b") == []
    assert await staged.commit("b", 1, {"sent": 0}) == "committed"
    assert (await state.carts.get("b", "t")).lines == (CartLine("mug", "v1", 1),)
    assert [m.content for m in await state.conversations.recent("b", "t")] == ["add a mug"]
    assert await state.conversations.get_state("b", "t") == {"last_product": "mug"}
    assert [e.name for e in await base.events.list("b")] == ["CartItemAdded"]
    assert await state.turns.outcome("b", 1) == {"sent": 0}


async def test_a_second_commit_of_one_update_writes_nothing(client: Any) -> None:
    state = RedisStateStores(client)
    for expected in ("committed", "duplicate"):
        staged = StagedTurn(state, in_memory_stores())
        cart = await staged.stores.carts.get("b", "t")
        await staged.stores.carts.save(Cart("b", "t", (CartLine("mug", "v1", cart.quantity_of("mug") + 1),),
                                            cart.version))
        assert await staged.commit("b", 7, {"n": 1}) == expected
    assert (await state.carts.get("b", "t")).quantity_of("mug") == 1


async def test_a_fenced_commit_writes_nothing_once_the_lane_is_lost(client: Any) -> None:
    state = RedisStateStores(client)
    queue = RedisQueue(client, Q, worker_id="w")
    await queue.push(update(1, 5))
    await queue.route()
    d = await queue.reserve(0.1)
    assert d is not None
    staged = StagedTurn(state, in_memory_stores())
    await staged.stores.conversations.append("b", "5", Message("user", "hi"))
    await queue.release(d)  # e.g. reaped while the turn ran
    assert await staged.commit("b", 1, {}, fence=queue.fence(d)) == "fenced"
    assert await state.turns.outcome("b", 1) is None
    assert await state.conversations.recent("b", "5") == []


async def test_a_cart_changed_behind_a_turns_back_aborts_its_commit(client: Any) -> None:
    state = RedisStateStores(client)
    staged = StagedTurn(state, in_memory_stores())
    cart = await staged.stores.carts.get("b", "t")
    await staged.stores.carts.save(Cart("b", "t", (CartLine("mug", "v1", 1),), cart.version))
    await state.carts.save(Cart("b", "t", (CartLine("pen", "v1", 1),), 0))
    with pytest.raises(ConcurrencyConflict):
        await staged.commit("b", 1, {})
    assert (await state.carts.get("b", "t")).quantities() == {"pen": 1}
    assert await state.turns.outcome("b", 1) is None


# --------------------------------------------------------------------------- dead letters for the operator


async def dead_lettered(queue: RedisQueue, *update_ids: int) -> None:
    """Route the updates (pushed already) and dead-letter each one, in order."""
    await queue.route()
    for _ in update_ids:
        d = await queue.reserve(0.1)
        assert d is not None
        await queue.dead_letter(d, f"bad {uid(d.raw)}")


async def test_dead_letters_are_bounded_keeping_the_newest(client: Any) -> None:
    queue = RedisQueue(client, Q, worker_id="w", max_dead=3)
    for i in range(1, 6):
        await queue.push(update(i, user=i))
    await queue.push(pre_checkout(6, user=60))
    await dead_lettered(queue, 1, 2, 3, 4, 5)
    fast = await queue.reserve_fast(0.1)
    assert fast is not None
    await queue.dead_letter(fast, "bad 6")
    assert await queue.dead_count() == 3
    assert [uid(d["raw"]) for d in await queue.dead_letters()] == [6, 5, 4]


async def test_dead_letters_are_listed_newest_first_with_reason_worker_attempts_and_age(client: Any) -> None:
    queue = RedisQueue(client, Q, worker_id="w")
    for i in range(1, 5):
        await queue.push(update(i, user=i))
    await dead_lettered(queue, 1, 2, 3, 4)
    page = await queue.dead_letters(start=1, count=2)
    assert [(d["position"], uid(d["raw"]), d["reason"]) for d in page] == [(1, 3, "bad 3"), (2, 2, "bad 2")]
    assert {d["worker"] for d in page} == {"w"} and {d["attempts"] for d in page} == {1}
    assert all(0 <= d["age"] < 60 and d["at"].endswith("+00:00") for d in page)
    assert await queue.dead_letters(start=4) == []
    assert len(await queue.dead_letters(count=100)) == 4


async def test_requeued_dead_letters_run_again_oldest_first(client: Any) -> None:
    queue = RedisQueue(client, Q, worker_id="w")
    for i in range(1, 5):
        await queue.push(update(i, user=7))
    await dead_lettered(queue, 1, 2, 3, 4)  # newest first: 4, 3, 2, 1
    assert await queue.requeue_dead([3, 1, 99]) == 2  # updates 1 and 3; 99 is past the end
    assert [uid(d["raw"]) for d in await queue.dead_letters()] == [4, 2]
    assert await drain(queue) == [1, 3]  # the oldest first, in one lane, attempts counted afresh
    assert await queue.requeue_dead(None) == 2
    assert await queue.dead_count() == 0
    assert await drain(queue) == [2, 4]
    assert await queue.requeue_dead(None) == 0


async def test_purged_dead_letters_are_gone(client: Any) -> None:
    queue = RedisQueue(client, Q, worker_id="w")
    for i in range(1, 5):
        await queue.push(update(i, user=i))
    await dead_lettered(queue, 1, 2, 3, 4)
    assert await queue.purge_dead([0, 2]) == 2  # updates 4 and 2
    assert [uid(d["raw"]) for d in await queue.dead_letters()] == [3, 1]
    assert await queue.purge_dead(None) == 2
    assert await queue.dead_count() == 0
    assert (await queue.depth())["inbound"] == 0  # nothing was queued again
    with pytest.raises(ValueError):
        await queue.purge_dead([-1])


async def test_depth_counts_the_updates_in_ready_and_held_lanes(client: Any) -> None:
    queue = RedisQueue(client, Q, worker_id="w")
    await queue.heartbeat(register=True)
    for i, user in enumerate([1, 1, 2, 3], start=1):
        await queue.push(update(i, user))
    await queue.push(pre_checkout(9, 4))
    await queue.route()
    held = await queue.reserve(0.1)
    assert held is not None
    assert await queue.depth() == {"inbound": 0, "staging": 0, "lanes": 4, "ready_lanes": 2, "fast": 1, "dead": 0}


# --------------------------------------------------------------------------- businesses and slots


async def test_two_businesses_on_one_redis_never_see_each_others_work(client: Any) -> None:
    mine = RedisQueue(client, queue_name("q", "shop-a"), worker_id="a", heartbeat_ttl=0.2)
    theirs = RedisQueue(client, queue_name("q", "shop-b"), worker_id="b")
    await mine.heartbeat(register=True)
    await theirs.heartbeat(register=True)
    await mine.push(update(1, 5))
    await mine.push(update(2, 6))
    await theirs.push(update(1, 5))
    await mine.route()
    assert await theirs.reserve(0.05) is None  # routing one business leaves the other's updates alone
    taken = await mine.reserve(0.1)
    assert taken is not None
    await mine.dead_letter(taken, "poison")
    await asyncio.sleep(0.3)  # shop-a's worker stops beating
    assert await theirs.reap() == []  # shop-b's workers never reap shop-a's
    assert await theirs.workers() == {"b"}
    assert await theirs.dead_count() == 0 and await mine.dead_count() == 1
    assert await theirs.depth() == {"inbound": 1, "staging": 0, "lanes": 0, "ready_lanes": 0, "fast": 0, "dead": 0}
    assert await drain(theirs) == [1]
    assert (await mine.depth())["lanes"] == 1  # update 2 still waits in shop-a's lane

    state = RedisStateStores(client)
    await state.carts.save(Cart("shop-a", "5", (CartLine("mug", "v1", 1),), 0))
    await state.conversations.append("shop-a", "5", Message("user", "hi"))
    await state.conversations.update_state("shop-a", "5", {"offer": "mug"})
    assert await state.turns.claim("shop-a", 1, "t1")
    assert (await state.carts.get("shop-b", "5")).is_empty
    assert await state.conversations.recent("shop-b", "5") == []
    assert await state.conversations.get_state("shop-b", "5") == {}
    assert await state.turns.claim("shop-b", 1, "t2")


def test_every_key_of_one_business_is_in_one_cluster_slot() -> None:
    from redis.crc import key_slot

    from chatpay.adapters.redis.stores import RedisKeys

    def slots(keys: list[str]) -> set[int]:
        return {key_slot(k.encode()) for k in keys}

    business, thread, worker = "shop{1}:a%b", "t}{:x", "w{9}.a1"
    queue = RedisQueue(fakeredis.FakeAsyncRedis(decode_responses=True), queue_name("chatpay_queue", business),
                       worker_id=worker)
    queue_keys = [queue.name, queue.dead_key, *queue._k.values(), queue.lane_key("42"), queue.lane_key("~"),
                  queue.owned_key, queue.inflight_key, queue.heartbeat_key, queue.lane_prefix, queue.prefix]
    keys = RedisKeys()
    state_keys = [keys.cart(business, thread), keys.messages(business, thread), keys.state(business, thread),
                  keys.claim(business, 7), keys.outcome(business, 7)]
    assert len(set(queue_keys)) == 17 and len(set(state_keys)) == 5
    assert len(slots(queue_keys + state_keys)) == 1
    other = queue_name("chatpay_queue", "north")
    assert slots([other, keys.cart("north", thread)]) == slots([other]) != slots(queue_keys)
    assert "{shop%7B1%7D%3Aa%25b}" in queue.name  # the id's own braces never open a tag
    with pytest.raises(ValueError):
        queue_name("chatpay_queue", "")
    with pytest.raises(ValueError):
        queue_name("chat{pay}", "demo")


async def test_a_cluster_refuses_a_queue_without_a_hash_tag_and_a_commit_across_businesses(
    redis_cluster: Any,  # noqa: F811
) -> None:
    redis_cluster.flushall()
    client = connect(redis_cluster.url, cluster=True)
    try:
        with pytest.raises(ValueError, match="hash tag"):
            RedisQueue(client, "chatpay_queue")
        queue = RedisQueue(client, queue_name("q", "north"), worker_id="w")
        await queue.push(update(1, 5))
        await queue.route()
        d = await queue.reserve(0.1)
        assert d is not None
        staged = StagedTurn(RedisStateStores(client), in_memory_stores())
        await staged.stores.conversations.append("demo", "5", Message("user", "hi"))
        with pytest.raises(ValueError, match="one business"):
            await staged.commit("demo", 1, {}, fence=queue.fence(d))  # north's lease, demo's state
        assert await staged.commit("demo", 1, {}) == "committed"  # unfenced, one business: fine
    finally:
        await client.aclose()


# --------------------------------------------------------------------------- retention


async def test_carts_and_conversations_expire_after_the_retention_refreshed_on_every_write(client: Any) -> None:
    state = RedisStateStores(client, ttl_seconds=1000)
    keys = state.keys

    async def ttl(key: str) -> int:
        return int(await client.ttl(key))

    await state.carts.save(Cart("b", "t", (CartLine("mug", "v1", 1),), 0))
    await state.conversations.update_state("b", "t", {"offer": "mug"})
    await client.expire(keys.state("b", "t"), 10)  # time passes...
    await state.conversations.append("b", "t", Message("user", "hi"))  # ...and the conversation goes on
    assert 990 < await ttl(keys.cart("b", "t")) <= 1000
    assert 990 < await ttl(keys.messages("b", "t")) <= 1000
    assert 990 < await ttl(keys.state("b", "t")) <= 1000  # refreshed with the messages
    await client.expire(keys.messages("b", "t"), 10)
    await state.conversations.update_state("b", "t", {"offer": "pen"})
    assert 990 < await ttl(keys.messages("b", "t")) <= 1000

    staged = StagedTurn(state, in_memory_stores())
    cart = await staged.stores.carts.get("b", "u")
    await staged.stores.carts.save(Cart("b", "u", (CartLine("mug", "v1", 1),), cart.version))
    await staged.stores.conversations.append("b", "u", Message("user", "add a mug"))
    await staged.stores.conversations.update_state("b", "u", {"last": "mug"})
    assert await staged.commit("b", 3, {"sent": 0}) == "committed"
    for key in (keys.cart("b", "u"), keys.messages("b", "u"), keys.state("b", "u")):
        assert 990 < await ttl(key) <= 1000, key
    assert 47 * 3600 < await ttl(keys.outcome("b", 3)) <= 48 * 3600  # claims and outcomes keep 48 h

    forever = RedisStateStores(client, ttl_seconds=None)
    await forever.carts.save(Cart("b", "v", (CartLine("mug", "v1", 1),), 0))
    await forever.conversations.append("b", "v", Message("user", "hi"))
    assert await ttl(keys.cart("b", "v")) == -1 and await ttl(keys.messages("b", "v")) == -1
    with pytest.raises(ValueError):
        RedisStateStores(client, ttl_seconds=0)


async def test_each_business_keeps_its_carts_and_conversations_for_its_own_retention(client: Any) -> None:
    """``retention_days`` in CHATPAY_BUSINESSES: one merchant keeps a week, another the default."""
    state = RedisStateStores(client, ttl_seconds=1000, retention={"weekly": 7 * 86400})
    keys = state.keys
    for business in ("weekly", "other"):
        await state.carts.save(Cart(business, "t", (CartLine("mug", "v1", 1),), 0))
        await state.conversations.append(business, "t", Message("user", "hi"))
    assert 7 * 86400 - 10 < int(await client.ttl(keys.cart("weekly", "t"))) <= 7 * 86400
    assert 7 * 86400 - 10 < int(await client.ttl(keys.messages("weekly", "t"))) <= 7 * 86400
    assert 990 < int(await client.ttl(keys.cart("other", "t"))) <= 1000
    staged = StagedTurn(state, in_memory_stores())
    await staged.stores.conversations.append("weekly", "u", Message("user", "add a mug"))
    assert await staged.commit("weekly", 4, {"sent": 0}) == "committed"
    assert 7 * 86400 - 10 < int(await client.ttl(keys.messages("weekly", "u"))) <= 7 * 86400
