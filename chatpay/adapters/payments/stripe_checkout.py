"""Stripe Checkout: the shopper pays an order by card on Stripe's hosted page.

:meth:`StripeCheckoutProvider.start` opens a Checkout Session whose line items are the order's
lines, priced from the order (never from what the shopper said), and hands the chat a link
button to it. Stripe then tells ChatPay about the payment in a signed webhook, which
:meth:`StripeCheckoutProvider.verify_event` checks with the SDK's own signature verification
and turns into a :class:`~chatpay.core.orders.ConfirmedPayment`.

Every request that creates something carries an idempotency key derived from the order id, so a
retried checkout opens one session and a retried refund refunds once; that is also what makes it
safe to let the SDK retry failed requests by itself.

Settings (see :func:`from_env`): ``STRIPE_API_KEY``, ``STRIPE_WEBHOOK_SECRET``, and optionally
``STRIPE_API_BASE``, ``STRIPE_SUCCESS_URL``, ``STRIPE_CANCEL_URL``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import stripe

from chatpay.core.errors import ChatPayError, ConfigError, PaymentError
from chatpay.core.money import Money, exponent
from chatpay.core.orders import ConfirmedPayment, Order
from chatpay.core.ports import CheckoutStart

if TYPE_CHECKING:  # stripe.params only exists from stripe 13; the SDK takes plain dicts at run time
    from stripe.params import RefundCreateParams
    from stripe.params.checkout import SessionCreateParams

PROVIDER = "stripe"

# Events that mean the money arrived: a card payment completes the session as "paid"; a delayed
# method (SEPA debit, bank transfer) completes it "unpaid" and succeeds later.
_PAID_EVENTS = frozenset({"checkout.session.completed", "checkout.session.async_payment_succeeded"})

# How old a signed event may be (Stripe's recommended default): an older one is a replay.
_TOLERANCE_S = 300

# Safe only because every request ChatPay sends to Stripe carries an idempotency key.
_NETWORK_RETRIES = 2

# Currencies whose Stripe API amounts have other decimals than ISO 4217 (and chatpay.core.money):
# ISK is charged in whole krónur but still written with two decimals, MGA is zero-decimal at
# Stripe (docs.stripe.com/currencies, "Zero-decimal currencies" and "Special cases").
_STRIPE_EXPONENTS = {"ISK": 2, "MGA": 0}

DEFAULT_RETURN_URL = "https://t.me/"


class WebhookRejected(ChatPayError):
    """A webhook request that is not a genuine, recent Stripe event; the HTTP layer answers 400.

    ``reason`` says why (missing or bad signature, stale timestamp, unreadable body) and never
    contains the secret or the body.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"stripe webhook rejected: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class StripeEvent:
    """A verified Stripe event.

    Stripe delivers an event at least once, so the same ``id`` can arrive again; a caller that
    wants to skip replays remembers the ids it has handled. A replayed payment is harmless
    anyway, since the order store keeps ``payment.payment_id`` unique.
    """

    id: str
    type: str
    payment: ConfirmedPayment | None  # set when the event says an order's money arrived
    thread_id: str | None = None  # the shopper the order belongs to (session metadata)
    chat_id: str | None = None
    business_id: str | None = None  # the business whose order it is (session metadata): its queue gets it


