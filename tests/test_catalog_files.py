"""Catalog and store files: both formats, exact prices, and errors that say where."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from chatpay.adapters.memory import InMemoryCatalogStore
from chatpay.adapters.mongo import embedded_database, mongo_stores
from chatpay.catalog_files import (
    StoreProfile,
    import_catalog,
    load_catalog_file,
    load_store_profile,
    parse_catalog,
)
from chatpay.core.catalog import PolicyDoc
from chatpay.core.errors import CatalogError
from chatpay.core.money import Money

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "samples"


def shopify(*products: dict[str, Any]) -> str:
    return json.dumps({"products": list(products)})


def kenya(**changes: Any) -> dict[str, Any]:
    product = {
        "id": 101,
        "title": "Kenya AA",
        "handle": "kenya-aa",
        "body_html": "<p>Blackcurrant &amp; <strong>grapefruit</strong>.</p><ul><li>Roast: medium</li></ul>",
        "product_type": "Coffee Beans",
        "tags": "coffee, kenya,  africa ,",
        "options": [{"name": "Size", "values": ["250g", "1kg"]}],
        "variants": [
            {"id": 1, "title": "250g", "price": "14.50", "sku": "KAA-250", "available": True, "option1": "250g"},
            {"id": 2, "title": "1kg", "price": "49.00", "sku": "", "available": False, "option1": "1kg"},
        ],
        "images": [{"src": "https://cdn.example/kenya.jpg"}],
    }
    product.update(changes)
    return product


def bike(**changes: Any) -> dict[str, Any]:
    item = {
        "_id": {"$oid": "e137cf46d0e7b7a1fb21a74d"},
        "handle": "gravel-grx",
        "name": "Gravel Explorer GRX",
        "description": "<p>Fast on <em>gravel</em>,&nbsp;calm on tarmac.</p>",
        "price": {"$numberDecimal": "1249.50"},
        "currency": "GBP",
        "images": ["https://cdn.example/grx.jpg"],
        "available": True,
        "url": "https://shop.example/products/gravel-grx",
        "stock": {"$numberLong": "4"},
        "updated_at": {"$date": "2024-01-10T09:30:00Z"},
        "brand": "Spoke & Chain",
    }
    item.update(changes)
    return item


def parse(data: str | bytes, **kwargs: Any) -> Any:
    kwargs.setdefault("business_id", "shop")
    return parse_catalog(data, source="products.json", **kwargs)


# --------------------------------------------------------------------------- Shopify


def test_the_shopify_sample_gives_twenty_products() -> None:
    catalog = load_catalog_file(SAMPLES / "shopify_20.json", business_id="summit", currency="EUR")
    assert len(catalog) == 20 and catalog.currency == "EUR" and catalog.business_id == "summit"
    boots = catalog.products["cascade-waterproof-hiking-boots"]
    assert boots.name == "Cascade Waterproof Hiking Boots"
    assert [v.title for v in boots.variants][:2] == ["EU 40", "EU 41"]
    assert boots.variants[1].price == Money(18900, "EUR") and boots.variants[1].options == (("Size", "EU 41"),)
    assert not boots.variants[0].available and boots.available
    assert "Vibram® sole" in boots.description and "<" not in boots.description
    stove = catalog.products["titan-2-burner-camp-stove"]
    assert len(stove.variants) == 1 and stove.variants[0].is_default and stove.variants[0].options == ()


def test_shopify_fields_map_to_products() -> None:
    catalog = parse(shopify(kenya()), currency="eur")
    product = catalog.products["kenya-aa"]
    assert catalog.currency == "EUR"
    assert product.description == "Blackcurrant & grapefruit.\nRoast: medium"
    assert product.tags == ("coffee", "kenya", "africa")
    assert product.images == ("https://cdn.example/kenya.jpg",)
    assert product.product_type == "Coffee Beans"
    small, big = product.variants
    assert (small.id, small.price, small.sku, small.available) == ("1", Money(1450, "EUR"), "KAA-250", True)
    assert (big.id, big.price, big.sku, big.available) == ("2", Money(4900, "EUR"), None, False)
    assert small.options == (("Size", "250g"),)


def test_shopify_tags_may_be_a_list() -> None:
    listed = parse(shopify(kenya(tags=["coffee", "kenya", "africa"])), currency="EUR")
    assert listed.products["kenya-aa"].tags == ("coffee", "kenya", "africa")


def test_a_shopify_export_needs_a_currency() -> None:
    with pytest.raises(CatalogError) as info:
        parse(shopify(kenya()), default_currency="EUR")
    assert info.value.source == "products.json" and info.value.field == "currency"
    assert "--currency" in str(info.value)


def test_shopify_prices_are_exact_in_every_currency() -> None:
    yen = parse(shopify(kenya(variants=[{"id": 1, "price": "1200", "title": "Default Title"}])), currency="JPY")
    assert yen.products["kenya-aa"].price == Money(1200, "JPY")
    dinar = parse(shopify(kenya(variants=[{"id": 1, "price": 12.345}])), currency="KWD")
    assert dinar.products["kenya-aa"].price == Money(12345, "KWD")


# --------------------------------------------------------------------------- normalised list


def test_normalised_list_with_extended_json() -> None:
    items = [
        bike(),
        bike(handle="city-e", name="City E", price={"$numberDouble": "1999.99"}, currency=None,
             description="Plain text, no tags.", stock={"$numberLong": "0"}, available=None),
        bike(handle="bell", name="Bell", price={"$numberLong": "12"}, category="Accessories", tags=["bell"]),
        bike(handle="tube", name="Inner Tube", price=6.1, stock={"$numberInt": "30"}, images=[]),
    ]
    catalog = parse(json.dumps(items), currency="GBP")
    grx, city, bell, tube = (catalog.products[h] for h in ("gravel-grx", "city-e", "bell", "tube"))
    assert grx.price == Money(124950, "GBP") and grx.description == "Fast on gravel, calm on tarmac."  # &nbsp; is a plain space
    assert grx.url == "https://shop.example/products/gravel-grx" and grx.images == ("https://cdn.example/grx.jpg",)
    assert city.price == Money(199999, "GBP") and city.description == "Plain text, no tags."
    assert not city.available  # out of stock and no "available" given
    assert bell.price == Money(1200, "GBP") and bell.product_type == "Accessories" and bell.tags == ("bell",)
    assert tube.price == Money(610, "GBP") and tube.available and tube.images == ()


@pytest.mark.parametrize(
    ("currency", "default_currency", "expected"),
    [("EUR", "USD", "EUR"), (None, "USD", "USD")],
)
def test_a_null_currency_falls_back_to_the_argument_then_the_default(
    currency: str | None, default_currency: str | None, expected: str
) -> None:
    catalog = parse(json.dumps([bike(currency=None)]), currency=currency, default_currency=default_currency)
    assert catalog.currency == expected and catalog.products["gravel-grx"].price == Money(124950, expected)


def test_an_item_currency_wins_over_the_argument() -> None:
    assert parse(json.dumps([bike()]), currency="EUR").currency == "GBP"


def test_json_numbers_are_read_exactly() -> None:
    text = "[" + ",".join(
        f'{{"handle": "p{i}", "name": "P{i}", "price": {literal}, "currency": "EUR"}}'
        for i, literal in enumerate(["0.1", "19.99", "1e2", "1234567890123.45", "7"])
    ) + "]"
    assert [p.price.minor for p in parse(text)] == [10, 1999, 10000, 123456789012345, 700]
    with pytest.raises(CatalogError, match="more decimals than EUR allows"):
        parse('[{"handle": "x", "name": "X", "price": 2.675, "currency": "EUR"}]')


# --------------------------------------------------------------------------- errors


def test_the_example_error_names_file_item_field_and_problem() -> None:
    variants = [{"id": 1, "price": "14.50"}, {"id": 2, "price": "abc"}]
    products = [kenya(handle=f"k{i}", title=f"K{i}") for i in range(6)] + [kenya(variants=variants)]
    with pytest.raises(CatalogError) as info:
        parse(shopify(*products), currency="EUR")
    assert str(info.value) == (
        "products.json, item product 7 ('Kenya AA'), field 'variants[1].price': not a number: 'abc'"
    )
    assert (info.value.source, info.value.item, info.value.field) == (
        "products.json", "product 7 ('Kenya AA')", "variants[1].price")


def test_the_bad_sample_names_the_product_and_the_field() -> None:
    path = SAMPLES / "bad_price.json"
    with pytest.raises(CatalogError) as info:
        load_catalog_file(path, business_id="summit", currency="EUR")
    assert info.value.source == str(path)
    assert info.value.item == "product 7 ('Cascade Waterproof Hiking Boots')"
    assert info.value.field == "variants[2].price"
    assert "not a number: 'twelve'" in str(info.value)


SHOPIFY_ERRORS = [
    ("missing handle", kenya(handle=None), "product 1 ('Kenya AA')", "handle", "missing"),
    ("missing title", kenya(title=""), "product 1 (handle 'kenya-aa')", "title", "empty"),
    ("no variants key", {k: v for k, v in kenya().items() if k != "variants"}, "product 1 ('Kenya AA')",
     "variants", "missing"),
    ("empty variants", kenya(variants=[]), "product 1 ('Kenya AA')", "variants", "at least one variant"),
    ("variant not an object", kenya(variants=["14.50"]), "product 1 ('Kenya AA')", "variants[0]", "an object"),
    ("price missing", kenya(variants=[{"id": 1}]), "product 1 ('Kenya AA')", "variants[0].price", "missing"),
    ("price boolean", kenya(variants=[{"id": 1, "price": True}]), "product 1 ('Kenya AA')",
     "variants[0].price", "not a number: True"),
    ("price negative", kenya(variants=[{"id": 1, "price": "-3.00"}]), "product 1 ('Kenya AA')",
     "variants[0].price", "cannot be negative"),
    ("price infinite", kenya(variants=[{"id": 1, "price": "Infinity"}]), "product 1 ('Kenya AA')",
     "variants[0].price", "not a finite amount"),
    ("duplicate variant id", kenya(variants=[{"id": 1, "price": "1"}, {"id": 1, "price": "2"}]),
     "product 1 ('Kenya AA')", "variants[1].id", "duplicate variant id '1'"),
    ("available not a flag", kenya(variants=[{"id": 1, "price": "1", "available": "yes"}]),
     "product 1 ('Kenya AA')", "variants[0].available", "expected true or false"),
    ("tags a number", kenya(tags=5), "product 1 ('Kenya AA')", "tags", "expected a list"),
    ("tag not text", kenya(tags=["ok", 3]), "product 1 ('Kenya AA')", "tags[1]", "expected text"),
    ("image without src", kenya(images=[{"alt": "x"}]), "product 1 ('Kenya AA')", "images[0].src",
     "expected an image URL"),
    ("title an object", kenya(title={"en": "Kenya"}, handle="kenya-aa"), "product 1 (handle 'kenya-aa')", "title",
     "expected text, got an object"),
]


@pytest.mark.parametrize(("case", "product", "item", "field", "reason"), SHOPIFY_ERRORS,
                         ids=[c[0] for c in SHOPIFY_ERRORS])
def test_every_shopify_error_names_file_item_and_field(
    case: str, product: dict[str, Any], item: str, field: str, reason: str
) -> None:
    with pytest.raises(CatalogError) as info:
        parse(shopify(product), currency="EUR")
    assert (info.value.source, info.value.item, info.value.field) == ("products.json", item, field)
    assert reason in info.value.reason
    assert str(info.value).startswith(f"products.json, item {item}, field '{field}': ")


NORMALISED_ERRORS = [
    ("price missing", bike(price=None), "price", "missing"),
    ("price text", bike(price="cheap"), "price", "not a number: 'cheap'"),
    ("price an object", bike(price={"amount": 3}), "price", "not a number"),
    ("bad $numberLong", bike(price={"$numberLong": "12.5"}), "price", "not a whole number: '12.5'"),
    ("bad $numberDecimal", bike(price={"$numberDecimal": "1,249"}), "price", "not a number: '1,249'"),
    ("no currency anywhere", bike(currency=None), "currency", "no currency"),
    ("currency not ISO", bike(currency="POUNDS"), "currency", "three-letter ISO 4217"),
    ("available text", bike(available="true"), "available", "expected true or false"),
    ("image not a URL", bike(images=[None]), "images[0]", "expected an image URL"),
    ("handle a list", bike(handle=["a"]), "handle", "expected text, got a list"),
    ("name missing", bike(name=None), "name", "missing"),
    ("shopify item unwrapped", {"handle": "gravel-grx", "title": "GRX", "variants": []}, "price",
     "must be wrapped"),
]


@pytest.mark.parametrize(("case", "item", "field", "reason"), NORMALISED_ERRORS,
                         ids=[c[0] for c in NORMALISED_ERRORS])
def test_every_normalised_error_names_file_item_and_field(
    case: str, item: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(CatalogError) as info:
        parse(json.dumps([bike(handle="first", name="First"), item]))
    assert info.value.source == "products.json"
    assert info.value.item is not None and info.value.item.startswith("product 2")
    assert info.value.field == field
    assert reason in info.value.reason


FILE_ERRORS = [
    ("not JSON", '{"products": [\n  {"title": "x",}\n]}', None, None, "not valid JSON: ", "line 2, column 17"),
    ("not UTF-8", b'[{"name": "caf\xe9"}]', None, None, "not UTF-8 text", "offset 14"),
    ("top level text", '"products"', None, None, "expected a Shopify export", "got text"),
    ("object without products", '{"items": []}', None, None, "expected a Shopify export", "['items']"),
    ("products not a list", '{"products": {"a": 1}}', None, "products", "expected a list of products", "object"),
    ("empty Shopify", '{"products": []}', None, None, "the catalog has no products", ""),
    ("empty list", "[]", None, None, "the catalog has no products", ""),
    ("item not an object", '[3]', "product 1", None, "expected a product object", "a number"),
    ("duplicate handles", json.dumps([bike(), bike(name="Again")]), "product 2 ('Again')", "handle",
     "duplicate handle 'gravel-grx'", "first used by product 1"),
    ("mixed currencies", json.dumps([bike(), bike(handle="b", name="B", currency="EUR")]), "product 2 ('B')",
     "currency", "price in EUR, but the catalog is in GBP", ""),
]


@pytest.mark.parametrize(("case", "data", "item", "field", "reason", "detail"), FILE_ERRORS,
                         ids=[c[0] for c in FILE_ERRORS])
def test_whole_file_errors_are_clear(
    case: str, data: str | bytes, item: str | None, field: str | None, reason: str, detail: str
) -> None:
    with pytest.raises(CatalogError) as info:
        parse(data, currency="GBP")
    assert (info.value.source, info.value.item, info.value.field) == ("products.json", item, field)
    assert reason in info.value.reason and detail in info.value.reason
    assert str(info.value).startswith("products.json")


def test_a_bad_currency_argument_is_named() -> None:
    with pytest.raises(CatalogError) as info:
        parse(json.dumps([bike()]), currency="euro")
    assert info.value.field == "currency" and "--currency" in str(info.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as info:
        load_catalog_file(tmp_path / "nope.json", business_id="a", currency="EUR")
    assert info.value.source == str(tmp_path / "nope.json") and "cannot read" in str(info.value)


# --------------------------------------------------------------------------- size and progress


def test_five_thousand_products_with_progress(tmp_path: Path) -> None:
    items = [
        {"handle": f"item-{i}", "name": f"Item {i}", "description": f"<p>Thing number <b>{i}</b></p>",
         "price": {"$numberDecimal": f"{i % 500}.{i % 100:02d}"}, "currency": None,
         "images": [f"https://cdn.example/{i}.jpg"], "available": i % 7 != 0, "url": None, "extra": {"i": i}}
        for i in range(5000)
    ]
    path = tmp_path / "big.json"
    path.write_text(json.dumps(items))
    calls: list[tuple[int, int]] = []
    started = time.perf_counter()
    catalog = load_catalog_file(path, business_id="big", default_currency="USD",
                                progress=lambda done, total: calls.append((done, total)))
    seconds = time.perf_counter() - started
    assert len(catalog) == 5000 and catalog.products["item-4999"].price == Money(49999, "USD")
    assert calls[0] == (0, 5000) and calls[-1] == (5000, 5000)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and len(calls) > 10
    assert seconds < 10, f"parsing 5,000 products took {seconds:.1f}s"


# --------------------------------------------------------------------------- store profile


def write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "store.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


STORE = {
    "name": "Summit & Stream",
    "currency": "eur",
    "policies": [
        {"id": "shipping", "title": "Shipping", "text": "Free over €80.", "keywords": ["shipping", "delivery"]},
        {"id": "returns", "title": "Returns", "text": "30 days.", "keywords": "return, refund"},
    ],
}


def test_store_profile_reads_name_currency_and_policies(tmp_path: Path) -> None:
    profile = load_store_profile(write(tmp_path, STORE))
    assert profile == StoreProfile(
        "Summit & Stream",
        "EUR",
        (PolicyDoc("shipping", "Shipping", "Free over €80.", ("shipping", "delivery")),
         PolicyDoc("returns", "Returns", "30 days.", ("return", "refund"))),
    )
    catalog = profile.apply(parse(json.dumps([bike()])))
    assert catalog.store_name == "Summit & Stream" and catalog.policies == profile.policies


def _policy(**changes: Any) -> dict[str, Any]:
    return {**STORE, "policies": [STORE["policies"][0], {**STORE["policies"][1], **changes}]}


@pytest.mark.parametrize(
    ("doc", "item", "field", "reason"),
    [
        ({**STORE, "name": None}, None, "name", "missing"),
        ({**STORE, "currency": "Euro"}, None, "currency", "ISO 4217"),
        ({**STORE, "policies": {"a": 1}}, None, "policies", "expected a list"),
        (_policy(text=None), "policy 2 ('Returns')", "text", "missing"),
        (_policy(keywords=[1]), "policy 2 ('Returns')", "keywords[0]", "expected text"),
        (_policy(id="shipping"), "policy 2 ('Returns')", "id", "duplicate policy id 'shipping'"),
        ({**STORE, "policies": ["free shipping"]}, "policy 1", None, "expected a policy object"),
        ([STORE], None, None, "expected an object"),
        ('{"name": "x",', None, None, "not valid JSON"),
    ],
)
def test_store_profile_errors_name_the_policy_and_field(
    tmp_path: Path, doc: Any, item: str | None, field: str | None, reason: str
) -> None:
    path = write(tmp_path, doc)
    with pytest.raises(CatalogError) as info:
        load_store_profile(path)
    assert (info.value.source, info.value.item, info.value.field) == (str(path), item, field)
    assert reason in str(info.value)


# --------------------------------------------------------------------------- import


async def test_import_replaces_the_catalog_and_returns_what_is_stored() -> None:
    store = InMemoryCatalogStore()
    first = await import_catalog(store, parse(json.dumps([bike()])))
    second = await import_catalog(store, parse(json.dumps([bike(handle="bell", name="Bell")])))
    assert second.version > first.version
    assert await store.get("shop") == second and list(second.products) == ["bell"]


async def test_the_shopify_sample_survives_mongo_exactly() -> None:
    catalog = load_catalog_file(SAMPLES / "shopify_20.json", business_id="summit", currency="EUR")
    stores = mongo_stores(embedded_database())
    stored = await import_catalog(stores.catalogs, catalog)
    assert await stores.catalogs.get("summit") == stored
    assert stored.products == catalog.products and list(stored.products) == list(catalog.products)
