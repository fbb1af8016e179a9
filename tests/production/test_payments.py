"""Telegram Payments end to end: the worker, a real redis-server and the HTTP Bot API double.

The shopper's cart lives in Redis (the worker's shared state); orders live in the runtime's
system of record (mongomock through the real MongoDB adapter).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from chatpay.adapters.memory import ScriptedChatModel
from chatpay.bootstrap import build
from chatpay.config import Settings
from chatpay.core.catalog import Catalog, Product, Variant
from chatpay.core.checkout import refund
from chatpay.core.money import Money
from tests.production.conftest import running_worker, started
from tests.production.helpers import TOKEN, callback, message, pre_checkout, wait_until
from tests.support.botapi import BotApiDouble

pytestmark = pytest.mark.timeout(180)

PROVIDER_TOKEN = "284685063:TEST:provider-token"
ADD = "add 2 Kenyan AA Nyeri"


def paid(update_id: int, user: int, payload: str, total: int, currency: str = "EUR", charge: str = "tg-charge-1",
         provider_charge: str = "") -> str:
    return json.dumps({"update_id": update_id, "message": {
        "message_id": update_id, "date": 1_760_000_000, "chat": {"id": user, "type": "private"},
        "from": {"id": user, "is_bot": False, "first_name": f"User {user}"},
        "successful_payment": {"currency": currency, "total_amount": total, "invoice_payload": payload,
                               "telegram_payment_charge_id": charge,
                               "provider_payment_charge_id": provider_charge}}})


def to_chat(bot_api: BotApiDouble, method: str, chat: int) -> list[dict[str, Any]]:
    return [dict(c.params) for c in bot_api.delivered(method) if str(c.params.get("chat_id")) == str(chat)]


async def checkout(w: Any, bot_api: BotApiDouble, user: int, first_update: int) -> dict[str, Any]:
    """Add to the cart, press Checkout, and return the invoice Telegram was asked to send."""
    await w.queue.push(message(first_update, user, ADD))
    await wait_until(lambda: to_chat(bot_api, "sendMessage", user), 20, "the add reply")
    await w.queue.push(callback(first_update + 1, user, "p", f"cb-{user}"))
    [invoice] = await wait_until(lambda: to_chat(bot_api, "sendInvoice", user), 20, "the invoice")
    return invoice


async def test_an_invoice_is_paid_once_however_often_telegram_delivers_the_payment(
    redis_url: str, bot_api: BotApiDouble
) -> None:
    model = ScriptedChatModel(["Lovely weather for coffee!"] * 400, delay=2.0)
    settings = Settings(business_id="demo", payments="telegram", telegram_provider_token=PROVIDER_TOKEN)
    runtime = await asyncio.to_thread(started, build(settings, llm=model))
    catalog = await runtime.stores.catalogs.get("demo")
    assert catalog is not None
    unit = catalog.get("kenyan-aa-nyeri").variants[0].price.minor  # type: ignore[union-attr]
    async with running_worker(runtime, redis_url, bot_api, concurrency=2) as w:
        invoice = await checkout(w, bot_api, 601, 1)
        assert invoice["provider_token"] == PROVIDER_TOKEN and invoice["currency"] == "EUR"
        total = sum(p["amount"] for p in invoice["prices"])
        assert total == 2 * unit
        [order] = await runtime.stores.orders.list("demo")  # type: ignore[union-attr]
        assert order.id == invoice["payload"] and order.state == "pending" and order.total_minor == total

        # 200 slow model turns wait in the queue; the pre-checkout is answered within a second.
        for i in range(200):
            await w.queue.push(message(1000 + i, 7000 + i, "hello there, how are you today?"))
        await wait_until(lambda: model.requests, 10, "a slow model call")
        pushed = time.time()
        await w.queue.push(pre_checkout(3, 601, "pcq-601", payload=invoice["payload"]).replace(
            '"total_amount": 1390', f'"total_amount": {total}'))
        answer = await wait_until(lambda: bot_api.delivered("answerPreCheckoutQuery"), 5, "the pre-checkout answer")
        assert answer[0].at - pushed < 1.0
        assert answer[0].params["ok"] in (True, "true"), answer[0].params
        model.delay = 0.0  # the model speeds up, so the queued small talk drains before the payments below

        for update_id in (4, 5, 6):  # Telegram delivers the same payment three times
            await w.queue.push(paid(update_id, 601, invoice["payload"], total))
        receipt = await wait_until(lambda: [t for t in to_chat(bot_api, "sendMessage", 601)
                                            if "Payment received" in t["text"]], 60, "the receipt")
        await wait_until(lambda: w.worker.counts.get("done", 0) >= 206, 60, "every turn")
        await asyncio.sleep(0.3)
        receipts = [t for t in to_chat(bot_api, "sendMessage", 601) if "Payment received" in t["text"]]
        assert len(receipts) == 1 and Money(total, "EUR").format() in receipt[0]["text"]
        assert (await w.state.carts.get("demo", "601")).is_empty
        [order] = await runtime.stores.orders.list("demo")  # type: ignore[union-attr]
        assert (order.state, order.provider_payment_id, order.paid_minor) == ("paid", "tg-charge-1", total)
        assert bot_api.violations == []


async def test_a_price_changed_between_invoice_and_pre_checkout_is_refused_with_a_clear_message(
    redis_url: str, bot_api: BotApiDouble
) -> None:
    settings = Settings(business_id="demo", payments="telegram", telegram_provider_token=PROVIDER_TOKEN)
    runtime = await asyncio.to_thread(started, build(settings))
    async with running_worker(runtime, redis_url, bot_api) as w:
        invoice = await checkout(w, bot_api, 602, 1)
        total = sum(p["amount"] for p in invoice["prices"])
        catalog = await runtime.stores.catalogs.get("demo")
        assert catalog is not None
        kenyan = catalog.get("kenyan-aa-nyeri")
        assert kenyan is not None
        dearer = Product(kenyan.handle, kenyan.name, kenyan.description,
                         tuple(Variant(v.id, v.title, v.price + Money(100, "EUR"), v.sku, v.available, v.options)
                               for v in kenyan.variants), kenyan.product_type, kenyan.tags, kenyan.images)
        await runtime.import_catalog(Catalog(catalog.business_id, catalog.currency,
                                             {**catalog.products, kenyan.handle: dearer}, catalog.policies,
                                             catalog.store_name))
        await w.queue.push(pre_checkout(3, 602, "pcq-602", payload=invoice["payload"]).replace(
            '"total_amount": 1390', f'"total_amount": {total}'))
        [answer] = await wait_until(lambda: bot_api.delivered("answerPreCheckoutQuery"), 10, "the answer")
    assert answer.params["ok"] in (False, "false")
    assert "price of Kenyan AA Nyeri" in answer.params["error_message"] and "changed" in answer.params["error_message"]


def stars_shop() -> Catalog:
    sticker = Product("sticker-pack", "Animated Sticker Pack", "Twelve animated stickers.",
                      (Variant("sp", "Default Title", Money(50, "XTR")),), "Digital")
    return Catalog.of("stars", "XTR", [sticker], store_name="Sticker Loft")


async def test_a_stars_payment_refunded_is_recorded_on_the_order(redis_url: str, bot_api: BotApiDouble) -> None:
    settings = Settings(business_id="stars", payments="stars", telegram_bot_token=TOKEN,
                        telegram_api_base_url=bot_api.base_url)
    runtime = await asyncio.to_thread(build, settings)
    await runtime.import_catalog(stars_shop())
    await runtime.start()
    async with running_worker(runtime, redis_url, bot_api) as w:
        await w.queue.push(message(1, 603, "add 2 animated sticker packs"))
        await wait_until(lambda: to_chat(bot_api, "sendMessage", 603), 20, "the add reply")
        await w.queue.push(callback(2, 603, "p", "cb-603"))
        [invoice] = await wait_until(lambda: to_chat(bot_api, "sendInvoice", 603), 20, "the invoice")
        assert invoice["currency"] == "XTR" and not invoice.get("provider_token")
        assert [p["amount"] for p in invoice["prices"]] == [100]
        await w.queue.push(paid(3, 603, invoice["payload"], 100, currency="XTR", charge="stxCHARGE1"))
        await wait_until(lambda: [t for t in to_chat(bot_api, "sendMessage", 603) if "Payment received" in t["text"]],
                         20, "the receipt")
    [order] = await runtime.stores.orders.list("stars")  # type: ignore[union-attr]
    assert runtime.engine.payments is not None
    done, note = await refund(runtime.stores.orders, runtime.engine.payments, order,  # type: ignore[arg-type]
                              runtime.clock.now())
    [call] = bot_api.delivered("refundStarPayment")
    assert str(call.params["user_id"]) == "603" and call.params["telegram_payment_charge_id"] == "stxCHARGE1"
    stored = await runtime.stores.orders.get("stars", order.id)  # type: ignore[union-attr]
    assert stored is not None and stored.state == "refunded" and done.state == "refunded"
    assert stored.history[-1].reason == note and "100" in note
    assert bot_api.violations == []
