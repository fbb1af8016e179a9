"""The MongoDB turn journal: a redelivered update changes nothing twice, whenever the worker died.

Runs on mongomock always, and on a real server when ``CHATPAY_TEST_MONGODB_URI`` is set (a fresh
database per test, dropped afterwards), like the rest of the contract suite. A crash is simulated by
raising :class:`Crash` (a ``BaseException``, so nothing on the way swallows it) from inside the
journal's apply loop: right after the journal is written, and after each of its writes.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pymongo.database import Database

from chatpay.adapters.mongo import MongoJournal, MongoStagedTurn, embedded_database, mongo_stores
from chatpay.adapters.mongo.journal import JOURNALS_KEPT
from chatpay.bootstrap import build
from chatpay.config import Settings
from chatpay.core.cart import Cart
from chatpay.core.checkout import order_from_cart, settle
from chatpay.core.errors import ConcurrencyConflict
from chatpay.core.orders import ConfirmedPayment
from chatpay.core.ports import Stores
from chatpay.core.service import TurnService
from chatpay.core.telemetry import Event, UsageRecord
from chatpay.core.turns import Message
from tests.contracts.test_stores import trail_catalog

# MongoDB keeps milliseconds: times here have no finer part.
T0 = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
B, THREAD, UPDATE = "a", "42", 9001
OUTCOME = {"turn_id": "t-1", "chat_id": THREAD, "sent": 0, "messages": [{"method": "sendMessage",
                                                                        "params": {"text": "Added 2 socks"}}]}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Crash(BaseException):
    """The process dying at this point."""


@dataclass
class Mongo:
    db: Database[Any]
    offload: bool

    def stores(self) -> Stores:
        return mongo_stores(self.db, offload=self.offload)

    def journal(self) -> MongoJournal:
        return MongoJournal(self.db, offload=self.offload)


@pytest.fixture(params=["mongomock", "mongodb"])
def mongo(request: pytest.FixtureRequest) -> Iterator[Mongo]:
    if request.param == "mongomock":
        yield Mongo(embedded_database(), offload=False)
        return
    uri = os.environ.get("CHATPAY_TEST_MONGODB_URI")
    if not uri:
        pytest.skip("CHATPAY_TEST_MONGODB_URI not set")
    import pymongo

    client: pymongo.MongoClient = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000, tz_aware=True)
    name = f"chatpay_test_{uuid.uuid4().hex[:12]}"
    try:
        yield Mongo(client[name], offload=True)
    finally:
        client.drop_database(name)
        client.close()


def crash_after(monkeypatch: pytest.MonkeyPatch, applied: int) -> None:
    """Kill the commit once ``applied`` journalled writes are done (0: right after the journal insert)."""
    original = MongoJournal._apply_op
    done = 0

    def apply_op(self: MongoJournal, journal: str, index: int, op: dict[str, Any]) -> str | None:
        nonlocal done
        if done >= applied:
            raise Crash(f"died after {done} writes")
        result = original(self, journal, index, op)
        done += 1
        return result

    monkeypatch.setattr(MongoJournal, "_apply_op", apply_op)


def crash_before_applied_mark(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kill the commit after every write, before the journal is marked applied."""
    original = MongoJournal._apply

    def apply(self: MongoJournal, business_id: str, update_id: int, ops: list[dict[str, Any]]) -> None:
        for index, op in enumerate(ops):
            self._apply_op(f"{business_id}:{update_id}", index, op)
        raise Crash("died before marking the journal applied")

    monkeypatch.setattr(MongoJournal, "_apply", apply)
    assert original is not apply


async def seed(stores: Stores) -> None:
    """A shopper with one mug in the cart (version 1), one earlier message and a state key."""
    catalog = trail_catalog(B)
    await stores.catalogs.replace(catalog)
    await stores.carts.save(Cart(B, THREAD).add(catalog.products["enamel-mug"], quantity=1))
    await stores.conversations.append(B, THREAD, Message("user", "earlier", "t-0", "chitchat", at(-60)))
    await stores.conversations.update_state(B, THREAD, {"kept": 1})


