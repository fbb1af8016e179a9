"""Catalog and store files that merchants bring, validated at the edge.

Two catalog formats are told apart by their content (see docs/formats.md):

- Shopify's ``products.json`` export, ``{"products": [...]}`` with variants and price
  strings. It carries no currency, so the caller must give one.
- ChatPay's normalised list, ``[{"handle", "name", "description", "price", ...}]``,
  where MongoDB Extended JSON values (``{"$numberLong": "3"}``) and unknown fields are
  accepted and a missing currency falls back to the given one, then the store's default.

JSON numbers are read as exact decimals, never floats. Every problem raises
:class:`~chatpay.core.errors.CatalogError` naming the file, the item (``product 7
('Kenya AA')``, counted from 1) and the field (``variants[1].price``), so a bad file
changes nothing and says where it is wrong.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from chatpay.core.catalog import Catalog, PolicyDoc, Product, Variant, strip_html
from chatpay.core.errors import CatalogError, MoneyError
from chatpay.core.money import Money, check_currency
from chatpay.core.ports import CatalogStore

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
_HTML = re.compile(r"<[a-zA-Z/!][^>]*>|&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+\d*);")
_PROGRESS_STEPS = 100


class _Bad(Exception):
    """A value at ``path`` is wrong; turned into a CatalogError naming the item."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null"}.get(
        type(value), "a number"
    )


def _plain(value: Any, path: str) -> Any:
    """``value`` with MongoDB Extended JSON wrappers (``$oid``, ``$numberLong``...) unwrapped."""
    if isinstance(value, list):
        return [_plain(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, inner),) = value.items()
        try:
            if key in ("$oid", "$symbol") and isinstance(inner, str):
                return inner
            if key in ("$numberLong", "$numberInt") and isinstance(inner, str):
                return int(inner)
            if key in ("$numberDouble", "$numberDecimal") and isinstance(inner, str):
                return Decimal(inner)
        except ArithmeticError as exc:
            raise _Bad(path, f"not a number: {inner!r}") from exc
        except ValueError as exc:
            raise _Bad(path, f"not a whole number: {inner!r}") from exc
    return {k: _plain(v, f"{path}.{k}") for k, v in value.items()}


class _Fields:
    """Typed, path-aware access to one JSON object's fields."""

    def __init__(self, data: Mapping[str, Any], prefix: str = "") -> None:
        self.data = data
        self.prefix = prefix

    def path(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def get(self, key: str) -> Any:
        return _plain(self.data.get(key), self.path(key))

    def text(self, key: str, *, required: bool = False, default: str = "") -> str:
        value = self.get(key)
        if value is None or (required and value == ""):
            if required:
                raise _Bad(self.path(key), "missing" if value is None else "empty")
            return default
        if isinstance(value, bool) or isinstance(value, (dict, list)):
            raise _Bad(self.path(key), f"expected text, got {_kind(value)}")
        return str(value).strip()

    def optional_text(self, key: str) -> str | None:
        return self.text(key) or None

    def flag(self, key: str, default: bool = True) -> bool:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise _Bad(self.path(key), f"expected true or false, got {value!r}")
        return value

    def words(self, key: str) -> tuple[str, ...]:
        """A list of strings, or one comma-separated string (Shopify writes tags both ways)."""
        value = self.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list):
            raise _Bad(self.path(key), f"expected a list or comma-separated text, got {_kind(value)}")
        out = []
        for i, word in enumerate(value):
            if not isinstance(word, str):
                raise _Bad(f"{self.path(key)}[{i}]", f"expected text, got {_kind(word)}")
            if word.strip():
                out.append(word.strip())
        return tuple(out)

    def items(self, key: str, *, required: bool = False) -> list[Any]:
        value = self.data.get(key)
        if value is None:
            if required:
                raise _Bad(self.path(key), "missing")
            return []
        if not isinstance(value, list):
            raise _Bad(self.path(key), f"expected a list, got {_kind(value)}")
        return value


def _money(fields: _Fields, key: str, currency: str) -> Money:
    value = fields.get(key)
    if value is None:
        raise _Bad(fields.path(key), "missing")
    if isinstance(value, (bool, dict, list)):
        raise _Bad(fields.path(key), f"not a number: {value!r}")
    try:
        money = Money.parse(value, currency)
    except MoneyError as exc:
        raise _Bad(fields.path(key), str(exc)) from exc
    if money.minor < 0:
        raise _Bad(fields.path(key), f"a price cannot be negative: {value!r}")
    return money


def _images(fields: _Fields) -> tuple[str, ...]:
    out = []
    for i, image in enumerate(fields.items("images")):
        image = _plain(image, f"images[{i}]")
        src = image.get("src") if isinstance(image, dict) else image
        if not isinstance(src, str) or not src.strip():
            where = f"images[{i}].src" if isinstance(image, dict) else f"images[{i}]"
            raise _Bad(where, f"expected an image URL, got {src!r}")
        out.append(src.strip())
    return tuple(out)


