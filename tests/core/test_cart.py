"""The cart's invariants hold whatever the sequence of operations."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatpay.core.cart import MAX_QUANTITY, Cart
from chatpay.core.catalog import Catalog, Product, Variant
from chatpay.core.errors import CartError, OutOfStock, QuantityError
from chatpay.core.money import Money


def make_catalog() -> Catalog:
    def product(handle: str, prices: list[int], available: list[bool] | None = None) -> Product:
        avail = available or [True] * len(prices)
        variants = tuple(
            Variant(f"{handle}-v{i}", "Default Title" if len(prices) == 1 else f"Size {i}", Money(p, "EUR"),
                    available=a)
            for i, (p, a) in enumerate(zip(prices, avail, strict=True))
        )
        return Product(handle, handle.replace("-", " ").title(), "desc", variants)

    return Catalog.of("shop", "EUR", [
        product("beans", [1250, 4200]),
        product("mug", [900]),
        product("kettle", [5999, 6499, 6499], [True, False, True]),
        product("sold-out", [1000], [False]),
    ])


CATALOG = make_catalog()
SELLABLE = [(p.handle, v.id) for p in CATALOG for v in p.variants if v.available]

ops = st.one_of(
    st.tuples(st.just("add"), st.sampled_from(SELLABLE), st.integers(1, 5)),
    st.tuples(st.just("remove"), st.sampled_from(SELLABLE), st.one_of(st.none(), st.integers(1, 5))),
    st.tuples(st.just("set"), st.sampled_from(SELLABLE), st.integers(0, 5)),
    st.tuples(st.just("clear"), st.just(("", "")), st.just(0)),
)


def expected_subtotal(cart: Cart) -> int:
    total = 0
    for line in cart.lines:
        product = CATALOG.get(line.handle)
        assert product is not None
        total += product.variant(line.variant_id).price.minor * line.quantity
    return total


@settings(max_examples=300)
@given(st.lists(ops, max_size=40))
def test_subtotal_is_always_catalog_price_times_quantity(sequence: list[tuple]) -> None:
    cart = Cart("shop", "t1")
    model: dict[tuple[str, str], int] = {}
    for op, (handle, variant_id), qty in sequence:
        try:
            if op == "add":
                cart = cart.add(CATALOG.products[handle], variant_id, qty)
                model[(handle, variant_id)] = model.get((handle, variant_id), 0) + qty
            elif op == "remove":
                cart = cart.remove(handle, qty, variant_id)
                left = model.get((handle, variant_id), 0) - (qty if qty is not None else 10**9)
                model[(handle, variant_id)] = max(left, 0)
            elif op == "set":
                cart = cart.set_quantity(handle, qty, variant_id)
                model[(handle, variant_id)] = qty
            else:
                cart = cart.clear()
                model.clear()
        except (CartError, QuantityError):
            continue
        model = {k: v for k, v in model.items() if v > 0}
        assert {(ln.handle, ln.variant_id): ln.quantity for ln in cart.lines} == model
        assert cart.subtotal(CATALOG).minor == expected_subtotal(cart)
        assert all(0 < ln.quantity <= MAX_QUANTITY for ln in cart.lines)


def test_out_of_stock_products_and_variants_are_refused() -> None:
    cart = Cart("shop", "t1")
    with pytest.raises(OutOfStock):
        cart.add(CATALOG.products["sold-out"])
    with pytest.raises(OutOfStock):
        cart.add(CATALOG.products["kettle"], "kettle-v1")
    assert cart.add(CATALOG.products["kettle"]).lines[0].variant_id == "kettle-v0"


def test_quantities_are_bounded() -> None:
    cart = Cart("shop", "t1").add(CATALOG.products["mug"], quantity=MAX_QUANTITY)
    with pytest.raises(QuantityError):
        cart.add(CATALOG.products["mug"])
    with pytest.raises(QuantityError):
        Cart("shop", "t1").add(CATALOG.products["mug"], quantity=0)


def test_prices_are_read_from_the_catalog_at_pricing_time() -> None:
    cart = Cart("shop", "t1").add(CATALOG.products["mug"], quantity=2)
    cheaper = Catalog.of("shop", "EUR", [
        Product("mug", "Mug", "d", (Variant("mug-v0", "Default Title", Money(500, "EUR")),))
    ])
    assert cart.subtotal(CATALOG) == Money(1800, "EUR")
    assert cart.subtotal(cheaper) == Money(1000, "EUR")
