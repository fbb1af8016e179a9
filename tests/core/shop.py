"""A small catalog of another trade for core tests (kept apart from the demo store)."""

from __future__ import annotations

from chatpay.core.catalog import Catalog, PolicyDoc, Product, Variant
from chatpay.core.money import Money


def variant(vid: str, title: str, price: str, available: bool = True) -> Variant:
    return Variant(vid, title, Money.parse(price, "EUR"), available=available)


def product(handle: str, name: str, desc: str, variants: list[Variant], ptype: str = "", tags: tuple = ()) -> Product:
    return Product(handle, name, desc, tuple(variants), ptype, tags, (f"https://img.example/{handle}.jpg",))


def garden_shop(business: str = "garden") -> Catalog:
    return Catalog.of(business, "EUR", [
        product("rose-fertiliser", "Rose Fertiliser", "Slow-release feed for roses and shrubs.",
                [variant("rf-1", "1kg", "8.50"), variant("rf-5", "5kg", "29.00")], "Plant care"),
        product("pruning-shears", "Bypass Pruning Shears", "Sharp steel blades for clean cuts.",
                [variant("ps-r", "Red", "19.90"), variant("ps-b", "Black", "19.90", available=False)], "Tools"),
        product("watering-can", "Galvanised Watering Can", "Ten litre can with a brass rose.",
                [variant("wc", "Default Title", "34.00")], "Tools"),
        product("tomato-seeds", "Heirloom Tomato Seeds", "Fifty seeds of a sweet cherry tomato.",
                [variant("ts", "Default Title", "3.20")], "Seeds"),
        product("basil-seeds", "Sweet Basil Seeds", "Genovese basil for pots and beds.",
                [variant("bs", "Default Title", "2.80")], "Seeds"),
        product("kneeler", "Garden Kneeler", "Foam pad that saves your knees.",
                [variant("kn", "Default Title", "12.00", available=False)], "Accessories"),
    ], policies=[PolicyDoc("shipping", "Shipping", "We ship within the EU in 2-4 days; free over €50.",
                           ("shipping", "delivery"))], store_name="Green Thumb")
