"""Stripe Checkout, against a local stand-in of Stripe's API: what a merchant would notice.

The shopper is charged exactly the order, in its currency; a double tap opens one checkout; only a
genuine, recent, signed Stripe event confirms a payment; a refund gives the money back once; and
no error shows the API key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from chatpay.adapters.payments.stripe_checkout import (
    StripeCheckoutProvider,
    StripeEvent,
    WebhookRejected,
    from_env,
)
from chatpay.core.errors import ConfigError, PaymentError
from chatpay.core.orders import ConfirmedPayment, Order, OrderLine
from chatpay.core.ports import PaymentProvider
from tests.payments.stripe_standin import StripeStandIn, sign

API_KEY = "sk_test_51StandInSecretKey4eC39HqLyjWDarjtT1zdp7dc"
SECRET = "whsec_standin_5f1b2c3d4e"
SUCCESS_URL = "https://t.me/basil_shop_bot?start=paid"
CANCEL_URL = "https://t.me/basil_shop_bot"


@pytest.fixture
def stripe_api() -> Iterator[StripeStandIn]:
    with StripeStandIn(API_KEY) as api:
        yield api


@pytest.fixture
def provider(stripe_api: StripeStandIn) -> StripeCheckoutProvider:
    stripe: PaymentProvider = StripeCheckoutProvider(API_KEY, SECRET, api_base=stripe_api.url,
                                                     success_url=SUCCESS_URL, cancel_url=CANCEL_URL)
    assert isinstance(stripe, StripeCheckoutProvider)
    return stripe


def order(*lines: tuple[str, str, int, int], currency: str = "EUR", oid: str = "o1a2b3c4d5e6",
          payment_id: str | None = None) -> Order:
    """An order of ``(title, variant, unit_minor, quantity)`` lines."""
    return Order(
        id=oid, business_id="basil-shop", thread_id="t42", currency=currency,
        lines=tuple(OrderLine(handle=title.lower().replace(" ", "-"), variant_id=f"v{i}", title=title,
                              variant=variant, unit_minor=unit, quantity=qty)
                    for i, (title, variant, unit, qty) in enumerate(lines)),
        cart_version=3, provider="stripe", created_at=datetime(2025, 5, 1, 12, 0, tzinfo=UTC),
        provider_payment_id=payment_id,
    )


TSHIRT_AND_STICKER = order(("T-shirt", "Blue / M", 1290, 2), ("Sticker", "", 200, 1))  # 27.80 EUR


# ---------------------------------------------------------------------------- start


async def test_checkout_charges_exactly_the_orders_lines(provider: StripeCheckoutProvider,
                                                         stripe_api: StripeStandIn) -> None:
    start = await provider.start(TSHIRT_AND_STICKER, shop_name="Basil Shop")

    [request] = stripe_api.requests
    assert (request.method, request.path) == ("POST", "/v1/checkout/sessions")
    sent = request.params
    assert sent["mode"] == "payment"
    assert [(i["price_data"]["product_data"]["name"], i["price_data"]["unit_amount"], i["quantity"],
             i["price_data"]["currency"]) for i in sent["line_items"]] == [
        ("T-shirt (Blue / M)", "1290", "2", "eur"), ("Sticker", "200", "1", "eur")]
    assert sent["client_reference_id"] == "o1a2b3c4d5e6"
    assert sent["metadata"] == {"order_id": "o1a2b3c4d5e6", "business_id": "basil-shop", "thread_id": "t42",
                                "chat_id": "t42"}
    assert (sent["success_url"], sent["cancel_url"]) == (SUCCESS_URL, CANCEL_URL)

    session = stripe_api.sessions[start.checkout_ref or ""]
    assert session["amount_total"] == TSHIRT_AND_STICKER.total_minor == 2780
    assert start.url == session["url"] and start.invoice is None and not start.completes
    assert start.label == "💳 Pay €27.80 by card"
    assert "O1A2B3C4D5E6" in start.text and "Basil Shop" in start.text and "€27.80" in start.text


@pytest.mark.parametrize(("currency", "units", "stripe_units", "label"), [
    ("JPY", [1500, 980], ["1500", "980"], "💳 Pay ¥3980 by card"),  # zero-decimal: yen, not cents
    ("KWD", [1250, 3500], ["1250", "3500"], "💳 Pay 6.000 KWD by card"),  # three decimals
    ("ISK", [990, 4500], ["99000", "450000"], "💳 Pay 6480 ISK by card"),  # Stripe writes ISK with two decimals
    ("MGA", [150000, 250000], ["1500", "2500"], "💳 Pay 5500.00 MGA by card"),  # and MGA with none
])
async def test_other_currencies_are_charged_and_confirmed_to_the_unit(
        provider: StripeCheckoutProvider, stripe_api: StripeStandIn, currency: str, units: list[int],
        stripe_units: list[str], label: str) -> None:
    bought = order(("Tea", "", units[0], 2), ("Teapot", "", units[1], 1), currency=currency)
    start = await provider.start(bought, shop_name="Basil Shop")

    items = stripe_api.requests[0].params["line_items"]
    assert [i["price_data"]["unit_amount"] for i in items] == stripe_units
    assert {i["price_data"]["currency"] for i in items} == {currency.lower()}
    assert start.label == label

    paid = provider.verify(*signed(stripe_api.payment_event(start.checkout_ref or "")))
    assert paid is not None and (paid.currency, paid.total_minor) == (currency, bought.total_minor)


async def test_a_price_stripe_cannot_charge_exactly_is_refused_before_asking_stripe(
        provider: StripeCheckoutProvider, stripe_api: StripeStandIn) -> None:
    with pytest.raises(PaymentError, match="cannot be charged exactly"):
        await provider.start(order(("Vanilla", "", 150050, 1), currency="MGA"), shop_name="Basil Shop")
    assert not stripe_api.requests


async def test_starting_the_same_order_again_reuses_its_checkout(provider: StripeCheckoutProvider,
                                                                stripe_api: StripeStandIn) -> None:
    first = await provider.start(TSHIRT_AND_STICKER, shop_name="Basil Shop")
    again = await provider.start(TSHIRT_AND_STICKER, shop_name="Basil Shop")
    other = await provider.start(order(("Sticker", "", 200, 1), oid="o999"), shop_name="Basil Shop")

    assert again.checkout_ref == first.checkout_ref and again.url == first.url
    assert other.checkout_ref != first.checkout_ref
    keys = [r.idempotency_key for r in stripe_api.requests]
    assert keys[0] == keys[1] and keys[0] and "o1a2b3c4d5e6" in keys[0] and keys[2] != keys[0]
    assert len(stripe_api.sessions) == 2


async def test_a_passing_stripe_failure_is_retried_into_one_checkout(provider: StripeCheckoutProvider,
                                                                     stripe_api: StripeStandIn) -> None:
    stripe_api.fail_next(500, "api_error", "An unknown error occurred", retryable=True)

    start = await provider.start(TSHIRT_AND_STICKER, shop_name="Basil Shop")

    assert [r.status for r in stripe_api.requests] == [500, 200]
    assert len({r.idempotency_key for r in stripe_api.requests}) == 1
    assert list(stripe_api.sessions) == [start.checkout_ref]


@pytest.mark.parametrize(("status", "error_type", "message", "code"), [
    (402, "card_error", "The request failed although its parameters were valid.", "request_failed"),
    (500, "api_error", "An unknown error occurred", None),
    (400, "invalid_request_error", "Invalid currency: xtr.", "parameter_invalid"),
])
async def test_a_stripe_error_is_a_payment_error_that_says_why(
        provider: StripeCheckoutProvider, stripe_api: StripeStandIn, status: int, error_type: str,
        message: str, code: str | None) -> None:
    stripe_api.fail_next(status, error_type, message, code=code)

    with pytest.raises(PaymentError) as caught:
        await provider.start(TSHIRT_AND_STICKER, shop_name="Basil Shop")

    text = str(caught.value)
    assert caught.value.provider == "stripe" and text.startswith("stripe: could not open a checkout")
    assert message in text and f"HTTP {status}" in text and (code or error_type) in text
    assert "O1A2B3C4D5E6" in text and "request req_standin" in text
    assert API_KEY not in text and API_KEY not in repr(provider)
    assert len(stripe_api.requests) == 1  # told not to retry, the SDK did not


async def test_a_rejected_api_key_never_appears_in_the_error(stripe_api: StripeStandIn) -> None:
    wrong = "sk_test_51WrongKeyThatMustNotLeak9q8w7e6r5t"
    provider = StripeCheckoutProvider(wrong, SECRET, api_base=stripe_api.url,
                                      success_url=SUCCESS_URL, cancel_url=CANCEL_URL)

    with pytest.raises(PaymentError) as caught:
        await provider.start(TSHIRT_AND_STICKER, shop_name="Basil Shop")

    assert "HTTP 401" in str(caught.value) and "Invalid API Key" in str(caught.value)
    assert wrong not in str(caught.value) and "[redacted API key]" in str(caught.value)
    assert not stripe_api.sessions


# ---------------------------------------------------------------------------- webhooks


def signed(payload: bytes, secret: str = SECRET, timestamp: int | None = None) -> tuple[bytes, str]:
    return payload, sign(payload, secret, timestamp)


async def test_a_signed_paid_session_confirms_the_orders_payment(provider: StripeCheckoutProvider,
                                                                stripe_api: StripeStandIn) -> None:
    start = await provider.start(TSHIRT_AND_STICKER, shop_name="Basil Shop")
    body = stripe_api.payment_event(start.checkout_ref or "", event_id="evt_1Paid")

    event = provider.verify_event(*signed(body))

    intent = stripe_api.sessions[start.checkout_ref or ""]["payment_intent"]
    expected = ConfirmedPayment(provider="stripe", order_id="o1a2b3c4d5e6", payment_id=intent,
                                currency="EUR", total_minor=2780)
    assert event == StripeEvent(id="evt_1Paid", type="checkout.session.completed", payment=expected,
                                thread_id="t42", chat_id="t42", business_id="basil-shop")  # where the webhook queues the receipt
    assert provider.verify(*signed(body)) == expected


async def test_a_delayed_payment_confirms_when_it_succeeds_not_when_the_session_completes(
        provider: StripeCheckoutProvider, stripe_api: StripeStandIn) -> None:
    start = await provider.start(TSHIRT_AND_STICKER, shop_name="Basil Shop")
    ref = start.checkout_ref or ""

    completed = stripe_api.payment_event(ref, payment_status="unpaid")
    succeeded = stripe_api.payment_event(ref, event_type="checkout.session.async_payment_succeeded")

    assert provider.verify(*signed(completed)) is None
    paid = provider.verify(*signed(succeeded))
    assert paid is not None and (paid.order_id, paid.total_minor) == ("o1a2b3c4d5e6", 2780)


async def test_a_redelivered_event_keeps_its_id_so_the_caller_can_skip_it(provider: StripeCheckoutProvider,
                                                                         stripe_api: StripeStandIn) -> None:
    start = await provider.start(TSHIRT_AND_STICKER, shop_name="Basil Shop")
    body = stripe_api.payment_event(start.checkout_ref or "")

    first, redelivered = provider.verify_event(*signed(body)), provider.verify_event(*signed(body))
    other = provider.verify_event(*signed(stripe_api.event("checkout.session.expired", {"id": "cs_x"})))

    assert first.id == redelivered.id and first.payment == redelivered.payment
    assert other.id != first.id


@pytest.mark.parametrize("event_type", ["checkout.session.expired", "payment_intent.created", "charge.refunded"])
def test_events_that_are_not_a_payment_confirm_nothing(provider: StripeCheckoutProvider,
                                                       stripe_api: StripeStandIn, event_type: str) -> None:
    body = stripe_api.event(event_type, {"id": "cs_or_pi", "object": "checkout.session", "payment_status": "paid",
                                         "amount_total": 2780, "currency": "eur", "payment_intent": "pi_1",
                                         "metadata": {"order_id": "o1a2b3c4d5e6"}})

    event = provider.verify_event(*signed(body))

    assert event.type == event_type and event.payment is None and event.id.startswith("evt_")


def test_a_paid_session_chatpay_did_not_open_is_ignored(provider: StripeCheckoutProvider,
                                                        stripe_api: StripeStandIn) -> None:
    session = {"id": "cs_link", "object": "checkout.session", "payment_status": "paid", "amount_total": 500,
               "currency": "eur", "payment_intent": "pi_link", "metadata": {}, "client_reference_id": None}

    assert provider.verify(*signed(stripe_api.event("checkout.session.completed", session))) is None

    session["client_reference_id"] = "o777"  # opened by ChatPay before metadata was set: still found
    paid = provider.verify(*signed(stripe_api.event("checkout.session.completed", session)))
    assert paid is not None and (paid.order_id, paid.payment_id) == ("o777", "pi_link")


def _tampered(body: bytes) -> tuple[bytes, str]:
    header = sign(body, SECRET)
    event = json.loads(body)
    event["data"]["object"]["amount_total"] = 1
    return json.dumps(event).encode(), header


@pytest.mark.parametrize(("forge", "reason"), [
    (_tampered, "bad Stripe-Signature"),
    (lambda body: signed(body, secret="whsec_someone_else"), "bad Stripe-Signature"),
    (lambda body: signed(body, timestamp=int(time.time()) - 301), "bad Stripe-Signature"),
    (lambda body: (body, None), "no Stripe-Signature header"),
    (lambda body: (body, ""), "no Stripe-Signature header"),
    (lambda body: (body, "t=yesterday,v1=abc"), "bad Stripe-Signature"),
    (lambda body: (body, sign(body, SECRET).split(",")[0]), "bad Stripe-Signature"),
    (lambda body: signed(b"{not json"), "body is not a Stripe event"),
    (lambda body: signed(b"\xff\xfe"), "body is not a Stripe event"),
], ids=["tampered body", "other secret", "stale timestamp", "missing header", "empty header",
        "garbled header", "no v1 signature", "signed non-JSON", "signed non-UTF-8"])
async def test_anything_but_a_genuine_recent_stripe_event_is_rejected(
        provider: StripeCheckoutProvider, stripe_api: StripeStandIn, forge: Callable[[bytes], tuple[bytes, str | None]],
        reason: str) -> None:
    start = await provider.start(TSHIRT_AND_STICKER, shop_name="Basil Shop")
    body = stripe_api.payment_event(start.checkout_ref or "")
    payload, header = forge(body)

    with pytest.raises(WebhookRejected) as caught:
        provider.verify(payload, header)

    assert caught.value.reason.startswith(reason)
    assert SECRET not in str(caught.value)


# ---------------------------------------------------------------------------- refunds


async def test_refund_gives_the_payment_back_once(provider: StripeCheckoutProvider,
                                                  stripe_api: StripeStandIn) -> None:
    start = await provider.start(TSHIRT_AND_STICKER, shop_name="Basil Shop")
    paid = provider.verify(*signed(stripe_api.payment_event(start.checkout_ref or "")))
    assert paid is not None
    bought = order(("T-shirt", "Blue / M", 1290, 2), ("Sticker", "", 200, 1), payment_id=paid.payment_id)

    said = await provider.refund(bought)
    again = await provider.refund(bought)

    [refund] = stripe_api.refunds.values()
    assert said == again == f"Refunded 27.80 EUR through Stripe (refund {refund['id']})"
    refunds = [r for r in stripe_api.requests if r.path == "/v1/refunds"]
    assert [r.params for r in refunds] == [{"payment_intent": paid.payment_id}] * 2
    assert refunds[0].idempotency_key == refunds[1].idempotency_key != stripe_api.requests[0].idempotency_key


async def test_refund_of_an_unknown_payment_says_so(provider: StripeCheckoutProvider,
                                                    stripe_api: StripeStandIn) -> None:
    with pytest.raises(PaymentError, match="could not refund order O1A2B3C4D5E6: No such payment_intent"):
        await provider.refund(order(("Sticker", "", 200, 1), payment_id="pi_never_paid"))

    with pytest.raises(PaymentError, match="has no Stripe payment to refund"):
        await provider.refund(order(("Sticker", "", 200, 1)))
    assert stripe_api.paths() == ["POST /v1/refunds"]


# ---------------------------------------------------------------------------- settings


def test_from_env_names_every_missing_setting_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        from_env({"STRIPE_API_BASE": "http://127.0.0.1:1"})
    assert caught.value.setting == "STRIPE_API_KEY, STRIPE_WEBHOOK_SECRET"

    with pytest.raises(ConfigError) as caught:
        from_env({"STRIPE_API_KEY": API_KEY, "STRIPE_WEBHOOK_SECRET": "  "})
    assert caught.value.setting == "STRIPE_WEBHOOK_SECRET"


def test_from_env_refuses_a_publishable_key_without_showing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        from_env({"STRIPE_API_KEY": "pk_test_publishable123", "STRIPE_WEBHOOK_SECRET": SECRET})
    assert caught.value.setting == "STRIPE_API_KEY" and "pk_test_publishable123" not in str(caught.value)


async def test_from_env_configures_a_working_provider(stripe_api: StripeStandIn) -> None:
    provider = from_env({"STRIPE_API_KEY": API_KEY, "STRIPE_WEBHOOK_SECRET": SECRET,
                         "STRIPE_API_BASE": stripe_api.url})

    start = await provider.start(TSHIRT_AND_STICKER, shop_name="Basil Shop")

    assert (provider.name, provider.sandbox) == ("stripe", False)
    assert start.url and stripe_api.requests[0].params["success_url"] == "https://t.me/"
    assert provider.verify(*signed(stripe_api.payment_event(start.checkout_ref or ""))) is not None
