"""The one button codec: every button ChatPay sends decodes to what it asked for; nothing else does."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatpay.core.buttons import MAX_BYTES, Action, decode, encode, product_key, resolve
from tests.core.shop import garden_shop


@pytest.mark.parametrize("action", [
    Action("add", "basil-seeds"), Action("add", "rose-fertiliser", "rf-5"), Action("remove", "watering-can"),
    Action("info", "kneeler"), Action("view"), Action("clear"), Action("confirm_clear", variant="7"),
    Action("pay"),
])
def test_every_action_round_trips(action: Action) -> None:
    data = encode(action)
    assert len(data.encode()) <= MAX_BYTES
    assert decode(data) == action


def test_long_handles_become_short_keys_that_resolve() -> None:
    handle = "an-exceptionally-long-product-handle-that-goes-on-and-on-forever"
    key = product_key(handle)
    assert key.startswith("~") and len(key) == 13
    catalog = garden_shop()
    assert resolve(catalog, product_key("basil-seeds")) is catalog.get("basil-seeds")
    assert resolve(catalog, key) is None


def test_a_variant_that_would_not_fit_is_dropped_not_truncated() -> None:
    data = encode(Action("add", "x" * 40, "v" * 30))
    assert data == "a|" + "x" * 40


@pytest.mark.parametrize("data", ["", "zz", "a", "a|", "a||x", "r|x|y", "v|x", "cy|abc", "cy", "c|y",
                                  "a|x|y|z", "p|1", "x" * 70])
def test_anything_else_decodes_to_nothing(data: str) -> None:
    assert decode(data) is None


@given(st.text(max_size=80))
def test_decode_never_raises(data: str) -> None:
    decode(data)
