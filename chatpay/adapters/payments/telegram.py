"""Telegram Payments: invoices in fiat through a provider token, and Telegram Stars.

Both send ``sendInvoice`` (the presenter renders :class:`~chatpay.core.turns.InvoiceRequest`)
with the order id as the payload, so Telegram's ``pre_checkout_query`` and
``successful_payment`` name the order they are about. Amounts are the order's, in minor units.

* **Fiat** (``CHATPAY_PAYMENTS=telegram``): one price per order line; the provider token from
  BotFather goes with every invoice. The Bot API has no refund call for fiat payments, so a
  refund is made in the provider's dashboard; :meth:`TelegramInvoiceProvider.refund` says so and
  the order is marked by the caller.
* **Stars** (``CHATPAY_PAYMENTS=stars``): currency ``XTR``, no provider token, and exactly one
  price (Telegram's rule for Stars). Only a catalog priced in Stars can be paid this way; prices
  are never converted. Refunds go through ``refundStarPayment`` with the payer's user id and
  Telegram's charge id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from chatpay.core.errors import ChannelError, PaymentError
from chatpay.core.orders import Order
from chatpay.core.ports import CheckoutStart
from chatpay.core.turns import InvoiceRequest

BotCall = Callable[[str, Mapping[str, Any]], Awaitable[Any]]
TITLE_MAX, DESCRIPTION_MAX, LABEL_MAX = 32, 255, 32


def _description(order: Order, shop_name: str) -> str:
    items = ", ".join(f"{ln.quantity} × {ln.title}" for ln in order.lines)
    return f"Order {order.number} from {shop_name}: {items}"[:DESCRIPTION_MAX]


class TelegramInvoiceProvider:
    """Fiat invoices through a Telegram payment provider (Stripe, YooKassa, ... as set in BotFather)."""

    name = "telegram"
    sandbox = False

    def __init__(self, provider_token: str) -> None:
        if not provider_token:
            raise PaymentError("telegram", "no provider token (TELEGRAM_PROVIDER_TOKEN)")
        self._token = provider_token

    async def start(self, order: Order, *, shop_name: str) -> CheckoutStart:
        if order.currency == "XTR":
            raise PaymentError("telegram", "prices in Telegram Stars are paid with CHATPAY_PAYMENTS=stars")
        prices = tuple((f"{ln.quantity} × {ln.title}"[:LABEL_MAX], ln.total_minor) for ln in order.lines)
        return CheckoutStart(invoice=InvoiceRequest(
            title=shop_name[:TITLE_MAX] or "Your order", description=_description(order, shop_name),
            payload=order.id, currency=order.currency, prices=prices, provider_token=self._token))

    async def refund(self, order: Order) -> str:
        return (f"Telegram has no refund call for card payments: refund {order.total.format()} (charge "
                f"{order.provider_payment_id}) in your payment provider's dashboard; the order is marked refunded.")


class StarsProvider:
    """Telegram Stars for digital goods: ``XTR`` invoices without a provider token, refunds by the Bot API."""

    name = "stars"
    sandbox = False

    def __init__(self, bot: BotCall | None) -> None:
        self._bot = bot

    async def start(self, order: Order, *, shop_name: str) -> CheckoutStart:
        if order.currency != "XTR":
            raise PaymentError("stars", f"this shop's prices are in {order.currency}, and Telegram Stars can only "
                                        "pay prices set in Stars (XTR)")
        label = f"{order.item_count} item{'s' if order.item_count != 1 else ''}"
        return CheckoutStart(invoice=InvoiceRequest(
            title=shop_name[:TITLE_MAX] or "Your order", description=_description(order, shop_name),
            payload=order.id, currency="XTR", prices=((label, order.total_minor),), provider_token=""))

    async def refund(self, order: Order) -> str:
        payer = order.extra.get("payer")
        if not order.provider_payment_id or not payer:
            raise PaymentError("stars", f"order {order.number} has no Telegram charge id or payer to refund")
        if self._bot is None:
            raise PaymentError("stars", "refunds need TELEGRAM_BOT_TOKEN")
        try:
            await self._bot("refundStarPayment", {"user_id": int(payer),
                                                  "telegram_payment_charge_id": order.provider_payment_id})
        except ChannelError as exc:
            raise PaymentError("stars", f"Telegram refused the refund: {exc}") from exc
        return f"Refunded {order.total_minor} ⭐ to user {payer} through Telegram (refundStarPayment)."
