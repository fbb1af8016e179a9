"""The sandbox payment provider: checkout completes at once and no money moves.

The embedded default when no real provider is configured (``CHATPAY_PAYMENTS`` unset or
``sandbox``), so ``chatpay chat``, the TUI and the evals can take an order end to end. Orders
it pays are real orders in the order store (``chatpay orders`` lists them), marked with the
provider ``sandbox``; every reply it is part of says that it is a test.
"""

from __future__ import annotations

from chatpay.core.orders import Order
from chatpay.core.ports import CheckoutStart


class SandboxPaymentProvider:
    """Pays every order at once, for the order's own total, and records what it was asked."""

    name = "sandbox"
    sandbox = True

    def __init__(self) -> None:
        self.started: list[str] = []
        self.refunded: list[str] = []

    async def start(self, order: Order, *, shop_name: str) -> CheckoutStart:
        self.started.append(order.id)
        return CheckoutStart(text="Test payment: no money moves.", completes=True)

    async def refund(self, order: Order) -> str:
        self.refunded.append(order.id)
        return f"Refunded {order.total.format()} in the sandbox (no money moved)."