async def stage_turn(journal: MongoJournal, stores: Stores, *, text: str = "add 2 socks") -> MongoStagedTurn:
    """What a turn does, on staged stores: a cart change, two messages, state, two events, two usage records."""
    staged = journal.stage(stores)
    s = staged.stores
    catalog = trail_catalog(B)
    cart = await s.carts.get(B, THREAD)
    await s.carts.save(cart.add(catalog.products["trail-socks"], "m", quantity=2))
    await s.conversations.append(B, THREAD, Message("user", text, "t-1", "cart_add", at(0)))
    await s.conversations.append(B, THREAD, Message("assistant", "Added 2 socks", "t-1", "cart_add", at(0)))
    await s.conversations.update_state(B, THREAD, {"last_shown": ["trail-socks"]})
    await s.events.record(Event(B, THREAD, "t-1", "CartItemAdded", {"handle": "trail-socks", "quantity": 2}, at(0)))
    await s.events.record(Event(B, THREAD, "t-1", "TurnAnswered", {"intent": "cart_add"}, at(0)))
    await s.usage.record(UsageRecord(B, THREAD, "t-1", "router", "chat", "gpt-4o-mini", "gpt-4o-mini",
                                     100, 20, Decimal("0.000027"), 310.5, at(0)))
    await s.usage.record(UsageRecord(B, THREAD, "t-1", "cart", "offline", "offline", "offline",
                                     0, 0, None, 2.0, at(0)))
    return staged


async def assert_applied_once(stores: Stores) -> None:
    cart = await stores.carts.get(B, THREAD)
    assert cart.quantities() == {"enamel-mug": 1, "trail-socks": 2}
    assert cart.version == 2
    messages = await stores.conversations.recent(B, THREAD, 50)
    assert [m.content for m in messages] == ["earlier", "add 2 socks", "Added 2 socks"]
    assert await stores.conversations.get_state(B, THREAD) == {"kept": 1, "last_shown": ["trail-socks"]}
    assert [e.name for e in await stores.events.list(B)] == ["CartItemAdded", "TurnAnswered"]
    assert [u.agent for u in await stores.usage.list(B)] == ["router", "cart"]
    assert await stores.usage.total_tokens(B) == 120


async def nothing_applied(stores: Stores) -> None:
    cart = await stores.carts.get(B, THREAD)
    assert cart.quantities() == {"enamel-mug": 1}
    assert [m.content for m in await stores.conversations.recent(B, THREAD, 50)] == ["earlier"]
    assert await stores.events.list(B) == []
    assert await stores.usage.list(B) == []


# --------------------------------------------------------------------------- crash at every point

OPS = 6  # one cart, one conversation, two events, two usage records


async def test_a_turn_stages_its_writes_until_the_commit(mongo: Mongo) -> None:
    stores, journal = mongo.stores(), mongo.journal()
    await seed(stores)
    staged = await stage_turn(journal, stores)
    assert [op["op"] for op in staged.ops()] == ["cart", "conversation", "insert", "insert", "insert", "insert"]
    # The turn reads its own writes...
    assert (await staged.stores.carts.get(B, THREAD)).quantities() == {"enamel-mug": 1, "trail-socks": 2}
    assert len(await staged.stores.conversations.recent(B, THREAD)) == 3
    assert await staged.stores.usage.total_tokens(B) == 120
    # ...and nobody else sees them yet.
    await nothing_applied(stores)
    assert await journal.outcome(B, UPDATE) is None

    assert await staged.commit(B, UPDATE, OUTCOME) == "committed"
    await assert_applied_once(stores)
    assert await journal.outcome(B, UPDATE) == OUTCOME


