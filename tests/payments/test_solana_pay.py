"""USDC through Solana Pay: what the shopper is asked to pay, and which payments confirm an order.

The chain is a local JSON-RPC stand-in (tests/payments/solana_standin.py) programmed per test;
the lock test runs against a real redis-server.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from chatpay.adapters.memory import FixedClock
from chatpay.adapters.payments.solana_pay import (
    USDC_MINT,
    PaymentProblem,
    SolanaPayProvider,
    from_env,
    ui_amount,
)
from chatpay.adapters.payments.solana_poller import InMemoryLock, PollReport, RedisLock, UsdcPoller
from chatpay.adapters.redis import connect
from chatpay.core.errors import ConcurrencyConflict, ConfigError, PaymentError
from chatpay.core.orders import ConfirmedPayment, Order, OrderLine
from tests.payments.solana_standin import USDT_MINT, SolanaRpcStandin, Transfer, new_key
from tests.support.redis_server import RedisServer, free_port

SHOP = new_key()
SHOPPER = new_key()
CLOCK_START = datetime.fromisoformat("2026-03-01T12:00:00+00:00")
OTHER_WALLET = new_key()
FAILED = {"InstructionError": [1, {"Custom": 1}]}  # SPL Token error 1: insufficient funds


def usdc_to(to: str, amount: int, *, mint: str = USDC_MINT, **details: Any) -> Transfer:
    """What the shopper's wallet sent: ``amount`` base units (6 decimals) of ``mint`` to ``to``."""
    return Transfer(payer=SHOPPER, to=to, mint=mint, amount=amount, **details)


def make_order(minor: int = 2780, currency: str = "USD", *, ref: str | None = None,
               order_id: str = "o1a2b3c4d5e6", provider: str = "usdc",
               age: timedelta = timedelta(minutes=1)) -> Order:
    return Order(id=order_id, business_id="bean-and-leaf", thread_id="t1", currency=currency,
                 lines=(OrderLine("beans", "v1", "House beans", "1 kg", minor, 1),), cart_version=1,
                 provider=provider, created_at=CLOCK_START - age, checkout_ref=ref)


class Orders:
    """The OrderStore port in memory: as much as the poller and these tests use, honestly."""

    def __init__(self, *orders: Order) -> None:
        self.orders = {order.id: order for order in orders}

    async def create(self, order: Order) -> Order:
        return self.orders.setdefault(order.id, order)

    async def get(self, business_id: str, order_id: str) -> Order | None:
        order = self.orders.get(order_id)
        return order if order is not None and order.business_id == business_id else None

    async def find(self, order_id: str) -> Order | None:
        return self.orders.get(order_id)

    async def list(self, business_id: str | None = None, *, thread_id: str | None = None,
                   state: str | None = None, limit: int = 100) -> list[Order]:
        found = [o for o in self.orders.values()
                 if business_id in (None, o.business_id) and thread_id in (None, o.thread_id)
                 and state in (None, o.state)]
        return sorted(found, key=lambda o: o.created_at, reverse=True)[:limit]

    async def update(self, order: Order, expected_state: str) -> Order:
        if self.orders[order.id].state != expected_state:
            raise ConcurrencyConflict(f"order {order.id}", 0)
        self.orders[order.id] = order
        return order

    async def by_payment(self, business_id: str, provider: str, payment_id: str) -> Order | None:
        return next((o for o in self.orders.values() if (o.business_id, o.provider, o.provider_payment_id)
                     == (business_id, provider, payment_id)), None)


@pytest.fixture
def node() -> Iterator[SolanaRpcStandin]:
    with SolanaRpcStandin() as running:
        yield running


@pytest.fixture
def usdc(node: SolanaRpcStandin) -> SolanaPayProvider:
    return SolanaPayProvider(SHOP, node.url)


def request_fields(url: str) -> tuple[str, str, dict[str, list[str]]]:
    parts = urlsplit(url)
    return parts.scheme, parts.path, parse_qs(parts.query, strict_parsing=True)


# --------------------------------------------------------------------------- the transfer request