def _describe(text: str, *, html: bool) -> str:
    """Plain text of a description; non-breaking spaces become plain ones."""
    text = text.replace("&nbsp;", " ").replace("\xa0", " ")
    return strip_html(text) if html or _HTML.search(text) else text.strip()


def _shopify_product(data: Mapping[str, Any], currency: str) -> Product:
    f = _Fields(data)
    handle = f.text("handle", required=True)
    options = []
    for i, option in enumerate(f.items("options")):
        name = option.get("name") if isinstance(option, dict) else option
        options.append(name if isinstance(name, str) and name.strip() else f"Option {i + 1}")
    product_available = f.flag("available")
    variants: list[Variant] = []
    raw_variants = f.items("variants", required=True)
    if not raw_variants:
        raise _Bad("variants", "a product needs at least one variant")
    for i, raw in enumerate(raw_variants):
        if not isinstance(raw, dict):
            raise _Bad(f"variants[{i}]", f"expected an object, got {_kind(raw)}")
        v = _Fields(raw, f"variants[{i}].")
        variant_id = v.text("id") or str(i + 1)
        if any(existing.id == variant_id for existing in variants):
            raise _Bad(v.path("id"), f"duplicate variant id {variant_id!r}")
        pairs = []
        for n in range(3):
            value = v.optional_text(f"option{n + 1}")
            name = options[n] if n < len(options) else f"Option {n + 1}"
            if value is not None and not (name == "Title" and value == "Default Title"):
                pairs.append((name, value))
        variants.append(
            Variant(
                id=variant_id,
                title=v.text("title", default="Default Title") or "Default Title",
                price=_money(v, "price", currency),
                sku=v.optional_text("sku"),
                available=v.flag("available", product_available),
                options=tuple(pairs),
            )
        )
    return Product(
        handle=handle,
        name=f.text("title", required=True),
        description=_describe(f.text("body_html"), html=True),
        variants=tuple(variants),
        product_type=f.text("product_type"),
        tags=f.words("tags"),
        images=_images(f),
        url=f.optional_text("url"),
        vendor=f.text("vendor"),
    )


def _normalised_product(data: Mapping[str, Any], currency: str | None) -> Product:
    f = _Fields(data)
    handle = f.text("handle", required=True)
    if data.get("price") is None and "variants" in data:
        raise _Bad("price", "missing; a Shopify export must be wrapped as {\"products\": [...]}")
    own = f.text("currency") or currency
    if own is None:
        raise _Bad("currency", "no currency: the item has none and no --currency or store default was given")
    try:
        own = check_currency(own)
    except MoneyError as exc:
        raise _Bad("currency", str(exc)) from exc
    stock = f.get("stock")
    in_stock = not (isinstance(stock, int) and not isinstance(stock, bool) and stock <= 0)
    variant = Variant(
        id="default",
        title="Default Title",
        price=_money(f, "price", own),
        sku=f.optional_text("sku"),
        available=f.flag("available", in_stock),
    )
    return Product(
        handle=handle,
        name=f.text("name", required=True),
        description=_describe(f.text("description"), html=False),
        variants=(variant,),
        product_type=f.text("product_type") or f.text("category"),
        tags=f.words("tags"),
        images=_images(f),
        url=f.optional_text("url"),
        vendor=f.text("vendor") or f.text("brand"),
    )


def _label(number: int, data: object) -> str:
    if isinstance(data, dict):
        title = data.get("title", data.get("name"))
        if isinstance(title, str) and title.strip():
            return f"product {number} ({title.strip()!r})"
        handle = data.get("handle")
        if isinstance(handle, str) and handle.strip():
            return f"product {number} (handle {handle.strip()!r})"
    return f"product {number}"


def _read_json(data: bytes | str, source: str) -> Any:
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CatalogError(f"not UTF-8 text (bad byte at offset {exc.start})", source=source) from exc
    try:
        return json.loads(data, parse_float=Decimal, parse_constant=Decimal)
    except json.JSONDecodeError as exc:
        raise CatalogError(
            f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", source=source
        ) from exc


def _currency_arg(value: str | None, source: str, name: str) -> str | None:
    if value is None:
        return None
    try:
        return check_currency(value)
    except MoneyError as exc:
        raise CatalogError(f"{name}: {exc}", source=source, field="currency") from exc


