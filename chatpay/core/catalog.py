"""Products, variants, the store's policies and a business's catalog."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from chatpay.core.errors import CatalogError
from chatpay.core.money import Money

_TAG = re.compile(r"<[^>]+>")
_BLOCK = re.compile(r"<\s*(br|/p|/li|/div|/h\d)\s*/?>", re.IGNORECASE)
_SPACE = re.compile(r"[ \t\r\f\v]+")
_BEFORE_PUNCT = re.compile(r" ([,.;:!?)])")  # "<em>gravel</em>, ..." must not read "gravel , ..."


def strip_html(text: str) -> str:
    """Plain text from a product's HTML description (tags dropped, entities decoded)."""
    text = _BLOCK.sub("\n", text)
    text = html.unescape(_TAG.sub(" ", text))
    lines = (_BEFORE_PUNCT.sub(r"\1", _SPACE.sub(" ", line)).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


@dataclass(frozen=True)
class Variant:
    """One purchasable form of a product (size, colour, grind...)."""

    id: str
    title: str
    price: Money
    sku: str | None = None
    available: bool = True
    options: tuple[tuple[str, str], ...] = ()

    @property
    def is_default(self) -> bool:
        return self.title.strip().lower() in {"default title", "default", ""}


@dataclass(frozen=True)
class Product:
    """A catalog product. ``handle`` is its key within the business."""

    handle: str
    name: str
    description: str
    variants: tuple[Variant, ...]
    product_type: str = ""
    tags: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    url: str | None = None
    vendor: str = ""

    def __post_init__(self) -> None:
        if not self.handle:
            raise CatalogError("a product needs a handle", field="handle")
        if not self.variants:
            raise CatalogError("a product needs at least one variant", item=self.handle, field="variants")
        currencies = {v.price.currency for v in self.variants}
        if len(currencies) > 1:
            raise CatalogError(
                f"variants mix currencies {sorted(currencies)}", item=self.handle, field="price"
            )

    @property
    def available(self) -> bool:
        return any(v.available for v in self.variants)

    @property
    def currency(self) -> str:
        return self.variants[0].price.currency

    @property
    def price(self) -> Money:
        """The lowest price over available variants (over all when none is available)."""
        pool = [v for v in self.variants if v.available] or list(self.variants)
        return min((v.price for v in pool), key=lambda m: m.minor)

    @property
    def has_options(self) -> bool:
        return len(self.variants) > 1

    @property
    def image(self) -> str | None:
        return self.images[0] if self.images else None

    def variant(self, variant_id: str | None) -> Variant:
        """The variant with ``variant_id``; the first available one when ``None``."""
        if variant_id is None:
            return next((v for v in self.variants if v.available), self.variants[0])
        for v in self.variants:
            if v.id == variant_id:
                return v
        raise KeyError(variant_id)

    def searchable_text(self) -> str:
        """Everything retrieval should see about this product."""
        variant_titles = " ".join(v.title for v in self.variants if not v.is_default)
        return " ".join(
            part
            for part in (self.name, self.product_type, " ".join(self.tags), variant_titles, self.description)
            if part
        )


@dataclass(frozen=True)
class PolicyDoc:
    """A store policy or FAQ entry the enquiry agent may answer from."""

    id: str
    title: str
    text: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Catalog:
    """A business's products, keyed by handle, and its policies."""

    business_id: str
    currency: str
    products: Mapping[str, Product] = field(default_factory=dict)
    policies: tuple[PolicyDoc, ...] = ()
    store_name: str = ""
    version: int = 0

    @classmethod
    def of(
        cls,
        business_id: str,
        currency: str,
        products: Iterable[Product],
        *,
        policies: Iterable[PolicyDoc] = (),
        store_name: str = "",
        version: int = 0,
    ) -> Catalog:
        by_handle: dict[str, Product] = {}
        for p in products:
            if p.handle in by_handle:
                raise CatalogError("duplicate handle", item=p.handle, field="handle")
            if p.currency != currency:
                raise CatalogError(
                    f"price in {p.currency}, catalog is in {currency}", item=p.handle, field="currency"
                )
            by_handle[p.handle] = p
        return cls(business_id, currency, by_handle, tuple(policies), store_name, version)

    def get(self, handle: str) -> Product | None:
        return self.products.get(handle)

    def __len__(self) -> int:
        return len(self.products)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.products.values())

    def categories(self) -> dict[str, list[Product]]:
        """Products grouped by type, in catalog order."""
        groups: dict[str, list[Product]] = {}
        for p in self.products.values():
            groups.setdefault(p.product_type or "Other", []).append(p)
        return groups
