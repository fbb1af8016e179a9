"""A deterministic cart: lines keyed by (product, variant), priced from the catalog only."""

from __future__ import annotations

from dataclasses import dataclass, replace

from chatpay.core.catalog import Catalog, Product
from chatpay.core.errors import CartError, OutOfStock, QuantityError, UnknownProduct
from chatpay.core.money import Money

MAX_QUANTITY = 99


@dataclass(frozen=True)
class CartLine:
    handle: str
    variant_id: str
    quantity: int


@dataclass(frozen=True)
class PricedLine:
    """A cart line with its catalog product, unit price and line total."""

    line: CartLine
    product: Product
    variant_title: str
    unit_price: Money
    total: Money


@dataclass(frozen=True)
class Cart:
    """One shopper's cart in one business. ``version`` increases with every write.

    The cart never stores a price: :meth:`subtotal` reads every price from the
    catalog, so no text a shopper or a model writes can change what is charged.
    """

    business_id: str
    thread_id: str
    lines: tuple[CartLine, ...] = ()
    version: int = 0

    @property
    def is_empty(self) -> bool:
        return not self.lines

    def quantity_of(self, handle: str, variant_id: str | None = None) -> int:
        return sum(
            ln.quantity
            for ln in self.lines
            if ln.handle == handle and (variant_id is None or ln.variant_id == variant_id)
        )

    def quantities(self) -> dict[str, int]:
        """Handle to total quantity over variants."""
        out: dict[str, int] = {}
        for ln in self.lines:
            out[ln.handle] = out.get(ln.handle, 0) + ln.quantity
        return out

    def _with_lines(self, lines: list[CartLine]) -> Cart:
        return replace(self, lines=tuple(ln for ln in lines if ln.quantity > 0))

    def add(self, product: Product, variant_id: str | None = None, quantity: int = 1) -> Cart:
        """Add ``quantity`` of a variant (the first available one by default)."""
        if quantity < 1 or quantity > MAX_QUANTITY:
            raise QuantityError(quantity, MAX_QUANTITY)
        try:
            variant = product.variant(variant_id)
        except KeyError as exc:
            raise UnknownProduct(f"{product.handle} / {variant_id}") from exc
        if not variant.available:
            raise OutOfStock(product.handle, variant.id)
        lines = list(self.lines)
        for i, ln in enumerate(lines):
            if ln.handle == product.handle and ln.variant_id == variant.id:
                new_qty = ln.quantity + quantity
                if new_qty > MAX_QUANTITY:
                    raise QuantityError(new_qty, MAX_QUANTITY)
                lines[i] = replace(ln, quantity=new_qty)
                return self._with_lines(lines)
        lines.append(CartLine(product.handle, variant.id, quantity))
        return self._with_lines(lines)

    def set_quantity(self, handle: str, quantity: int, variant_id: str | None = None) -> Cart:
        """Set a line's quantity (0 removes it). Without a variant, the product must have one line."""
        if quantity < 0 or quantity > MAX_QUANTITY:
            raise QuantityError(quantity, MAX_QUANTITY)
        matching = [
            ln for ln in self.lines if ln.handle == handle and (variant_id is None or ln.variant_id == variant_id)
        ]
        if not matching:
            raise CartError(f"{handle} is not in the cart")
        if len(matching) > 1:
            raise CartError(f"{handle} is in the cart in several variants; say which")
        target = matching[0]
        return self._with_lines(
            [replace(ln, quantity=quantity) if ln == target else ln for ln in self.lines]
        )

    def remove(self, handle: str, quantity: int | None = None, variant_id: str | None = None) -> Cart:
        """Remove ``quantity`` units (all when ``None``) of a product, newest variant first."""
        if quantity is not None and (quantity < 1 or quantity > MAX_QUANTITY):
            raise QuantityError(quantity, MAX_QUANTITY)
        if self.quantity_of(handle, variant_id) == 0:
            raise CartError(f"{handle} is not in the cart")
        remaining = quantity
        lines = list(self.lines)
        for i in range(len(lines) - 1, -1, -1):
            ln = lines[i]
            if ln.handle != handle or (variant_id is not None and ln.variant_id != variant_id):
                continue
            if remaining is None:
                lines[i] = replace(ln, quantity=0)
                continue
            take = min(remaining, ln.quantity)
            lines[i] = replace(ln, quantity=ln.quantity - take)
            remaining -= take
            if remaining == 0:
                break
        return self._with_lines(lines)

    def clear(self) -> Cart:
        return replace(self, lines=())

    def priced(self, catalog: Catalog) -> list[PricedLine]:
        """Lines with their current catalog prices. Lines whose product left the catalog are dropped."""
        out = []
        for ln in self.lines:
            product = catalog.get(ln.handle)
            if product is None:
                continue
            try:
                variant = product.variant(ln.variant_id)
            except KeyError:
                continue
            out.append(
                PricedLine(ln, product, "" if variant.is_default else variant.title, variant.price,
                           variant.price * ln.quantity)
            )
        return out

    def subtotal(self, catalog: Catalog) -> Money:
        result = Money.zero(catalog.currency)
        for pl in self.priced(catalog):
            result = result + pl.total
        return result

    def item_count(self) -> int:
        return sum(ln.quantity for ln in self.lines)