def parse_catalog(
    data: bytes | str,
    *,
    source: str,
    business_id: str,
    currency: str | None = None,
    default_currency: str | None = None,
    progress: Progress | None = None,
) -> Catalog:
    """Validate a catalog file's content and build the business's :class:`Catalog`.

    Args:
        data: the file's bytes or text.
        source: the file's name, used in every error message.
        business_id: the business the catalog belongs to.
        currency: the currency given by the user (``--currency``); required for Shopify.
        default_currency: the business's default, the normalised format's last resort.
        progress: called as ``progress(done, total)`` while items are validated, ending
            with ``(total, total)``.

    Raises:
        CatalogError: naming the file, the item and the field at fault.
    """
    doc = _read_json(data, source)
    given = _currency_arg(currency, source, "--currency")
    fallback = given or _currency_arg(default_currency, source, "the store's default currency")
    if isinstance(doc, dict) and "products" in doc:
        items, shopify = doc["products"], True
        if not isinstance(items, list):
            raise CatalogError(f"expected a list of products, got {_kind(items)}", source=source, field="products")
        if given is None and items:
            raise CatalogError("a Shopify export carries no currency: give one (--currency)",
                               source=source, field="currency")
    elif isinstance(doc, list):
        items, shopify = doc, False
    else:
        shape = f"an object with keys {sorted(doc)[:5]}" if isinstance(doc, dict) else _kind(doc)
        raise CatalogError(
            f"expected a Shopify export {{\"products\": [...]}} or a list of products, got {shape}", source=source
        )
    if not items:
        raise CatalogError("the catalog has no products", source=source)

    total = len(items)
    step = max(1, total // _PROGRESS_STEPS)
    if progress:
        progress(0, total)
    products: list[Product] = []
    first_seen: dict[str, int] = {}
    for number, item in enumerate(items, start=1):
        label = _label(number, item)
        try:
            if not isinstance(item, dict):
                raise _Bad("", f"expected a product object, got {_kind(item)}")
            product = _shopify_product(item, given or "") if shopify else _normalised_product(item, fallback)
        except _Bad as bad:
            raise CatalogError(bad.message, source=source, item=label, field=bad.path or None) from bad
        except CatalogError as exc:  # the domain's own checks (handle, variants, currencies)
            raise CatalogError(exc.reason, source=source, item=label, field=exc.field) from exc
        if product.handle in first_seen:
            raise CatalogError(f"duplicate handle {product.handle!r} (first used by product "
                               f"{first_seen[product.handle]})", source=source, item=label, field="handle")
        if products and product.currency != products[0].currency:
            raise CatalogError(f"price in {product.currency}, but the catalog is in {products[0].currency}",
                               source=source, item=label, field="currency")
        first_seen[product.handle] = number
        products.append(product)
        if progress and (number % step == 0 or number == total):
            progress(number, total)
    return Catalog.of(business_id, products[0].currency, products)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CatalogError(f"cannot read the file: {exc.strerror or exc}", source=str(path)) from exc


def load_catalog_file(
    path: Path,
    *,
    business_id: str,
    currency: str | None = None,
    default_currency: str | None = None,
    progress: Progress | None = None,
    source: str | None = None,
) -> Catalog:
    """Read and validate a catalog file; see :func:`parse_catalog` (``source`` defaults to ``path``)."""
    return parse_catalog(
        _read_bytes(path),
        source=source or str(path),
        business_id=business_id,
        currency=currency,
        default_currency=default_currency,
        progress=progress,
    )


@dataclass(frozen=True)
class StoreProfile:
    """A store's name, currency and the policies its bot may answer from (``store.json``)."""

    name: str
    currency: str
    policies: tuple[PolicyDoc, ...]

    def apply(self, catalog: Catalog) -> Catalog:
        """``catalog`` with this store's name and policies."""
        return replace(catalog, store_name=self.name, policies=self.policies)


def load_store_profile(path: Path) -> StoreProfile:
    """Read ``store.json``: ``{"name", "currency", "policies": [{"id", "title", "text", "keywords"}]}``.

    Raises:
        CatalogError: naming the file, the policy and the field at fault.
    """
    source = str(path)
    doc = _read_json(_read_bytes(path), source)
    if not isinstance(doc, dict):
        raise CatalogError(f"expected an object with name, currency and policies, got {_kind(doc)}", source=source)
    top = _Fields(doc)
    policies: list[PolicyDoc] = []
    label: str | None = None
    try:
        name = top.text("name", required=True)
        currency = top.text("currency", required=True)
        try:
            currency = check_currency(currency)
        except MoneyError as exc:
            raise _Bad("currency", str(exc)) from exc
        for number, raw in enumerate(top.items("policies"), start=1):
            title = raw.get("title") if isinstance(raw, dict) else None
            label = f"policy {number} ({title!r})" if isinstance(title, str) else f"policy {number}"
            if not isinstance(raw, dict):
                raise _Bad("", f"expected a policy object, got {_kind(raw)}")
            f = _Fields(raw)
            policy = PolicyDoc(f.text("id", required=True), f.text("title", required=True),
                               f.text("text", required=True), f.words("keywords"))
            if any(p.id == policy.id for p in policies):
                raise _Bad("id", f"duplicate policy id {policy.id!r}")
            policies.append(policy)
        label = None
    except _Bad as bad:
        raise CatalogError(bad.message, source=source, item=label, field=bad.path or None) from bad
    return StoreProfile(name, currency, tuple(policies))


async def import_catalog(store: CatalogStore, catalog: Catalog) -> Catalog:
    """Replace the business's catalog as a whole; returns it as stored, with its new version."""
    stored = await store.replace(catalog)
    log.info("imported catalog for %s: %d products, version %d", stored.business_id, len(stored), stored.version)
    return stored
