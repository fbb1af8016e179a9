"""The sandbox payment provider: checkout completes at once and no money moves.

The embedded default when no real provider is configured (``CHATPAY_PAYMENTS`` unset or
``sandbox``), so ``chatpay chat``, the TUI and the evals can take an order end to end. Every
reply it is part of says that it is a test.
"""

from __future__ import annotations

from chatpay.core.turns import InvoiceRequest


class SandboxPaymentProvider:
    """Completes every invoice at once, for the amounts the cart gives, and records what it did."""

    name = "sandbox"
    sandbox = True

    def __init__(self) -> None:
        self.invoices: list[InvoiceRequest] = []

    @property
    def configured(self) -> bool:
        return True

    async def invoice(self, request: InvoiceRequest) -> InvoiceRequest:
        self.invoices.append(request)
        return request
