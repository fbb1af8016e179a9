"""The payments agent: checkout, payment updates, and the shopper's questions about orders.

Paying always needs an explicit step by the shopper (the Checkout button, then the provider's
invoice or link); the model never decides to charge. Pressing Checkout freezes the cart into a
``pending`` order (:func:`chatpay.core.checkout.order_from_cart`) whose id is the invoice
payload, so every later payment update names the order it pays. Telegram's pre-checkout query
is answered from :func:`~chatpay.core.checkout.precheck`; a successful payment, a verified
Stripe event or a USDC transfer is recorded by :func:`~chatpay.core.checkout.settle`, which
pays an order once however often the payment is delivered.
"""

from __future__ import annotations

from dataclasses import replace

from chatpay.core.agents import AgentContext, checkout_button, view_cart_button
from chatpay.core.agents.cart import cart_text, cart_view
from chatpay.core.buttons import Action, decode, encode
from chatpay.core.checkout import Settlement, cart_after, order_from_cart, precheck, settle
from chatpay.core.errors import ConfigError, MoneyError, PaymentError
from chatpay.core.money import Money
from chatpay.core.negation import asks_about_orders
from chatpay.core.orders import REFUND_NEEDED, ConfirmedPayment, Order
from chatpay.core.ports import OrderStore
from chatpay.core.replies import count as count_of
from chatpay.core.replies import say
from chatpay.core.routing import command_of
from chatpay.core.turns import Button, PaymentEvent, Reply

ORDERS_SHOWN = 5
STATES = frozenset({"pending", "paid", "fulfilled", "refunded", "cancelled", "expired"})


def my_orders_button() -> Button:
    return Button(say("button.my_orders"), encode(Action("orders")))


def state_words(state: str) -> str:
    """An order's state as the shopper reads it."""
    return say(f"orders.state.{state}") if state in STATES else state


def _orders(ctx: AgentContext) -> OrderStore:
    if ctx.stores.orders is None:
        raise ConfigError("orders", "this runtime's stores have no order store")
    return ctx.stores.orders


async def payments_agent(ctx: AgentContext) -> Reply:
    turn = ctx.turn
    if turn.payment is not None:
        return await _payment_update(ctx, turn.payment)
    command = command_of(turn.text)
    if command == "/paysupport":
        return Reply(_policy_text(ctx, ("payment", "support", "contact"), "orders.paysupport"),
                     buttons=((my_orders_button(),),))
    if command == "/terms":
        return Reply(_policy_text(ctx, ("terms", "conditions", "returns", "refund"), "orders.terms"))
    action = decode(turn.callback_data)
    if command == "/orders" or (action is not None and action.kind == "orders") or (
            action is None and asks_about_orders(turn.text)):
        return await _orders_reply(ctx)
    catalog = ctx.catalog
    assert catalog is not None
    view = cart_view(ctx.cart, catalog)
    if not view.lines:
        return Reply(say("pay.empty"), cart=view, quick_replies=(say("quick.what_do_you_sell"),))
    summary = say("pay.summary") + "\n" + cart_text(view).removeprefix(say("cart.heading") + "\n")
    provider = ctx.engine.payments
    pressed_checkout = action is not None and action.kind == "pay"
    ctx.emit("CheckoutStarted", subtotal_minor=view.subtotal.minor, currency=view.subtotal.currency,
             items=view.item_count, provider=getattr(provider, "name", None))
    if provider is None:
        ctx.emit("PaymentAttempted", outcome="no_provider", subtotal_minor=view.subtotal.minor)
        return Reply(
            summary + "\n\n" + say("pay.not_set_up"), buttons=((view_cart_button(),),), cart=view,
        )
    test_note = "\n\n" + say("pay.test_mode") if provider.sandbox else ""
    if not pressed_checkout:
        return Reply(summary + "\n\n" + say("pay.press_checkout") + test_note,
                     buttons=((checkout_button(), view_cart_button()),), cart=view)
    order = order_from_cart(ctx.cart, catalog, provider=provider.name, at=ctx.clock.now(), chat_id=turn.chat_id)
    order = await _orders(ctx).create(order)
    try:
        start = await provider.start(order, shop_name=catalog.store_name or "our shop")
    except PaymentError as exc:
        ctx.emit("PaymentAttempted", outcome="refused", order=order.id, error=str(exc))
        await _orders(ctx).update(order.to("cancelled", ctx.clock.now(), f"the provider refused: {exc}"), "pending")
        ctx.emit("OrderCancelled", order=order.id, reason=str(exc))
        return Reply(f"{summary}\n\n{say('pay.could_not_start', error=exc)}",
                     buttons=((view_cart_button(),),), cart=view)
    if start.checkout_ref and start.checkout_ref != order.checkout_ref:
        order = await _orders(ctx).update(replace(order, checkout_ref=start.checkout_ref), "pending")
    ctx.emit("OrderCreated", order=order.id, total_minor=order.total_minor, currency=order.currency,
             provider=order.provider)
    if start.completes:  # the sandbox: paid at once, for the order's own total
        payment = ConfirmedPayment(provider.name, order.id, f"sandbox-{order.id}", order.currency, order.total_minor)
        return await _settled(ctx, payment)
    ctx.emit("PaymentAttempted", outcome="checkout_sent", order=order.id, total_minor=order.total_minor)
    if start.invoice is not None:
        return Reply(f"{summary}\n\n{say('pay.invoice', number=order.number)}", invoice=start.invoice,
                     cart=view)
    text = f"{summary}\n\n{say('pay.order', number=order.number)} {start.text}".strip()
    if start.url and start.url.startswith(("https://", "http://")):
        return Reply(text, buttons=((Button(start.label or say("button.pay"), url=start.url),),), cart=view)
    # Telegram's link buttons open web and tg:// links only; a wallet link (solana:) goes in the text,
    # with its QR code for a wallet on another device.
    return Reply(f"{text}\n\n{start.label}: {start.url}" if start.url else text, cart=view,
                 image_png=start.image_png)