@pytest.mark.parametrize("applied", range(OPS))  # after the last write: the next test
async def test_a_crash_after_any_write_is_finished_once_by_the_redelivery(
        mongo: Mongo, monkeypatch: pytest.MonkeyPatch, applied: int) -> None:
    stores, journal = mongo.stores(), mongo.journal()
    await seed(stores)
    staged = await stage_turn(journal, stores)
    assert len(staged.ops()) == OPS
    crash_after(monkeypatch, applied)
    with pytest.raises(Crash):
        await staged.commit(B, UPDATE, OUTCOME)
    monkeypatch.undo()

    doc = mongo.db["turns"].find_one({"business_id": B, "update_id": UPDATE})
    assert doc is not None and doc["journal"]["state"] == "pending"

    # The redelivery asks for the outcome (as Worker.handle does): the journal is finished and
    # the outcome replayed, so the turn never runs again.
    assert await journal.outcome(B, UPDATE) == OUTCOME
    await assert_applied_once(stores)
    doc = mongo.db["turns"].find_one({"business_id": B, "update_id": UPDATE})
    assert doc is not None and doc["journal"]["state"] == "applied" and "conflicts" not in doc["journal"]

    # Recovering again, or a run presumed dead committing the same update, changes nothing.
    assert await staged.recover(B, UPDATE) == OUTCOME
    again = await stage_turn(journal, stores)
    assert await again.commit(B, UPDATE, OUTCOME) == "duplicate"
    await assert_applied_once(stores)


async def test_a_crash_before_the_journal_is_marked_applied_is_finished_once(
        mongo: Mongo, monkeypatch: pytest.MonkeyPatch) -> None:
    stores, journal = mongo.stores(), mongo.journal()
    await seed(stores)
    staged = await stage_turn(journal, stores)
    crash_before_applied_mark(monkeypatch)
    with pytest.raises(Crash):
        await staged.commit(B, UPDATE, OUTCOME)
    monkeypatch.undo()
    await assert_applied_once(stores)  # every write made it; the journal still says pending
    assert await journal.recover(B, UPDATE) == OUTCOME
    assert await journal.recover(B, UPDATE) == OUTCOME
    await assert_applied_once(stores)


async def test_two_recoveries_at_once_apply_once(mongo: Mongo, monkeypatch: pytest.MonkeyPatch) -> None:
    stores, journal = mongo.stores(), mongo.journal()
    await seed(stores)
    staged = await stage_turn(journal, stores)
    crash_after(monkeypatch, 1)
    with pytest.raises(Crash):
        await staged.commit(B, UPDATE, OUTCOME)
    monkeypatch.undo()
    other = mongo.journal()  # another worker process
    assert await asyncio.gather(journal.recover(B, UPDATE), other.recover(B, UPDATE)) == [OUTCOME, OUTCOME]
    await assert_applied_once(stores)


async def test_a_crash_before_the_journal_leaves_nothing_and_the_turn_runs_again(mongo: Mongo) -> None:
    stores, journal = mongo.stores(), mongo.journal()
    await seed(stores)
    await stage_turn(journal, stores)  # the worker dies here: staged writes are lost with it
    await nothing_applied(stores)
    assert await journal.outcome(B, UPDATE) is None
    assert await journal.claim(B, UPDATE, "t-1") is True
    rerun = await stage_turn(journal, stores)
    assert await rerun.commit(B, UPDATE, OUTCOME) == "committed"
    await assert_applied_once(stores)


# --------------------------------------------------------------------------- concurrent commits


async def test_two_runs_of_one_update_commit_once(mongo: Mongo) -> None:
    stores, journal = mongo.stores(), mongo.journal()
    await seed(stores)
    await journal.claim(B, UPDATE, "t-1")
    first = await stage_turn(journal, stores, text="add 2 socks")
    second = await stage_turn(mongo.journal(), stores, text="add 2 socks (again)")
    other_outcome = {**OUTCOME, "turn_id": "t-2"}
    statuses = await asyncio.gather(first.commit(B, UPDATE, OUTCOME), second.commit(B, UPDATE, other_outcome))
    assert sorted(statuses) == ["committed", "duplicate"]
    winner = OUTCOME if statuses[0] == "committed" else other_outcome
    assert await journal.outcome(B, UPDATE) == winner

    cart = await stores.carts.get(B, THREAD)
    assert cart.quantities() == {"enamel-mug": 1, "trail-socks": 2} and cart.version == 2
    texts = [m.content for m in await stores.conversations.recent(B, THREAD, 50)]
    assert texts in (["earlier", "add 2 socks", "Added 2 socks"], ["earlier", "add 2 socks (again)", "Added 2 socks"])
    assert len(await stores.events.list(B)) == 2
    assert len(await stores.usage.list(B)) == 2


