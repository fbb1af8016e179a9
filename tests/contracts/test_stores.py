"""The storage contract: what every backend (in-memory twins, Mongo on mongomock, real MongoDB)
must do the same way, as a user of the bot would notice it."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatpay.core.cart import Cart
from chatpay.core.catalog import Catalog, PolicyDoc, Product, Variant
from chatpay.core.errors import CartError, ConcurrencyConflict
from chatpay.core.money import Money
from chatpay.core.ports import Stores
from chatpay.core.telemetry import Event, UsageRecord
from chatpay.core.turns import Message

# MongoDB keeps milliseconds: times here have no finer part.
T0 = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def trail_catalog(business_id: str) -> Catalog:
    return Catalog.of(
        business_id,
        "EUR",
        [
            Product(
                "ridgeline-2p",
                "Ridgeline 2P Tent",
                "Two-person tent.\nFreestanding, 1.9 kg.",
                (
                    Variant("v1", "Moss", Money(24900, "EUR"), sku="RL2-MOSS", options=(("Colour", "Moss"),)),
                    Variant("v2", "Sand", Money(25950, "EUR"), sku=None, available=False,
                            options=(("Colour", "Sand"),)),
                ),
                product_type="Tents",
                tags=("tent", "camping", "2-person"),
                images=("https://cdn.example/rl2-moss.jpg", "https://cdn.example/rl2-sand.jpg"),
                url="https://trailhead.example/products/ridgeline-2p",
            ),
            Product("enamel-mug", "Enamel Mug", "", (Variant("default", "Default Title", Money(1250, "EUR")),)),
            Product(
                "trail-socks",
                "Merino Trail Socks",
                "Cushioned merino socks.",
                (
                    Variant("s", "S", Money(1800, "EUR"), options=(("Size", "S"),)),
                    Variant("m", "M", Money(1800, "EUR"), options=(("Size", "M"),)),
                ),
                product_type="Apparel",
            ),
        ],
        policies=(
            PolicyDoc("returns", "Returns", "Return unused gear within 30 days.", ("return", "refund")),
            PolicyDoc("shipping", "Shipping", "Free shipping over €80."),
        ),
        store_name="Trailhead Outfitters",
    )


def small_catalog(business_id: str) -> Catalog:
    lamp = Product("head-lamp", "Head Lamp", "300 lumen.", (Variant("default", "Default Title", Money(3500, "EUR")),))
    return Catalog.of(business_id, "EUR", [lamp], store_name="Trailhead (winter)")


def usage(business_id: str, thread: str, turn: str, prompt: int, completion: int,
          cost: Decimal | None, seconds: float) -> UsageRecord:
    return UsageRecord(business_id, thread, turn, "enquiry", "chat", "gpt-4o-mini", "gpt-4o-mini",
                       prompt, completion, cost, 812.5, at(seconds))


# --------------------------------------------------------------------------- isolation


async def test_business_b_never_sees_business_a(stores: Stores) -> None:
    await stores.catalogs.replace(trail_catalog("a"))
    product = trail_catalog("a").products["enamel-mug"]
    await stores.carts.save(Cart("a", "42").add(product, quantity=2))
    await stores.conversations.append("a", "42", Message("user", "hi", "t1", "chitchat", at(0)))
    await stores.conversations.update_state("a", "42", {"last_shown": ["enamel-mug"]})
    await stores.events.record(Event("a", "42", "t1", "CartItemAdded", {"handle": "enamel-mug"}, at(0)))
    await stores.usage.record(usage("a", "42", "t1", 100, 20, Decimal("0.0001"), 0))
    await stores.turns.claim("a", 7, "t1")
    await stores.turns.record_outcome("a", 7, {"reply": "hi"})

    assert await stores.catalogs.get("b") is None
    assert await stores.catalogs.businesses() == ["a"]
    assert await stores.carts.get("b", "42") == Cart("b", "42")
    assert await stores.conversations.recent("b", "42") == []
    assert await stores.conversations.get_state("b", "42") == {}
    assert await stores.events.list("b") == []
    assert await stores.events.list("b", "42") == []
    assert await stores.usage.list("b") == []
    assert await stores.usage.total_tokens("b") == 0
    assert await stores.turns.outcome("b", 7) is None
    assert await stores.turns.claim("b", 7, "t9") is True

    # Business A still has everything.
    assert (await stores.carts.get("a", "42")).quantities() == {"enamel-mug": 2}
    assert await stores.usage.total_tokens("a") == 120


# --------------------------------------------------------------------------- carts


async def test_cart_missing_is_empty_at_version_zero(stores: Stores) -> None:
    assert await stores.carts.get("a", "1") == Cart("a", "1", (), 0)


async def test_two_saves_from_the_same_version_one_wins(stores: Stores) -> None:
    catalog = trail_catalog("a")
    mug, socks = catalog.products["enamel-mug"], catalog.products["trail-socks"]
    base = await stores.carts.get("a", "1")

    first = await stores.carts.save(base.add(mug))
    with pytest.raises(ConcurrencyConflict) as info:
        await stores.carts.save(base.add(socks))
    assert info.value.expected_version == 0
    assert first.version == 1
    assert await stores.carts.get("a", "1") == first

    second = await stores.carts.save(first.add(mug, quantity=2))
    with pytest.raises(ConcurrencyConflict):
        await stores.carts.save(first.clear())
    stored = await stores.carts.get("a", "1")
    assert stored == second
    assert stored.version == 2 and stored.quantities() == {"enamel-mug": 3}


async def test_concurrent_saves_exactly_one_wins(stores: Stores) -> None:
    socks = trail_catalog("a").products["trail-socks"]
    base = await stores.carts.save(Cart("a", "1").add(socks, "s"))
    attempts = [base.add(socks, "m", quantity=n) for n in range(1, 6)]
    results = await asyncio.gather(*(stores.carts.save(c) for c in attempts), return_exceptions=True)
    winners = [r for r in results if isinstance(r, Cart)]
    assert len(winners) == 1
    assert all(isinstance(r, ConcurrencyConflict) for r in results if not isinstance(r, Cart))
    assert await stores.carts.get("a", "1") == winners[0]


async def test_stale_save_after_newer_versions_conflicts(stores: Stores) -> None:
    mug = trail_catalog("a").products["enamel-mug"]
    v1 = await stores.carts.save(Cart("a", "1").add(mug))
    await stores.carts.save(v1.add(mug))
    with pytest.raises(ConcurrencyConflict):
        await stores.carts.save(replace(v1, lines=()))
    with pytest.raises(ConcurrencyConflict):
        await stores.carts.save(Cart("a", "1"))  # a second "first save"


HANDLES = ["ridgeline-2p", "enamel-mug", "trail-socks"]
CART_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(HANDLES), st.sampled_from([None, "v1", "v2", "s", "m"]),
                  st.integers(1, 60)),
        st.tuples(st.just("set"), st.sampled_from(HANDLES), st.sampled_from([None, "s", "m"]), st.integers(0, 5)),
        st.tuples(st.just("remove"), st.sampled_from(HANDLES), st.sampled_from([None, "s"]),
                  st.one_of(st.none(), st.integers(1, 3))),
        st.tuples(st.just("clear"), st.just(""), st.none(), st.none()),
    ),
    max_size=12,
)


def apply_op(cart: Cart, catalog: Catalog, op: tuple[str, str, Any, Any]) -> Cart:
    kind, handle, variant, qty = op
    if kind == "add":
        return cart.add(catalog.products[handle], variant, qty)
    if kind == "set":
        return cart.set_quantity(handle, qty, variant)
    if kind == "remove":
        return cart.remove(handle, qty, variant)
    return cart.clear()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=CART_OPS)
async def test_cart_sequences_round_trip(stores: Stores, ops: list[tuple[str, str, Any, Any]]) -> None:
    catalog = trail_catalog("a")
    thread = uuid.uuid4().hex
    cart = await stores.carts.get("a", thread)
    saves = 0
    for op in ops:
        try:
            cart = apply_op(cart, catalog, op)
        except CartError:
            continue
        cart = await stores.carts.save(cart)
        saves += 1
        assert await stores.carts.get("a", thread) == cart
    assert cart.version == saves
    assert await stores.carts.get("a", thread) == cart


# --------------------------------------------------------------------------- conversations


async def test_conversation_keeps_only_the_newest_messages(stores: Stores) -> None:
    sent = [
        Message("user" if i % 2 == 0 else "assistant", f"message {i}", f"t{i // 2}",
                "enquiry" if i % 3 else None, at(i))
        for i in range(57)
    ]
    for m in sent:
        await stores.conversations.append("a", "1", m)
    assert await stores.conversations.recent("a", "1", limit=100) == sent[-50:]
    assert await stores.conversations.recent("a", "1", limit=3) == sent[-3:]
    assert await stores.conversations.recent("a", "1") == sent[-20:]
    assert await stores.conversations.recent("a", "1", limit=0) == []
    assert await stores.conversations.recent("a", "2") == []


async def test_state_changes_merge_key_by_key(stores: Stores) -> None:
    convos = stores.conversations
    await convos.update_state("a", "1", {"last_shown": ("tent", "mug"), "page": 1})
    await convos.update_state("a", "1", {"page": 2, "pending": {"handle": "tent", "qty": 2}})
    state = await convos.get_state("a", "1")
    assert state == {"last_shown": ["tent", "mug"], "page": 2, "pending": {"handle": "tent", "qty": 2}}

    state["page"] = 99  # a caller's copy, not the stored state
    assert (await convos.get_state("a", "1"))["page"] == 2

    await convos.update_state("a", "1", {"pending": None})
    assert (await convos.get_state("a", "1"))["pending"] is None


async def test_clear_forgets_messages_and_state_of_one_thread(stores: Stores) -> None:
    convos = stores.conversations
    for thread in ("1", "2"):
        await convos.append("a", thread, Message("user", "hello", "t1", None, at(0)))
        await convos.update_state("a", thread, {"k": thread})
    await convos.clear("a", "1")
    assert await convos.recent("a", "1") == [] and await convos.get_state("a", "1") == {}
    assert len(await convos.recent("a", "2")) == 1 and await convos.get_state("a", "2") == {"k": "2"}


# --------------------------------------------------------------------------- catalogs


async def test_catalog_round_trips_exactly_and_versions_increase(stores: Stores) -> None:
    assert await stores.catalogs.get("a") is None
    first = await stores.catalogs.replace(trail_catalog("a"))
    assert first.version >= 1
    got = await stores.catalogs.get("a")
    assert got == first
    assert got is not None and list(got.products) == HANDLES
    assert got.products["ridgeline-2p"] == trail_catalog("a").products["ridgeline-2p"]

    second = await stores.catalogs.replace(small_catalog("a"))
    assert second.version > first.version
    got = await stores.catalogs.get("a")
    assert got == second
    assert got is not None and list(got.products) == ["head-lamp"]  # nothing of the old one is left
    assert got.policies == () and got.store_name == "Trailhead (winter)"
    assert await stores.catalogs.businesses() == ["a"]


async def test_catalog_in_another_currency_round_trips(stores: Stores) -> None:
    yen = Catalog.of("jp", "JPY", [Product("tenugui", "Tenugui", "Cotton towel.",
                                           (Variant("1", "Indigo", Money(1200, "JPY")),))])
    await stores.catalogs.replace(yen)
    got = await stores.catalogs.get("jp")
    assert got is not None and got.currency == "JPY"
    assert got.products["tenugui"].price == Money(1200, "JPY")


async def test_replacing_one_business_leaves_the_other(stores: Stores) -> None:
    a = await stores.catalogs.replace(trail_catalog("a"))
    await stores.catalogs.replace(small_catalog("b"))
    await stores.catalogs.replace(small_catalog("b"))
    assert await stores.catalogs.get("a") == a
    assert await stores.catalogs.businesses() == ["a", "b"]


# --------------------------------------------------------------------------- turns


async def test_an_update_is_claimed_once_and_its_outcome_replays(stores: Stores) -> None:
    turns = stores.turns
    assert await turns.claim("a", 1001, "turn-1") is True
    assert await turns.claim("a", 1001, "turn-1") is False
    assert await turns.claim("a", 1001, "turn-2") is False
    assert await turns.claim("a", 1002, "turn-3") is True

    assert await turns.outcome("a", 1001) is None
    await turns.record_outcome("a", 1001, {"replies": ("Added 2 × Enamel Mug",), "cart": {"enamel-mug": 2}})
    replay = await turns.outcome("a", 1001)
    assert replay == {"replies": ["Added 2 × Enamel Mug"], "cart": {"enamel-mug": 2}}
    assert replay is not None
    replay["cart"]["enamel-mug"] = 9
    assert (await turns.outcome("a", 1001)) == {"replies": ["Added 2 × Enamel Mug"], "cart": {"enamel-mug": 2}}


async def test_outcome_recorded_before_a_claim_does_not_claim(stores: Stores) -> None:
    await stores.turns.record_outcome("a", 5, {"ok": True})
    assert await stores.turns.claim("a", 5, "t") is True
    assert await stores.turns.claim("a", 5, "t") is False
    assert await stores.turns.outcome("a", 5) == {"ok": True}


# --------------------------------------------------------------------------- usage and events


async def test_usage_keeps_exact_costs_and_totals_per_business(stores: Stores) -> None:
    records = [
        usage("a", "1", "t1", 1200, 80, Decimal("0.000228"), 0),
        usage("a", "1", "t2", 10, 0, None, 1),
        usage("a", "2", "t3", 500, 45, Decimal("0.0000001234567890123"), 2),
        usage("b", "1", "t1", 7, 7, Decimal("1"), 3),
    ]
    for r in records:
        await stores.usage.record(r)
    got = await stores.usage.list("a")
    assert got == records[:3]
    assert [type(r.cost_usd) for r in got] == [Decimal, type(None), Decimal]
    assert str(got[0].cost_usd) == "0.000228"
    assert await stores.usage.list("a", thread_id="1") == records[:2]
    assert await stores.usage.list("a", turn_id="t3") == [records[2]]
    assert await stores.usage.list("a", thread_id="2", turn_id="t1") == []
    assert await stores.usage.total_tokens("a") == 1280 + 10 + 545
    assert await stores.usage.total_tokens("b") == 14


async def test_events_list_in_the_order_they_happened(stores: Stores) -> None:
    names = ["EnquiryAnswered", "CartItemAdded", "CartViewed", "CartItemRemoved", "CheckoutStarted"]
    recorded = [
        Event("a", "1" if i != 2 else "2", f"t{i}", name, {"i": i, "handles": ["enamel-mug"]}, at(i))
        for i, name in enumerate(names)
    ]
    for e in recorded:
        await stores.events.record(e)
    assert await stores.events.list("a") == recorded
    assert await stores.events.list("a", limit=2) == recorded[-2:]
    assert await stores.events.list("a", "1") == [e for e in recorded if e.thread_id == "1"]
    assert await stores.events.list("a", "1", limit=1) == [recorded[-1]]
