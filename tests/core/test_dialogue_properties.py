"""Property: whatever a shopper says, in any order, the cart loses nothing no removal named, and its
subtotal is always catalog price times quantity.

Phrasings are drawn from a grammar of cart commands, questions and small talk over the garden shop
(another trade than the demo store's); each is tagged with what it may take away. Every turn runs
through the whole service, on both language engines.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatpay.config import Settings
from tests.core.shop import garden_shop
from tests.core.test_service import runtime_with, say

NAMES = {  # handle -> ways a shopper names it
    "basil-seeds": ["basil seeds", "the basil", "sweet basil seeds"],
    "tomato-seeds": ["tomato seeds", "the tomato seeds", "heirloom tomato seeds"],
    "watering-can": ["watering can", "the watering can", "galvanised watering can"],
    "rose-fertiliser": ["rose fertiliser", "the rose fertiliser 1kg", "rose fertiliser 5kg"],
    "pruning-shears": ["pruning shears", "the red pruning shears"],
}
QUANTITY = st.sampled_from(["", "2 ", "three ", "a ", "one more ", "5 ", "-2 ", "0.5 ", "1e9 ", "0 "])

# (template, what it may take away): None = nothing, "named" = only the product it names, "all" = anything
GRAMMAR: list[tuple[str, str | None]] = [
    ("add {q}{name}", None),
    ("and add {q}{name}", None),
    ("also {q}{name}", None),
    ("switch it to the 5kg", None),
    ("the 5 one", None),
    ("can I get {q}{name}?", None),
    ("do you have {name}?", None),
    ("is {name} in stock", None),
    ("tell me about {name}", None),
    ("what's in my cart", None),
    ("don't remove {name}", None),
    ("please do not empty my cart", None),
    ("does {name} come with everything I need?", None),
    ("will {name} clear the weeds?", None),
    ("can I remove the blade from {name}?", None),
    ("thanks!", None),
    ("checkout", None),
    ("remove {name}", "named"),
    ("take {name} off", "named"),
    ("remove one {name}", "named"),
    ("make it 1 {name}", "named"),
    ("remove it", "all"),  # "it" is whatever the conversation is about
    ("empty my cart", "all"),
    ("yes", "all"),  # may confirm an emptying asked for just before
]


@st.composite
def utterances(draw: st.DrawFn) -> tuple[str, str | None, str]:
    template, takes = draw(st.sampled_from(GRAMMAR))
    handle = draw(st.sampled_from(sorted(NAMES)))
    name = draw(st.sampled_from(NAMES[handle]))
    return template.format(q=draw(QUANTITY), name=name), takes, handle


def subtotal(lines: list[tuple[str, str, int]]) -> Decimal:
    catalog = garden_shop()
    total = Decimal(0)
    for handle, variant_id, quantity in lines:
        product = catalog.get(handle)
        assert product is not None
        total += product.variant(variant_id).price.to_decimal() * quantity
    return total


@pytest.mark.parametrize("nlu", ["legacy", "fitted"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(utterances(), min_size=3, max_size=10))
def test_the_cart_never_loses_what_no_removal_named(nlu: str, steps: list[tuple[str, str | None, str]]) -> None:
    async def run() -> None:
        rt = await runtime_with(settings=Settings(business_id="garden", nlu=nlu))
        before: dict[str, int] = {}
        for text, takes, handle in steps:
            r = await say(rt, text)
            after = r.cart.quantities()
            for h, had in before.items():
                lost = after.get(h, 0) < had
                allowed = takes == "all" or (takes == "named" and h == handle)
                assert not lost or allowed, f"{text!r} took {h} from {before} to {after}"
            view = r.reply.cart
            lines = [(ln.handle, ln.variant_id, ln.quantity) for ln in r.cart.lines]
            if view is not None:
                assert view.subtotal.to_decimal() == subtotal(lines), text
            before = after

    asyncio.run(run())