async def test_a_run_that_passes_its_checks_while_another_commits_loses_at_the_journal_write(
        mongo: Mongo, monkeypatch: pytest.MonkeyPatch) -> None:
    stores, journal = mongo.stores(), mongo.journal()
    await seed(stores)
    await journal.claim(B, UPDATE, "t-1")
    first = await stage_turn(journal, stores)
    second = journal.stage(stores)  # the same update, run again: it happens to touch no cart
    await second.stores.conversations.append(B, THREAD, Message("user", "second run", "t-2", None, at(0)))
    await second.stores.events.record(Event(B, THREAD, "t-2", "TurnAnswered", {}, at(0)))
    assert await first.commit(B, UPDATE, OUTCOME) == "committed"
    # The second run looked before the first committed (the race a real server allows).
    monkeypatch.setattr(MongoJournal, "_committed", lambda self, business_id, update_id: False)
    assert await second.commit(B, UPDATE, {"turn_id": "t-2"}) == "duplicate"
    monkeypatch.undo()
    assert await journal.outcome(B, UPDATE) == OUTCOME
    await assert_applied_once(stores)


async def test_a_cart_changed_by_another_writer_is_a_conflict_and_nothing_is_written(mongo: Mongo) -> None:
    stores, journal = mongo.stores(), mongo.journal()
    await seed(stores)
    staged = await stage_turn(journal, stores)
    cart = await stores.carts.get(B, THREAD)
    await stores.carts.save(cart.add(trail_catalog(B).products["enamel-mug"], quantity=5))  # not a turn of ours
    with pytest.raises(ConcurrencyConflict):
        await staged.commit(B, UPDATE, OUTCOME)
    assert await journal.outcome(B, UPDATE) is None
    assert (await stores.carts.get(B, THREAD)).quantities() == {"enamel-mug": 6}
    assert [m.content for m in await stores.conversations.recent(B, THREAD, 50)] == ["earlier"]
    assert await stores.events.list(B) == [] and await stores.usage.list(B) == []
    # The update simply runs again, from the cart as it is now.
    rerun = await stage_turn(journal, stores)
    assert await rerun.commit(B, UPDATE, OUTCOME) == "committed"
    assert (await stores.carts.get(B, THREAD)).quantities() == {"enamel-mug": 6, "trail-socks": 2}


