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

from chatpay.core.agents import CHECKOUT, VIEW_CART, AgentContext
from chatpay.core.agents.cart import cart_text, cart_view
from chatpay.core.buttons import Action, decode, encode
from chatpay.core.checkout import Settlement, cart_after, order_from_cart, precheck, settle
from chatpay.core.errors import ConfigError, MoneyError, PaymentError
from chatpay.core.money import Money
from chatpay.core.negation import asks_about_orders
from chatpay.core.orders import REFUND_NEEDED, ConfirmedPayment, Order
from chatpay.core.ports import OrderStore
from chatpay.core.routing import command_of
from chatpay.core.turns import Button, PaymentEvent, Reply

MY_ORDERS = Button("📦 My orders", encode(Action("orders")))
ORDERS_SHOWN = 5

STATE_WORDS = {"pending": "waiting for payment", "paid": "paid", "fulfilled": "sent", "refunded": "refunded",
               "cancelled": "cancelled", "expired": "expired unpaid"}


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
        return Reply(_policy_text(ctx, ("payment", "support", "contact"), _PAYSUPPORT), buttons=((MY_ORDERS,),))
    if command == "/terms":
        return Reply(_policy_text(ctx, ("terms", "conditions", "returns", "refund"), _TERMS))
    action = decode(turn.callback_data)
    if command == "/orders" or (action is not None and action.kind == "orders") or (
            action is None and asks_about_orders(turn.text)):
        return await _orders_reply(ctx)
    catalog = ctx.catalog
    assert catalog is not None
    view = cart_view(ctx.cart, catalog)
    if not view.lines:
        return Reply("Your cart is empty, so there is nothing to check out yet. Ask me what we sell!",
                     cart=view, quick_replies=("What do you sell?",))
    summary = "Order summary:\n" + cart_text(view).removeprefix("Your cart:\n")
    provider = ctx.engine.payments
    pressed_checkout = action is not None and action.kind == "pay"
    ctx.emit("CheckoutStarted", subtotal_minor=view.subtotal.minor, currency=view.subtotal.currency,
             items=view.item_count, provider=getattr(provider, "name", None))
    if provider is None:
        ctx.emit("PaymentAttempted", outcome="no_provider", subtotal_minor=view.subtotal.minor)
        return Reply(
            summary + "\n\nPayments aren't set up for this shop yet, so I can't take payment here. "
            "Your cart is saved; the shop will be able to take your order soon.",
            buttons=((VIEW_CART,),), cart=view,
        )
    test_note = "\n\n🧪 This shop runs in test mode: no money moves." if provider.sandbox else ""
    if not pressed_checkout:
        return Reply(summary + "\n\nPress **Checkout** to pay." + test_note, buttons=((CHECKOUT, VIEW_CART),),
                     cart=view)
    order = order_from_cart(ctx.cart, catalog, provider=provider.name, at=ctx.clock.now(), chat_id=turn.chat_id)
    order = await _orders(ctx).create(order)
    try:
        start = await provider.start(order, shop_name=catalog.store_name or "our shop")
    except PaymentError as exc:
        ctx.emit("PaymentAttempted", outcome="refused", order=order.id, error=str(exc))
        await _orders(ctx).update(order.to("cancelled", ctx.clock.now(), f"the provider refused: {exc}"), "pending")
        ctx.emit("OrderCancelled", order=order.id, reason=str(exc))
        return Reply(f"{summary}\n\nSorry, I couldn't start the payment: {exc}. Your cart is unchanged.",
                     buttons=((VIEW_CART,),), cart=view)
    if start.checkout_ref and start.checkout_ref != order.checkout_ref:
        order = await _orders(ctx).update(replace(order, checkout_ref=start.checkout_ref), "pending")
    ctx.emit("OrderCreated", order=order.id, total_minor=order.total_minor, currency=order.currency,
             provider=order.provider)
    if start.completes:  # the sandbox: paid at once, for the order's own total
        payment = ConfirmedPayment(provider.name, order.id, f"sandbox-{order.id}", order.currency, order.total_minor)
        return await _settled(ctx, payment)
    ctx.emit("PaymentAttempted", outcome="checkout_sent", order=order.id, total_minor=order.total_minor)
    if start.invoice is not None:
        return Reply(f"{summary}\n\nOrder **{order.number}**: pay with the invoice below.", invoice=start.invoice,
                     cart=view)
    text = f"{summary}\n\nOrder **{order.number}**. {start.text}".strip()
    if start.url and start.url.startswith(("https://", "http://")):
        return Reply(text, buttons=((Button(start.label or "Pay", url=start.url),),), cart=view)
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
        return Reply("We received a payment update without a payment id. The shop will check it and contact you.")
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
        return Reply(f"We received a payment of {money} that doesn't match any order of yours. The shop will "
                     "check it and contact you; your cart is unchanged.")
    if result.outcome == "mismatch":
        ctx.emit("PaymentMismatch", order=order.id, payment_id=payment.payment_id, paid_minor=payment.total_minor,
                 total_minor=order.total_minor, currency=payment.currency)
        return Reply(f"We received {money} for order **{order.number}**, which comes to {order.total.format()}; "
                     "that doesn't match, so the order is not confirmed. The shop will check it and contact you; "
                     "your cart is unchanged.")
    if result.outcome == "second_payment":
        ctx.emit("PaymentDuplicateCharge", order=order.id, payment_id=payment.payment_id)
        return Reply(f"Order **{order.number}** was already paid, so this second payment of {money} will be "
                     "refunded by the shop.")
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
                 buttons=((MY_ORDERS,),), cart=cart_view(ctx.cart, ctx.catalog) if ctx.catalog else None)


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
    head = (f"✅ Test order **{order.number}** confirmed (sandbox: no money moved)." if sandbox
            else f"✅ Payment received. Order **{order.number}** is confirmed.")
    text = f"{head}\n{lines}\nTotal: **{order.total.format()}**"
    if problems:
        text += ("\n\n⚠️ Sorry: " + "; ".join(problems) + ". The shop will refund what it cannot send and "
                 "contact you.")
    return text