async def _payment_update(ctx: AgentContext, event: PaymentEvent) -> Reply:
    orders = _orders(ctx)
    if event.kind == "pre_checkout":
        order = await orders.get(ctx.turn.business_id, event.payload)
        assert ctx.catalog is not None
        problem = precheck(order, currency=event.currency, total_minor=event.total_minor, cart=ctx.cart,
                           catalog=ctx.catalog)
        ctx.emit("PaymentPrechecked", ok=problem is None, order=event.payload, total_minor=event.total_minor,
                 error=problem)
        return Reply("", data={"pre_checkout_ok": problem is None, **({"error": problem} if problem else {})})
    provider = event.provider or (ctx.engine.payments.name if ctx.engine.payments is not None else "telegram")
    payment = ConfirmedPayment(provider, event.payload, event.provider_charge_id or "", event.currency,
                               event.total_minor, payer=ctx.turn.thread_id)
    if not payment.payment_id:
        ctx.emit("PaymentUnmatched", order=event.payload, reason="no payment id")
        return Reply(say("pay.no_id"))
    return await _settled(ctx, payment)


async def _settled(ctx: AgentContext, payment: ConfirmedPayment) -> Reply:
    result: Settlement = await settle(_orders(ctx), payment, business_id=ctx.turn.business_id,
                                      catalog=ctx.catalog, at=ctx.clock.now())
    order = result.order
    money = _amount(payment)
    if result.outcome == "duplicate":
        ctx.emit("PaymentRepeated", order=order.id if order else payment.order_id, payment_id=payment.payment_id)
        return Reply("")  # already recorded and receipted: nothing new to say
    if result.outcome == "unknown_order" or order is None:
        ctx.emit("PaymentUnmatched", order=payment.order_id, payment_id=payment.payment_id,
                 total_minor=payment.total_minor, currency=payment.currency, provider=payment.provider)
        return Reply(say("pay.unknown_order", money=money))
    if result.outcome == "mismatch":
        ctx.emit("PaymentMismatch", order=order.id, payment_id=payment.payment_id, paid_minor=payment.total_minor,
                 total_minor=order.total_minor, currency=payment.currency)
        return Reply(say("pay.wrong_amount", money=money, number=order.number, total=order.total.format()))
    if result.outcome == "second_payment":
        ctx.emit("PaymentDuplicateCharge", order=order.id, payment_id=payment.payment_id)
        return Reply(say("pay.paid_twice", number=order.number, money=money))
    ctx.emit("OrderPaid", order=order.id, provider=order.provider, payment_id=payment.payment_id,
             total_minor=order.total_minor, currency=order.currency,
             lines=[{"handle": ln.handle, "variant": ln.variant_id, "quantity": ln.quantity,
                     "unit_minor": ln.unit_minor} for ln in order.lines])
    if ctx.cart.lines:
        ctx.cart = await ctx.stores.carts.save(cart_after(ctx.cart, order))
    if REFUND_NEEDED in order.flags:
        ctx.emit("OrderNeedsRefund", order=order.id, problems=list(result.problems))
    return Reply(receipt(order, sandbox=bool(ctx.engine.payments and ctx.engine.payments.sandbox)
                         and order.provider == "sandbox", problems=result.problems),
                 buttons=((my_orders_button(),),), cart=cart_view(ctx.cart, ctx.catalog) if ctx.catalog else None)


