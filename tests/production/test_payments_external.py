"""Stripe Checkout and USDC end to end: the worker, a real redis-server, the Bot API double, and
local stand-ins of the Stripe API and a Solana JSON-RPC node (no test reaches the network).

The Stripe webhook is the real ``chatpay webhook`` application on a local port, pushing onto the
same Redis queue the worker serves.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web

from chatpay.adapters.redis import connect
from chatpay.bootstrap import build
from chatpay.businesses import load_businesses
from chatpay.config import Settings
from chatpay.core.catalog import Catalog, Variant
from chatpay.core.money import Money
from chatpay.webhook import create_app
from tests.core.shop import product
from tests.payments.solana_standin import SolanaRpcStandin, Transfer, new_key
from tests.payments.stripe_standin import StripeStandIn, sign
from tests.production.conftest import running_worker
from tests.production.helpers import callback, message, wait_until
from tests.support.botapi import BotApiDouble
from tests.support.redis_server import free_port

pytestmark = pytest.mark.timeout(120)

API_KEY = "sk_test_51StandInKeyForTheWorkerTests00"
WEBHOOK_SECRET = "whsec_worker_e2e_5f1b"
USDC_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"


def tools_shop(business: str, currency: str) -> Catalog:
    def one(vid: str, price: str) -> list[Variant]:
        return [Variant(vid, "Default Title", Money.parse(price, currency))]

    return Catalog.of(business, currency, [
        product("claw-hammer", "Claw Hammer", "A 16oz steel claw hammer.", one("ch", "24.95"), "Tools"),
        product("tape-measure", "Tape Measure", "Eight metres, with a locking blade.", one("tm", "12.40"), "Tools"),
    ], store_name="Forge & Fix")


def texts(bot_api: BotApiDouble, chat: int) -> list[dict[str, Any]]:
    return [dict(c.params) for c in bot_api.delivered("sendMessage") if str(c.params.get("chat_id")) == str(chat)]


def receipts(bot_api: BotApiDouble, chat: int) -> list[str]:
    return [t["text"] for t in texts(bot_api, chat) if "Payment received" in t["text"]]


@pytest.fixture
def stripe_api() -> Iterator[StripeStandIn]:
    with StripeStandIn(API_KEY) as api:
        yield api


@pytest.fixture
async def webhook(redis_url: str, stripe_api: StripeStandIn) -> AsyncIterator[str]:
    """``chatpay webhook`` with Stripe, on a free local port, pushing onto the worker's queue."""
    settings = Settings(business_id="forge", telegram_webhook_secret="tg-secret", queue="chatpay_queue",
                        payments="stripe",
                        payment_env={"STRIPE_API_KEY": API_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                                     "STRIPE_API_BASE": stripe_api.url})
    from chatpay.bootstrap import payment_provider

    client = connect(redis_url)

    async def push(queue: str, raw: str) -> None:
        await client.lpush(queue, raw)

    runner = web.AppRunner(create_app(settings, load_businesses(settings), push, stripe=payment_provider(settings)))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/stripe/webhook"
    await runner.cleanup()
    await client.aclose()


async def test_a_stripe_checkout_paid_five_times_over_makes_one_order_and_a_forgery_changes_nothing(
    redis_url: str, bot_api: BotApiDouble, stripe_api: StripeStandIn, webhook: str
) -> None:
    settings = Settings(business_id="forge", payments="stripe",
                        payment_env={"STRIPE_API_KEY": API_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                                     "STRIPE_API_BASE": stripe_api.url})
    runtime = await asyncio.to_thread(build, settings)
    await runtime.import_catalog(tools_shop("forge", "EUR"))
    await runtime.start()
    async with running_worker(runtime, redis_url, bot_api) as w, aiohttp.ClientSession() as http:
        await w.queue.push(message(1, 701, "add 2 claw hammers and a tape measure"))
        await wait_until(lambda: texts(bot_api, 701), 20, "the add reply")
        await w.queue.push(callback(2, 701, "p", "cb-701"))
        link = await wait_until(lambda: [t for t in texts(bot_api, 701) if "reply_markup" in t
                                         and "by card" in str(t["reply_markup"])], 20, "the card checkout link")
        button = link[0]["reply_markup"]["inline_keyboard"][0][0]
        [order] = await runtime.stores.orders.list("forge")  # type: ignore[union-attr]
        assert button["text"] == "💳 Pay €62.30 by card"
        assert button["url"] == stripe_api.sessions[order.checkout_ref or ""]["url"]
        session = stripe_api.sessions[order.checkout_ref or ""]
        [sent] = [r.params for r in stripe_api.requests if r.path == "/v1/checkout/sessions"]
        items = sent["line_items"]
        assert sum(int(i["price_data"]["unit_amount"]) * int(i["quantity"]) for i in items) == 6230
        body = stripe_api.payment_event(order.checkout_ref or "", event_id="evt_paid_701")

        forged = await http.post(webhook, data=body, headers={"Stripe-Signature": sign(body, "whsec_wrong")})
        assert forged.status == 400
        await asyncio.sleep(0.5)
        assert (await runtime.stores.orders.get("forge", order.id)).state == "pending"  # type: ignore[union-attr]
        assert receipts(bot_api, 701) == []

        for _ in range(5):
            answer = await http.post(webhook, data=body, headers={"Stripe-Signature": sign(body, WEBHOOK_SECRET)})
            assert answer.status == 200 and (await answer.json())["used"] is True
        await wait_until(lambda: receipts(bot_api, 701), 20, "the receipt")
        await wait_until(lambda: w.worker.counts.get("done", 0) >= 3, 20, "the payment turn")
        await asyncio.sleep(0.5)
        assert len(receipts(bot_api, 701)) == 1 and "€62.30" in receipts(bot_api, 701)[0]
        assert (await w.state.carts.get("forge", "701")).is_empty
    [paid] = await runtime.stores.orders.list("forge")  # type: ignore[union-attr]
    assert (paid.state, paid.paid_minor, paid.total_minor) == ("paid", 6230, 6230)
    assert paid.provider_payment_id == session["payment_intent"]


