"""The cart pane: the thread's cart after the latest turn, priced by the catalog."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from chatpay.core.turns import CartView


def cart_table(view: CartView | None) -> Table | Text:
    """Lines (quantity, product and variant, line total) and the subtotal."""
    if view is None:
        return Text("No catalog loaded.", style="dim")
    if not view.lines:
        return Text("The cart is empty.", style="dim")
    table = Table(box=None, show_header=True, expand=True, padding=(0, 1), header_style="bold")
    table.add_column("qty", justify="right", width=3)
    table.add_column("product", ratio=1, overflow="fold")
    table.add_column("total", justify="right", no_wrap=True)
    for line in view.lines:
        name = f"{line.title} ({line.variant})" if line.variant else line.title
        table.add_row(str(line.quantity), name, line.total.format())
    items = f"{view.item_count} item{'' if view.item_count == 1 else 's'}"
    table.add_row("", Text(f"Subtotal ({items})", style="bold"),
                  Text(view.subtotal.format(), style="bold green"))
    return table


class CartPane(Static):
    """Shows :func:`cart_table` of the latest cart view."""

    BORDER_TITLE = "Cart"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(Text("The cart is empty.", style="dim"), id=id)
        self.view: CartView | None = None

    def show(self, view: CartView | None) -> None:
        self.view = view
        count = view.item_count if view else 0
        self.border_title = f"Cart · {count} item{'' if count == 1 else 's'}" if count else "Cart"
        self.update(cart_table(view))

    def lines_text(self) -> list[str]:
        """The cart's lines as text, for tests and the status line."""
        if self.view is None:
            return []
        return [f"{ln.quantity} × {ln.title}" for ln in self.view.lines]