@pytest.mark.parametrize(("minor", "amount"), [
    (2780, "27.8"), (1, "0.01"), (123456, "1234.56"), (10000, "100"), (5, "0.05"),
])
async def test_the_transfer_request_asks_for_exactly_the_order_total(usdc: SolanaPayProvider, minor: int,
                                                                     amount: str) -> None:
    start = await usdc.start(make_order(minor), shop_name="Bean and Leaf")

    assert start.url is not None
    scheme, recipient, fields = request_fields(start.url)
    assert (scheme, recipient) == ("solana", SHOP)
    assert fields["amount"] == [amount]
    assert Decimal(amount).scaleb(6) == minor * 10_000  # cents to 6-decimal base units, nothing lost
    assert fields["spl-token"] == [USDC_MINT]
    assert fields["reference"] == [start.checkout_ref]
    assert start.checkout_ref is not None
    assert str(Pubkey.from_string(start.checkout_ref)) == start.checkout_ref
    assert fields["label"] == ["Bean and Leaf"]
    assert fields["memo"] == ["o1a2b3c4d5e6"]
    assert fields["message"] == ["Order O1A2B3C4D5E6"]


async def test_text_fields_are_url_encoded_like_encodeURIComponent(usdc: SolanaPayProvider) -> None:
    start = await usdc.start(make_order(), shop_name="Bean & Leaf's Café (Lisbon)")

    assert start.url is not None
    assert "&label=Bean%20%26%20Leaf's%20Caf%C3%A9%20(Lisbon)&" in start.url
    assert "+" not in start.url
    assert request_fields(start.url)[2]["label"] == ["Bean & Leaf's Café (Lisbon)"]


async def test_the_shopper_is_told_what_to_pay_and_with_what(usdc: SolanaPayProvider) -> None:
    start = await usdc.start(make_order(), shop_name="Bean and Leaf")

    assert start.label == "Pay 27.80 USDC"
    assert "Solana wallet" in start.text and "27.80 USDC" in start.text
    assert start.invoice is None and not start.completes


async def test_every_order_gets_its_own_reference(usdc: SolanaPayProvider) -> None:
    first = await usdc.start(make_order(), shop_name="s")
    second = await usdc.start(make_order(), shop_name="s")

    assert first.checkout_ref != second.checkout_ref


async def test_the_qr_code_is_a_png_of_the_link(usdc: SolanaPayProvider) -> None:
    start = await usdc.start(make_order(), shop_name="Bean & Leaf Café")

    assert start.image_png is not None and start.image_png.startswith(b"\x89PNG\r\n\x1a\n")
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(start.image_png)))
    assert [code.text for code in decoded] == [start.url]


async def test_an_order_not_priced_in_dollars_is_refused(usdc: SolanaPayProvider) -> None:
    with pytest.raises(PaymentError, match="EUR"):
        await usdc.start(make_order(currency="EUR"), shop_name="s")


@given(st.integers(min_value=0, max_value=10**15))
def test_amounts_are_plain_decimals_that_mean_exactly_the_cents(cents: int) -> None:
    text = ui_amount(cents * 10_000, 6)

    assert "e" not in text.lower() and not text.startswith(".")
    assert Decimal(text) == Decimal(cents) / 100


# --------------------------------------------------------------------------- confirming a payment


async def test_a_matching_transfer_confirms_the_order(node: SolanaRpcStandin,
                                                       usdc: SolanaPayProvider) -> None:
    ref = new_key()
    signature = node.pay(ref, usdc_to(SHOP, 27_800_000))

    found = await usdc.check(make_order(ref=ref))

    assert found == ConfirmedPayment(provider="usdc", order_id="o1a2b3c4d5e6", payment_id=signature,
                                     currency="USD", total_minor=2780, payer=SHOPPER)
    assert node.requests == [
        ("getSignaturesForAddress", [ref, {"limit": 50, "commitment": "confirmed"}]),
        ("getTransaction", [signature, {"encoding": "jsonParsed", "commitment": "confirmed",
                                        "maxSupportedTransactionVersion": 0}]),
    ]