async def test_a_late_rewrite_is_recognised_long_after_the_thread_moved_on(
        mongo: Mongo, monkeypatch: pytest.MonkeyPatch) -> None:
    stores, journal = mongo.stores(), mongo.journal()
    await seed(stores)
    staged = await stage_turn(journal, stores)
    crash_after(monkeypatch, 2)  # cart and conversation written, events and usage not
    with pytest.raises(Crash):
        await staged.commit(B, UPDATE, OUTCOME)
    monkeypatch.undo()
    # Later turns of the shopper commit (each finishing the one before, as lanes do).
    socks = trail_catalog(B).products["trail-socks"]
    for n in range(1, 4):
        assert await journal.outcome(B, UPDATE + n - 1) is not None
        later = journal.stage(stores)
        cart = await later.stores.carts.get(B, THREAD)
        await later.stores.carts.save(cart.add(socks, "s", quantity=1))
        await later.stores.conversations.append(B, THREAD, Message("user", f"later {n}", f"t-{n + 1}", None, at(n)))
        assert await later.commit(B, UPDATE + n, {"n": n}) == "committed"
    # A worker that was merely slow now applies the first journal again: nothing changes twice.
    doc = mongo.db["turns"].find_one({"business_id": B, "update_id": UPDATE})
    assert doc is not None
    mongo.db["turns"].update_one({"_id": doc["_id"]}, {"$set": {"journal.state": "pending"}})
    assert await journal.recover(B, UPDATE) == OUTCOME
    cart = await stores.carts.get(B, THREAD)
    assert cart.quantities() == {"enamel-mug": 1, "trail-socks": 5} and cart.version == 5
    texts = [m.content for m in await stores.conversations.recent(B, THREAD, 50)]
    assert texts == ["earlier", "add 2 socks", "Added 2 socks", "later 1", "later 2", "later 3"]
    assert len(await stores.events.list(B)) == 2
    doc = mongo.db["turns"].find_one({"_id": doc["_id"]})
    assert doc is not None and "conflicts" not in doc["journal"]
    cart_doc = mongo.db["carts"].find_one({"business_id": B, "thread_id": THREAD})
    assert cart_doc is not None and f"{B}:{UPDATE}" in cart_doc["journals"]
    assert len(cart_doc["journals"]) <= JOURNALS_KEPT


# --------------------------------------------------------------------------- the TurnStore


async def test_the_journal_is_the_turn_store(mongo: Mongo) -> None:
    journal = mongo.journal()
    assert await journal.claim(B, 1, "t") is True
    assert await journal.claim(B, 1, "t2") is False
    assert await journal.outcome(B, 1) is None
    await journal.record_outcome(B, 1, {"replies": ("hi",)})
    assert await journal.outcome(B, 1) == {"replies": ["hi"]}
    await journal.record_outcome(B, 5, {"ok": True})  # an outcome before a claim does not claim
    assert await journal.claim(B, 5, "t") is True
    assert await journal.claim(B, 5, "t") is False


async def test_send_progress_is_kept_and_applies_nothing_again(mongo: Mongo) -> None:
    stores, journal = mongo.stores(), mongo.journal()
    await seed(stores)
    assert await (await stage_turn(journal, stores)).commit(B, UPDATE, OUTCOME) == "committed"
    progress = await journal.outcome(B, UPDATE)
    assert progress is not None
    progress["sent"] = 1  # what Worker._deliver records after each message
    await journal.record_outcome(B, UPDATE, progress)
    assert (await journal.outcome(B, UPDATE) or {})["sent"] == 1
    await assert_applied_once(stores)


async def test_journalled_records_read_back_like_direct_ones(mongo: Mongo) -> None:
    stores, journal = mongo.stores(), mongo.journal()
    staged = journal.stage(stores)
    event = Event(B, THREAD, "t-1", "CartItemAdded", {"handle": "x", "lines": [1, 2]}, at(1))
    record = UsageRecord(B, THREAD, "t-1", "router", "chat", "gpt-4o-mini", "gpt-4o-mini", 7, 3,
                         Decimal("0.0000001234567890123"), 12.5, at(1))
    await staged.stores.events.record(event)
    await staged.stores.usage.record(record)
    await staged.stores.conversations.append(B, THREAD, Message("user", "hi", "t-1", None, at(1)))
    assert await staged.commit(B, UPDATE, OUTCOME) == "committed"
    assert await stores.events.list(B) == [event]
    assert await stores.usage.list(B) == [record]
    assert await stores.conversations.recent(B, THREAD) == [Message("user", "hi", "t-1", None, at(1))]