class StripeCheckoutProvider:
    """Takes card payments through Stripe Checkout Sessions (``mode="payment"``).

    Args:
        api_key: the secret (``sk_...``) or restricted (``rk_...``) API key.
        webhook_secret: the signing secret (``whsec_...``) of the webhook endpoint.
        api_base: another address for the Stripe API (a local stand-in in tests).
        success_url: where Stripe sends the shopper after paying (e.g. back to the bot).
        cancel_url: where Stripe sends the shopper who backs out.
    """

    name = PROVIDER
    sandbox = False

    def __init__(
        self,
        api_key: str,
        webhook_secret: str,
        *,
        api_base: str | None = None,
        success_url: str,
        cancel_url: str,
    ) -> None:
        self._api_key = api_key
        self._webhook_secret = webhook_secret
        self._success_url = success_url
        self._cancel_url = cancel_url
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=_NETWORK_RETRIES,
        )

    async def start(self, order: Order, *, shop_name: str) -> CheckoutStart:
        """Open a Checkout Session for ``order`` and return the link to it.

        Starting the same order again (a double tap, a retried turn) reuses the idempotency key,
        so Stripe returns the session it already made instead of opening a second one.
        """
        currency = order.currency.lower()
        params: SessionCreateParams = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": line.quantity,
                    "price_data": {
                        "currency": currency,
                        "unit_amount": _to_stripe_amount(line.unit_minor, order.currency),
                        "product_data": {"name": f"{line.title} ({line.variant})" if line.variant else line.title},
                    },
                }
                for line in order.lines
            ],
            "client_reference_id": order.id,
            # The shopper's thread and chat let the webhook queue the payment in the shopper's lane.
            "metadata": {"order_id": order.id, "business_id": order.business_id, "thread_id": order.thread_id,
                         "chat_id": order.chat_id or order.thread_id},
            "success_url": self._success_url,
            "cancel_url": self._cancel_url,
        }
        options: stripe.RequestOptions = {"idempotency_key": f"chatpay-checkout-{order.id}"}
        try:
            session = await asyncio.to_thread(self._client.v1.checkout.sessions.create, params, options)
        except stripe.StripeError as exc:
            raise self._error(f"could not open a checkout for order {order.number}", exc) from exc
        if not session.url:
            raise PaymentError(PROVIDER, f"checkout session {session.id} for order {order.number} has no URL")
        total = order.total.format()
        return CheckoutStart(
            url=session.url,
            label=f"💳 Pay {total} by card",
            text=f"Order {order.number} at {shop_name}: {total}. Tap the button to pay by card on Stripe's "
                 "secure page; I'll confirm here as soon as the payment arrives.",
            checkout_ref=session.id,
        )

    async def refund(self, order: Order) -> str:
        """Refund what is left of ``order``'s payment, once even if asked twice."""
        if not order.provider_payment_id:
            raise PaymentError(PROVIDER, f"order {order.number} has no Stripe payment to refund")
        params: RefundCreateParams = {"payment_intent": order.provider_payment_id}
        options: stripe.RequestOptions = {"idempotency_key": f"chatpay-refund-{order.id}"}
        try:
            refund = await asyncio.to_thread(self._client.v1.refunds.create, params, options)
        except stripe.StripeError as exc:
            raise self._error(f"could not refund order {order.number}", exc) from exc
        currency = refund.currency.upper()
        amount = f"{Money(_from_stripe_amount(refund.amount, currency), currency).amount_str()} {currency}"
        if refund.status == "succeeded":
            return f"Refunded {amount} through Stripe (refund {refund.id})"
        return f"Asked Stripe to refund {amount}; the refund is {refund.status} (refund {refund.id})"

    def verify(self, payload: bytes, signature_header: str | None) -> ConfirmedPayment | None:
        """The payment a webhook confirms, or None for an event that confirms none.

        Raises :class:`WebhookRejected` for a request that is not a genuine Stripe event. Use
        :meth:`verify_event` to also get the event's id (to skip replays).
        """
        return self.verify_event(payload, signature_header).payment

    def verify_event(self, payload: bytes, signature_header: str | None) -> StripeEvent:
        """Check a webhook's ``Stripe-Signature`` against the raw body and read the event.

        ``payload`` must be the body exactly as received: the signature covers its bytes.
        A session that completes with ``payment_status == "paid"`` (or succeeds later) yields a
        :class:`ConfirmedPayment`; so does nothing else, including sessions not opened by
        ChatPay (no order id), which are acknowledged and ignored rather than retried by Stripe.
        """
        if not signature_header:
            raise WebhookRejected("no Stripe-Signature header")
        try:
            event = self._client.construct_event(payload, signature_header, self._webhook_secret, _TOLERANCE_S)
        except stripe.SignatureVerificationError as exc:
            raise WebhookRejected(f"bad Stripe-Signature: {exc.user_message}") from exc
        except ValueError as exc:  # not UTF-8, not JSON, or not a snapshot event
            raise WebhookRejected(f"body is not a Stripe event ({type(exc).__name__})") from exc
        event_id, event_type = _field(event, "id"), _field(event, "type")
        if not isinstance(event_id, str) or not isinstance(event_type, str):
            raise WebhookRejected("event has no id or type")
        payment = None
        thread = chat = business = None
        if event_type in _PAID_EVENTS:
            data = _field(event, "data")
            session = _field(data, "object") if data is not None else None
            payment = _confirmed(session)
            metadata = _field(session, "metadata") if session is not None else None
            if metadata is not None:
                thread, chat = _field(metadata, "thread_id"), _field(metadata, "chat_id")
                business = _field(metadata, "business_id")
        return StripeEvent(id=event_id, type=event_type, payment=payment,
                           thread_id=str(thread) if thread else None, chat_id=str(chat) if chat else None,
                           business_id=str(business) if business else None)

    def _error(self, doing: str, exc: stripe.StripeError) -> PaymentError:
        """A PaymentError saying what failed and why, with the API key cut out wherever it appears."""
        why = exc.user_message or type(exc).__name__
        facts = [
            exc.code or (exc.error.type if exc.error is not None else None),
            f"HTTP {exc.http_status}" if exc.http_status else "no response",
            f"request {exc.request_id}" if exc.request_id else None,  # what Stripe support asks for
        ]
        detail = f"{doing}: {why} ({', '.join(fact for fact in facts if fact)})"
        return PaymentError(PROVIDER, detail.replace(self._api_key, "[redacted API key]"))