async def test_the_shops_first_usdc_ever_confirms_too(node: SolanaRpcStandin,
                                                       usdc: SolanaPayProvider) -> None:
    ref = new_key()
    node.pay(ref, usdc_to(SHOP, 27_800_000, new_account=True))

    assert isinstance(await usdc.check(make_order(ref=ref)), ConfirmedPayment)


@pytest.mark.parametrize(("transfer", "reason"), [
    (usdc_to(SHOP, 27_000_000), "underpaid: 27.00 of 27.80 USDC"),
    (usdc_to(SHOP, 27_799_999), "underpaid: 27.799999 of 27.80 USDC"),
    (usdc_to(SHOP, 30_000_000), "overpaid: 30.00 of 27.80 USDC"),
    (usdc_to(SHOP, 27_800_000, mint=USDT_MINT), f"paid in another token (mint {USDT_MINT}), not USDC"),
    (usdc_to(OTHER_WALLET, 27_800_000), f"paid to another wallet ({OTHER_WALLET}), not the shop's"),
    (usdc_to(SHOP, 27_800_000, err=FAILED),
     'failed: the transaction was rejected on chain ({"InstructionError": [1, {"Custom": 1}]}), '
     'so no USDC moved'),
], ids=["underpaid", "a-millionth-short", "overpaid", "another-mint", "another-recipient", "failed"])
async def test_a_transfer_that_does_not_pay_the_order_is_a_problem_never_a_payment(
        node: SolanaRpcStandin, usdc: SolanaPayProvider, transfer: Transfer, reason: str) -> None:
    ref = new_key()
    signature = node.pay(ref, transfer)

    assert await usdc.check(make_order(ref=ref)) == PaymentProblem("o1a2b3c4d5e6", signature, reason)


async def test_nothing_on_chain_yet_is_none(node: SolanaRpcStandin, usdc: SolanaPayProvider) -> None:
    node.pay(new_key(), usdc_to(SHOP, 27_800_000))  # another order's

    assert await usdc.check(make_order(ref=new_key())) is None


async def test_transactions_are_judged_oldest_first_and_a_good_one_wins(node: SolanaRpcStandin,
                                                                        usdc: SolanaPayProvider) -> None:
    ref = new_key()
    short = node.pay(ref, usdc_to(SHOP, 1_000_000))
    full = node.pay(ref, usdc_to(SHOP, 27_800_000))

    found = await usdc.check(make_order(ref=ref))

    assert isinstance(found, ConfirmedPayment) and found.payment_id == full
    assert [params[0] for method, params in node.requests if method == "getTransaction"] == [short, full]


async def test_a_listed_transaction_without_the_reference_is_ignored(node: SolanaRpcStandin,
                                                                     usdc: SolanaPayProvider) -> None:
    ref = new_key()
    node.pay(ref, usdc_to(SHOP, 27_800_000, carries_reference=False))

    assert await usdc.check(make_order(ref=ref)) is None


async def test_a_json_rpc_error_is_a_payment_error(node: SolanaRpcStandin, usdc: SolanaPayProvider) -> None:
    node.fail(-32005, "Node is behind by 42 slots")

    expected = r"getSignaturesForAddress refused: Node is behind by 42 slots \(code -32005\)"
    with pytest.raises(PaymentError, match=expected):
        await usdc.check(make_order(ref=new_key()))


async def test_an_http_failure_is_a_payment_error_that_keeps_the_url_secret(node: SolanaRpcStandin) -> None:
    node.http_error(503)
    usdc = SolanaPayProvider(SHOP, node.url + "?api-key=SECRET")

    with pytest.raises(PaymentError, match="HTTP 503") as caught:
        await usdc.check(make_order(ref=new_key()))
    assert "SECRET" not in str(caught.value)


async def test_an_unreachable_node_is_a_payment_error() -> None:
    usdc = SolanaPayProvider(SHOP, f"http://127.0.0.1:{free_port()}/", timeout=2.0)

    with pytest.raises(PaymentError, match="could not be reached"):
        await usdc.check(make_order(ref=new_key()))