async def test_a_cleared_conversation_is_journalled_as_one_write(mongo: Mongo,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    stores, journal = mongo.stores(), mongo.journal()
    await seed(stores)
    staged = journal.stage(stores)
    await staged.stores.conversations.clear(B, THREAD)
    await staged.stores.conversations.append(B, THREAD, Message("assistant", "fresh start", "t-1", None, at(0)))
    assert await staged.stores.conversations.get_state(B, THREAD) == {}
    assert [op["op"] for op in staged.ops()] == ["conversation"]
    crash_after(monkeypatch, 0)
    with pytest.raises(Crash):
        await staged.commit(B, UPDATE, OUTCOME)
    monkeypatch.undo()
    assert await journal.recover(B, UPDATE) == OUTCOME
    assert [m.content for m in await stores.conversations.recent(B, THREAD)] == ["fresh start"]
    assert await stores.conversations.get_state(B, THREAD) == {}


# --------------------------------------------------------------------------- orders


async def test_a_paid_checkout_is_journalled_and_recovered_once(mongo: Mongo,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    stores, journal = mongo.stores(), mongo.journal()
    await seed(stores)
    catalog = trail_catalog(B)
    staged = journal.stage(stores)
    s = staged.stores
    assert s.orders is not None and stores.orders is not None
    cart = await s.carts.get(B, THREAD)
    order = await s.orders.create(order_from_cart(cart, catalog, provider="sandbox", at=at(0)))
    payment = ConfirmedPayment("sandbox", order.id, f"sandbox-{order.id}", order.currency, order.total_minor)
    settled = await settle(s.orders, payment, business_id=B, catalog=catalog, at=at(1))
    assert settled.outcome == "paid"
    await s.carts.save(cart.clear())
    assert await stores.orders.get(B, order.id) is None  # staged
    assert [op["op"] for op in staged.ops()] == ["cart", "order_create"]

    crash_after(monkeypatch, 1)
    with pytest.raises(Crash):
        await staged.commit(B, UPDATE, OUTCOME)
    monkeypatch.undo()
    assert await journal.recover(B, UPDATE) == OUTCOME
    assert await journal.recover(B, UPDATE) == OUTCOME
    orders = await stores.orders.list(B)
    assert [(o.id, o.state, o.provider_payment_id) for o in orders] == [(order.id, "paid", payment.payment_id)]
    assert (await stores.carts.get(B, THREAD)).lines == ()

    # The same payment in a later update finds the order paid: nothing is paid twice.
    later = journal.stage(stores)
    assert later.stores.orders is not None
    again = await settle(later.stores.orders, payment, business_id=B, catalog=catalog, at=at(2))
    assert again.outcome == "duplicate"
    assert later.ops() == []


@pytest.mark.parametrize("applied", [0, 1, 2])  # 2: both written, the journal not yet marked applied
async def test_a_settlement_cut_short_is_recovered_once(mongo: Mongo, monkeypatch: pytest.MonkeyPatch,
                                                        applied: int) -> None:
    stores, journal = mongo.stores(), mongo.journal()
    await seed(stores)
    assert stores.orders is not None
    catalog = trail_catalog(B)
    order = await stores.orders.create(order_from_cart(await stores.carts.get(B, THREAD), catalog,
                                                       provider="telegram", at=at(0)))
    staged = journal.stage(stores)
    s = staged.stores
    assert s.orders is not None
    payment = ConfirmedPayment("telegram", order.id, "charge-1", order.currency, order.total_minor)
    assert (await settle(s.orders, payment, business_id=B, catalog=catalog, at=at(1))).outcome == "paid"
    await s.carts.save((await s.carts.get(B, THREAD)).clear())
    assert [op["op"] for op in staged.ops()] == ["cart", "order_update"]
    if applied < 2:
        crash_after(monkeypatch, applied)
    else:
        crash_before_applied_mark(monkeypatch)
    with pytest.raises(Crash):
        await staged.commit(B, UPDATE, OUTCOME)
    monkeypatch.undo()
    assert await journal.outcome(B, UPDATE) == OUTCOME
    assert await journal.recover(B, UPDATE) == OUTCOME
    doc = mongo.db["turns"].find_one({"business_id": B, "update_id": UPDATE})
    assert doc is not None and doc["journal"]["state"] == "applied" and "conflicts" not in doc["journal"]
    stored = await stores.orders.get(B, order.id)
    assert stored is not None and stored.state == "paid" and stored.provider_payment_id == "charge-1"
    assert [t.state for t in stored.history] == ["paid"]
    cart = await stores.carts.get(B, THREAD)
    assert cart.lines == () and cart.version == 2


async def test_an_order_moved_on_by_another_writer_is_a_conflict(mongo: Mongo) -> None:
    stores, journal = mongo.stores(), mongo.journal()
    await seed(stores)
    assert stores.orders is not None
    catalog = trail_catalog(B)
    order = await stores.orders.create(order_from_cart(await stores.carts.get(B, THREAD), catalog,
                                                       provider="telegram", at=at(0)))
    staged = journal.stage(stores)
    assert staged.stores.orders is not None
    payment = ConfirmedPayment("telegram", order.id, "charge-1", order.currency, order.total_minor)
    assert (await settle(staged.stores.orders, payment, business_id=B, catalog=catalog, at=at(1))).outcome == "paid"
    assert [op["op"] for op in staged.ops()] == ["order_update"]
    await stores.orders.update(order.to("expired", at(2), "swept"), "pending")  # the order sweep, meanwhile
    with pytest.raises(ConcurrencyConflict):
        await staged.commit(B, UPDATE, OUTCOME)
    assert await journal.outcome(B, UPDATE) is None
    stored = await stores.orders.get(B, order.id)
    assert stored is not None and stored.state == "expired"


# --------------------------------------------------------------------------- a real turn


async def test_a_real_turn_cut_short_after_its_journal_adds_2_not_4(mongo: Mongo,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = build(Settings(business_id="demo"), offline=True, stores=mongo.stores())
    await runtime.start()
    catalog = await runtime.catalog()
    assert catalog is not None
    product = next(iter(catalog))
    journal = mongo.journal()

    async def run_turn(update_id: int) -> tuple[MongoStagedTurn, dict[str, Any]]:
        """The worker's MongoDB branch: the turn on staged stores, its usage routed to it."""
        staged = journal.stage(runtime.stores, meter=runtime.engine.meter)
        service = TurnService(stores=staged.stores, engine=runtime.engine, clock=runtime.clock)
        turn = runtime.turn(f"add 2 {product.name}", thread_id="shopper-1", update_id=update_id)
        with staged.active():
            result = await service.handle(turn)
        assert result.error is None and result.intent == "cart_add"
        return staged, {"turn_id": turn.turn_id, "reply": result.reply.text, "sent": 0}

    staged, outcome = await run_turn(1)
    assert [op["op"] for op in staged.ops()].count("insert") >= 2  # its event(s) and usage record
    stored = runtime.stores
    assert (await stored.carts.get("demo", "shopper-1")).lines == ()
    assert await stored.usage.list("demo") == [] and await stored.events.list("demo") == []

    crash_after(monkeypatch, 0)  # the journal is written, nothing of it applied
    with pytest.raises(Crash):
        await staged.commit("demo", 1, outcome)
    monkeypatch.undo()

    # Telegram redelivers update 1. As Worker.handle does: an outcome means replay, never rerun.
    replay = await journal.outcome("demo", 1)
    assert replay == outcome
    cart = await stored.carts.get("demo", "shopper-1")
    assert cart.quantities() == {product.handle: 2}

    # Even a run of update 1 that was presumed dead and finishes now does not add 2 more.
    zombie, zombie_outcome = await run_turn(1)
    assert await zombie.commit("demo", 1, zombie_outcome) == "duplicate"
    assert (await stored.carts.get("demo", "shopper-1")).quantities() == {product.handle: 2}
    messages = await stored.conversations.recent("demo", "shopper-1", 50)
    assert [m.role for m in messages] == ["user", "assistant"]
    assert len(await stored.usage.list("demo", thread_id="shopper-1")) == len(
        [op for op in staged.ops() if op.get("collection") == "usage"]) >= 1
    assert {e.turn_id for e in await stored.events.list("demo", "shopper-1")} == {outcome["turn_id"]}