def _confirmed(session: Any) -> ConfirmedPayment | None:
    """The payment a completed Checkout Session records, if it is paid and opened by ChatPay."""
    if session is None or _field(session, "payment_status") != "paid":
        return None
    metadata = _field(session, "metadata")
    order_id = (_field(metadata, "order_id") if metadata is not None else None) or _field(session, "client_reference_id")
    intent = _field(session, "payment_intent")
    payment_id = intent if isinstance(intent, str) or intent is None else _field(intent, "id")
    amount, currency = _field(session, "amount_total"), _field(session, "currency")
    if not order_id:
        return None
    if not payment_id or not isinstance(amount, int) or not isinstance(currency, str):
        raise WebhookRejected(f"paid session for order {order_id} lacks payment_intent, amount_total or currency")
    code = currency.upper()
    return ConfirmedPayment(provider=PROVIDER, order_id=str(order_id), payment_id=str(payment_id),
                            currency=code, total_minor=_from_stripe_amount(amount, code))


def _field(obj: Any, key: str) -> Any:
    """``obj[key]`` or None: Stripe objects are dicts in older SDKs and not in newer ones."""
    return obj[key] if key in obj else None


def _to_stripe_amount(minor: int, currency: str) -> int:
    """``minor`` units of ``currency`` as Stripe's API writes the amount."""
    shift = _STRIPE_EXPONENTS.get(currency, exponent(currency)) - exponent(currency)
    if shift >= 0:
        return minor * 10**shift
    amount, rest = divmod(minor, 10**-shift)
    if rest:
        raise PaymentError(PROVIDER, f"{Money(minor, currency)} cannot be charged exactly: Stripe takes whole {currency}")
    return amount


def _from_stripe_amount(amount: int, currency: str) -> int:
    """A Stripe API amount of ``currency`` in ChatPay's minor units."""
    shift = _STRIPE_EXPONENTS.get(currency, exponent(currency)) - exponent(currency)
    return amount * 10**-shift if shift <= 0 else amount // 10**shift


def from_env(env: Mapping[str, str]) -> StripeCheckoutProvider:
    """The provider the environment configures; raises :class:`ConfigError` naming every bad setting.

    A publishable key (``pk_...``) or swapped variables are refused here rather than at the
    first shopper's checkout.
    """
    values = {name: env.get(name, "").strip() for name in ("STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET")}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise ConfigError(", ".join(missing), "not set; Stripe payments need both the secret API key and the webhook signing secret")
    malformed = [name for name, value, prefixes in (
        ("STRIPE_API_KEY", values["STRIPE_API_KEY"], ("sk_", "rk_")),
        ("STRIPE_WEBHOOK_SECRET", values["STRIPE_WEBHOOK_SECRET"], ("whsec_",)),
    ) if not value.startswith(prefixes)]
    if malformed:
        raise ConfigError(", ".join(malformed), "malformed; expected a secret key (sk_... or rk_...) and a signing secret (whsec_...)")
    return StripeCheckoutProvider(
        values["STRIPE_API_KEY"],
        values["STRIPE_WEBHOOK_SECRET"],
        api_base=env.get("STRIPE_API_BASE", "").strip() or None,
        success_url=env.get("STRIPE_SUCCESS_URL", "").strip() or DEFAULT_RETURN_URL,
        cancel_url=env.get("STRIPE_CANCEL_URL", "").strip() or DEFAULT_RETURN_URL,
    )