async def test_refunds_are_the_merchants_to_send(usdc: SolanaPayProvider) -> None:
    order = make_order(ref=new_key())
    paid = order.to("paid", CLOCK_START, provider_payment_id="5sig", paid_minor=2780,
                    extra={"payer": SHOPPER})

    with pytest.raises(PaymentError) as caught:
        await usdc.refund(paid)
    message = str(caught.value)
    assert "no private key" in message and "27.80 USDC" in message and SHOPPER in message
    assert "from your own wallet" in message and "once you confirm" in message


# --------------------------------------------------------------------------- configuration


def test_from_env_names_every_missing_setting_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        from_env({})
    assert caught.value.setting == "USDC_RECIPIENT, SOLANA_RPC_URL"


def test_from_env_refuses_a_recipient_that_is_not_an_address() -> None:
    with pytest.raises(ConfigError) as caught:
        from_env({"USDC_RECIPIENT": "not-a-wallet", "SOLANA_RPC_URL": "https://rpc.example"})
    assert caught.value.setting == "USDC_RECIPIENT"


def test_from_env_refuses_an_rpc_url_that_is_not_http() -> None:
    with pytest.raises(ConfigError) as caught:
        from_env({"USDC_RECIPIENT": SHOP, "SOLANA_RPC_URL": "rpc.example"})
    assert caught.value.setting == "SOLANA_RPC_URL"


def test_from_env_uses_mainnet_usdc_unless_told_otherwise() -> None:
    devnet = "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU"
    default = from_env({"USDC_RECIPIENT": SHOP, "SOLANA_RPC_URL": "https://rpc.example"})
    chosen = from_env({"USDC_RECIPIENT": SHOP, "SOLANA_RPC_URL": "https://rpc.example", "USDC_MINT": devnet})

    assert (default.recipient, default.mint, default.rpc_url) == (SHOP, USDC_MINT, "https://rpc.example")
    assert chosen.mint == devnet


# --------------------------------------------------------------------------- the poller


class Merchant:
    """The payments service's side of the poller: records what it was handed, and pays orders."""

    def __init__(self, orders: Orders, clock: FixedClock) -> None:
        self.orders = orders
        self.clock = clock
        self.payments: list[ConfirmedPayment] = []
        self.problems: list[PaymentProblem] = []
        self.expired: list[str] = []

    async def on_payment(self, payment: ConfirmedPayment) -> None:
        self.payments.append(payment)
        order = self.orders.orders[payment.order_id]
        await self.orders.update(order.to("paid", self.clock.now(), provider_payment_id=payment.payment_id,
                                          paid_minor=payment.total_minor), "pending")

    async def on_problem(self, problem: PaymentProblem) -> None:
        self.problems.append(problem)

    async def on_expired(self, order: Order) -> None:
        self.expired.append(order.id)
        await self.orders.update(order.to("expired", self.clock.now()), "pending")


def poller(usdc: SolanaPayProvider, merchant: Merchant, lock: InMemoryLock) -> UsdcPoller:
    return UsdcPoller(usdc, merchant.orders, merchant.clock, lock=lock, on_payment=merchant.on_payment,
                      on_problem=merchant.on_problem, on_expired=merchant.on_expired)


async def test_the_poller_confirms_paid_orders_and_expires_old_unpaid_ones(node: SolanaRpcStandin,
                                                                           usdc: SolanaPayProvider) -> None:
    paid_ref, short_ref, young_ref, old_ref, card_ref = (new_key() for _ in range(5))
    node.pay(paid_ref, usdc_to(SHOP, 27_800_000))
    node.pay(short_ref, usdc_to(SHOP, 20_000_000))
    orders = Orders(make_order(ref=paid_ref, order_id="opaid", age=timedelta(minutes=29)),
                    make_order(ref=short_ref, order_id="oshort"),
                    make_order(ref=young_ref, order_id="oyoung", age=timedelta(minutes=29)),
                    make_order(ref=old_ref, order_id="oold", age=timedelta(minutes=31)),
                    make_order(ref=card_ref, order_id="ocard", provider="stripe", age=timedelta(hours=2)))
    merchant = Merchant(orders, FixedClock(CLOCK_START))

    report = await poller(usdc, merchant, InMemoryLock()).run_once()

    assert report == PollReport(ran=True, paid=("opaid",), problems=("oshort",), expired=("oold",))
    assert [p.order_id for p in merchant.payments] == ["opaid"]
    assert merchant.problems[0].reason == "underpaid: 20.00 of 27.80 USDC"
    assert (orders.orders["opaid"].state, orders.orders["oold"].state) == ("paid", "expired")
    assert orders.orders["oyoung"].state == orders.orders["ocard"].state == "pending"
    assert card_ref not in {params[0] for _, params in node.requests}

    again = await poller(usdc, merchant, InMemoryLock()).run_once()
    assert again.paid == () and again.expired == ()  # paid and expired orders are left alone


