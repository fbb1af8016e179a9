"""Catalog types: descriptions as plain text, currencies, lowest available price."""

from __future__ import annotations

import pytest

from chatpay.core.catalog import Catalog, strip_html
from chatpay.core.errors import CatalogError
from tests.core.shop import garden_shop, product, variant


def test_html_descriptions_become_plain_text() -> None:
    html = "<p>Built for <em>gravel</em>, roads &amp; trails.</p><ul><li>Light</li><li>Strong</li></ul>"
    assert strip_html(html) == "Built for gravel, roads & trails.\nLight\nStrong"


def test_a_product_price_is_its_cheapest_available_variant() -> None:
    shears = garden_shop().products["pruning-shears"]
    assert shears.price.amount_str() == "19.90" and shears.available
    kneeler = garden_shop().products["kneeler"]
    assert not kneeler.available


def test_a_catalog_refuses_mixed_currencies_and_duplicate_handles() -> None:
    usd = product("usd-thing", "Thing", "d", [variant("u", "Default Title", "1.00")])
    object.__setattr__(usd.variants[0], "price", type(usd.variants[0].price)(100, "USD"))
    with pytest.raises(CatalogError, match="catalog is in EUR"):
        Catalog.of("b", "EUR", [usd])
    twice = product("same", "Same", "d", [variant("s", "Default Title", "1.00")])
    with pytest.raises(CatalogError, match="duplicate handle"):
        Catalog.of("b", "EUR", [twice, twice])