async def test_usdc_a_matching_transfer_confirms_and_an_underpayment_does_not(
    redis_url: str, bot_api: BotApiDouble
) -> None:
    shop_wallet = new_key()
    with SolanaRpcStandin() as node:
        settings = Settings(business_id="forge-usd", payments="usdc",
                            payment_env={"USDC_RECIPIENT": shop_wallet, "SOLANA_RPC_URL": node.url})
        runtime = await asyncio.to_thread(build, settings)
        await runtime.import_catalog(tools_shop("forge-usd", "USD"))
        await runtime.start()
        async with running_worker(runtime, redis_url, bot_api, usdc_poll=0.2) as w:
            for user, first in ((801, 1), (802, 10)):
                await w.queue.push(message(first, user, "add a claw hammer and a tape measure"))
                await wait_until(lambda u=user: texts(bot_api, u), 20, "the add reply")
                await w.queue.push(callback(first + 1, user, "p", f"cb-{user}"))
                await wait_until(lambda u=user: [t for t in texts(bot_api, u) if "solana:" in t["text"]], 20,
                                 "the transfer request")
            request = next(t["text"] for t in texts(bot_api, 801) if "solana:" in t["text"])
            url = html.unescape(request[request.index("solana:"):].split()[0])  # the message is HTML
            query = parse_qs(urlsplit(url).query)
            assert url.startswith(f"solana:{shop_wallet}?") and query["amount"] == ["37.35"]
            assert query["spl-token"] == [USDC_MINT]
            orders = {o.thread_id: o for o in await runtime.stores.orders.list("forge-usd")}  # type: ignore[union-attr]
            assert query["reference"] == [orders["801"].checkout_ref]
            [qr] = [c for c in bot_api.delivered("sendPhoto") if str(c.params.get("chat_id")) == "801"]
            assert qr.params["photo"] == "<file pay.png>"  # the QR code, uploaded as a file
            shopper = new_key()
            node.pay(orders["801"].checkout_ref or "", Transfer(payer=shopper, to=shop_wallet, mint=USDC_MINT,
                                                                amount=37_350_000))
            node.pay(orders["802"].checkout_ref or "", Transfer(payer=shopper, to=shop_wallet, mint=USDC_MINT,
                                                                amount=37_000_000))
            await wait_until(lambda: receipts(bot_api, 801), 20, "the USDC receipt")
            await wait_until(lambda: _flagged(runtime, "802"), 20, "the underpayment flagged")
            assert (await w.state.carts.get("forge-usd", "801")).is_empty
            assert not (await w.state.carts.get("forge-usd", "802")).is_empty
        assert receipts(bot_api, 802) == []
    paid = await runtime.stores.orders.get("forge-usd", orders["801"].id)  # type: ignore[union-attr]
    short = await runtime.stores.orders.get("forge-usd", orders["802"].id)  # type: ignore[union-attr]
    assert paid is not None and (paid.state, paid.paid_minor) == ("paid", 3735)
    assert short is not None and short.state == "pending" and "underpaid: 37.00 of 37.35" in short.extra["problem"]
    assert Decimal(query["amount"][0]) * 100 == paid.total_minor
    assert bot_api.violations == []


async def _flagged(runtime: Any, thread: str) -> bool:
    [order] = await runtime.stores.orders.list("forge-usd", thread_id=thread)
    return "payment_problem" in order.flags