async def test_an_order_whose_check_failed_is_not_expired(node: SolanaRpcStandin,
                                                           usdc: SolanaPayProvider) -> None:
    node.fail(-32005, "Node is behind")
    orders = Orders(make_order(ref=new_key(), age=timedelta(hours=1)))
    merchant = Merchant(orders, FixedClock(CLOCK_START))

    report = await poller(usdc, merchant, InMemoryLock()).run_once()

    assert report == PollReport(ran=True, failed=("o1a2b3c4d5e6",))
    assert merchant.expired == [] and orders.orders["o1a2b3c4d5e6"].state == "pending"


async def test_a_second_poller_does_not_run_while_the_first_holds_the_lock(node: SolanaRpcStandin,
                                                                           usdc: SolanaPayProvider) -> None:
    ref = new_key()
    node.pay(ref, usdc_to(SHOP, 27_800_000))
    table: dict[str, tuple[str, float]] = {}  # one "Redis" shared by two processes
    second_merchant = Merchant(Orders(make_order(ref=ref)), FixedClock(CLOCK_START))
    second = poller(usdc, second_merchant, InMemoryLock(table))
    seen_meanwhile: list[PollReport] = []

    class FirstMerchant(Merchant):
        async def on_payment(self, payment: ConfirmedPayment) -> None:
            seen_meanwhile.append(await second.run_once())  # the first poller is mid-run here
            await super().on_payment(payment)

    first_merchant = FirstMerchant(Orders(make_order(ref=ref)), FixedClock(CLOCK_START))
    first = poller(usdc, first_merchant, InMemoryLock(table))

    assert (await first.run_once()).paid == ("o1a2b3c4d5e6",)
    assert seen_meanwhile == [PollReport(ran=False)]
    assert (await second.run_once()).ran  # released once the first finished


async def test_the_in_memory_lock_expires_and_only_its_holder_releases_it() -> None:
    now = [0.0]
    table: dict[str, tuple[str, float]] = {}
    a, b = InMemoryLock(table, now=lambda: now[0]), InMemoryLock(table, now=lambda: now[0])

    assert await a.acquire("poll", 10) and not await b.acquire("poll", 10)
    await b.release("poll")
    assert not await b.acquire("poll", 10)
    now[0] = 10.0
    assert await b.acquire("poll", 10)  # a died: its lock ran out
    await a.release("poll")
    assert not await a.acquire("poll", 10)


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as running:
        yield running


async def test_the_redis_lock_is_set_nx_with_a_ttl_and_released_by_its_holder_only(
        redis_server: RedisServer) -> None:
    redis_server.flushall()
    clients: list[Any] = [connect(redis_server.url), connect(redis_server.url)]
    a, b = (RedisLock(client) for client in clients)
    try:
        assert await a.acquire("usdc-poller", 5) and not await b.acquire("usdc-poller", 5)
        await b.release("usdc-poller")
        assert not await b.acquire("usdc-poller", 5)
        assert 0 < await clients[0].pttl("chatpay:lock:usdc-poller") <= 5000
        await a.release("usdc-poller")
        assert await b.acquire("usdc-poller", 0.05)
        await asyncio.sleep(0.1)
        assert await a.acquire("usdc-poller", 5)  # b's lock ran out
        await b.release("usdc-poller")  # too late: it must not free a's lock
        assert not await b.acquire("usdc-poller", 5)
    finally:
        for client in clients:
            await client.aclose()