def _amount(payment: ConfirmedPayment) -> str:
    """The paid amount as the shopper reads it; a currency code that is no ISO code is shown raw."""
    try:
        return Money(payment.total_minor, payment.currency).format()
    except MoneyError:
        return f"{payment.total_minor} {payment.currency}"


def receipt(order: Order, *, sandbox: bool = False, problems: tuple[str, ...] = ()) -> str:
    """The receipt: order number, lines, total, and what happens next."""
    lines = "\n".join(f"• {ln.quantity} × **{ln.title}**{f' ({ln.variant})' if ln.variant else ''} — "
                      f"{Money(ln.total_minor, order.currency).format()}" for ln in order.lines)
    head = say("pay.test_confirmed" if sandbox else "pay.confirmed", number=order.number)
    text = f"{head}\n{lines}\n{say('pay.total', amount=order.total.format())}"
    if problems:
        text += "\n\n" + say("pay.problems", problems="; ".join(problems))
    return text


async def _orders_reply(ctx: AgentContext) -> Reply:
    mine = await _orders(ctx).list(ctx.turn.business_id, thread_id=ctx.turn.thread_id, limit=ORDERS_SHOWN + 1)
    if not mine:
        if ctx.catalog is not None and ctx.cart.lines:
            view = cart_view(ctx.cart, ctx.catalog)
            return Reply(say("orders.none_paid") + " " + cart_text(view) + "\n\n" + say("pay.press_checkout"),
                         buttons=((checkout_button(), view_cart_button()),), cart=view)
        return Reply(say("orders.none"), quick_replies=(say("quick.what_do_you_sell"),))
    latest = mine[0]
    when = latest.created_at.strftime("%d %b")
    head = say("orders.latest", number=latest.number, when=when, total=latest.total.format(),
               state=state_words(latest.state))
    if REFUND_NEEDED in latest.flags:
        head += " " + say("orders.partly_refunded")
    rows = [f"• **{o.number}** — {o.created_at.strftime('%d %b')} — {count_of(o.item_count, 'item')} — "
            f"{o.total.format()} — {state_words(o.state)}" for o in mine[:ORDERS_SHOWN]]
    more = "\n" + say("orders.older") if len(mine) > ORDERS_SHOWN else ""
    return Reply(f"{head}\n\n{say('orders.heading')}\n" + "\n".join(rows) + more)


def _policy_text(ctx: AgentContext, words: tuple[str, ...], fallback: str) -> str:
    """The store's own policy on the subject when its profile has one, else the message ``fallback``."""
    if ctx.catalog is not None:
        for policy in ctx.catalog.policies:
            title = f"{policy.id} {policy.title}".lower()
            if any(w in title for w in words):
                return f"**{policy.title}**\n{policy.text}"
    name = (ctx.catalog.store_name if ctx.catalog else "") or "the shop"
    return say(fallback, shop=name)