async def _orders_reply(ctx: AgentContext) -> Reply:
    mine = await _orders(ctx).list(ctx.turn.business_id, thread_id=ctx.turn.thread_id, limit=ORDERS_SHOWN + 1)
    if not mine:
        if ctx.catalog is not None and ctx.cart.lines:
            view = cart_view(ctx.cart, ctx.catalog)
            return Reply("You haven't paid for an order yet. " + cart_text(view)
                         + "\n\nPress **Checkout** to pay.", buttons=((CHECKOUT, VIEW_CART),), cart=view)
        return Reply("You have no orders with us yet. When you check out, your orders appear here.",
                     quick_replies=("What do you sell?",))
    latest = mine[0]
    when = latest.created_at.strftime("%d %b")
    head = (f"Your latest order **{latest.number}** ({when}, {latest.total.format()}) is "
            f"**{STATE_WORDS.get(latest.state, latest.state)}**.")
    if REFUND_NEEDED in latest.flags:
        head += " The shop will refund part of it and contact you."
    rows = [f"• **{o.number}** — {o.created_at.strftime('%d %b')} — {o.item_count} item"
            f"{'s' if o.item_count != 1 else ''} — {o.total.format()} — {STATE_WORDS.get(o.state, o.state)}"
            for o in mine[:ORDERS_SHOWN]]
    more = "\n…and older ones." if len(mine) > ORDERS_SHOWN else ""
    return Reply(f"{head}\n\nYour orders:\n" + "\n".join(rows) + more)


def _policy_text(ctx: AgentContext, words: tuple[str, ...], fallback: str) -> str:
    """The store's own policy on the subject when its profile has one, else the default text."""
    if ctx.catalog is not None:
        for policy in ctx.catalog.policies:
            title = f"{policy.id} {policy.title}".lower()
            if any(w in title for w in words):
                return f"**{policy.title}**\n{policy.text}"
    name = (ctx.catalog.store_name if ctx.catalog else "") or "the shop"
    return fallback.format(shop=name)


_PAYSUPPORT = ("For help with a payment, write to us here with your order number (see /orders) and what went "
               "wrong. {shop} answers payment questions within one working day, and refunds go back to the "
               "way you paid.")
_TERMS = ("By paying you buy the items in your order from {shop} at the prices shown in the invoice. Prices come "
          "from the shop's catalog; an order whose items sold out before payment is refunded. Ask here about "
          "delivery and returns, or use /paysupport for help with a payment.")
