"""The payments agent: order summary and checkout, amounts from the cart and catalog only.

Paying always needs an explicit step by the shopper (the checkout button, then the
channel's invoice); the model never decides to charge. Until a payment provider is
configured it says so plainly and keeps the summary.
"""

from __future__ import annotations

import hashlib

from chatpay.core.agents import CHECKOUT, VIEW_CART, AgentContext
from chatpay.core.agents.cart import cart_text, cart_view
from chatpay.core.buttons import decode
from chatpay.core.turns import CartView, InvoiceRequest, Reply


def order_payload(business_id: str, thread_id: str, cart_version: int, subtotal_minor: int) -> str:
    """An opaque invoice payload (<= 128 bytes) that ties a payment to one cart state."""
    digest = hashlib.sha256(f"{business_id}|{thread_id}|{cart_version}|{subtotal_minor}".encode()).hexdigest()
    return f"cp1:{cart_version}:{digest[:32]}"


async def payments_agent(ctx: AgentContext) -> Reply:
    catalog = ctx.catalog
    assert catalog is not None
    view = cart_view(ctx.cart, catalog)
    turn = ctx.turn
    payload = order_payload(turn.business_id, turn.thread_id, ctx.cart.version, view.subtotal.minor)
    if turn.payment is not None:
        return _payment_update(ctx, payload, view.subtotal.minor, view.subtotal.currency)
    if not view.lines:
        return Reply("Your cart is empty, so there is nothing to check out yet. Ask me what we sell!",
                     cart=view, quick_replies=("What do you sell?",))
    summary = "Order summary:\n" + cart_text(view).removeprefix("Your cart:\n")
    provider = ctx.engine.payments
    action = decode(turn.callback_data)
    pressed_checkout = action is not None and action.kind == "pay"
    ctx.emit("CheckoutStarted", subtotal_minor=view.subtotal.minor, currency=view.subtotal.currency,
             items=view.item_count, provider=getattr(provider, "name", None))
    if provider is None or not provider.configured:
        ctx.emit("PaymentAttempted", outcome="no_provider", subtotal_minor=view.subtotal.minor)
        return Reply(
            summary + "\n\nPayments aren't set up for this shop yet, so I can't take payment here. "
            "Your cart is saved; the shop will be able to take your order soon.",
            buttons=((VIEW_CART,),), cart=view,
        )
    sandbox = bool(getattr(provider, "sandbox", False))
    test_note = "\n\n🧪 This shop runs in test mode: no money moves." if sandbox else ""
    if not pressed_checkout:
        return Reply(summary + "\n\nPress **Checkout** to pay." + test_note, buttons=((CHECKOUT, VIEW_CART),),
                     cart=view)
    prices = tuple(
        (f"{ln.quantity} × {ln.title}"[:32], ln.total.minor) for ln in view.lines
    )
    request = await provider.invoice(
        InvoiceRequest(
            title=(catalog.store_name or "Your order")[:32],
            description=f"{view.item_count} item(s) from {catalog.store_name or 'our shop'}"[:255],
            payload=payload,
            currency=view.subtotal.currency,
            prices=prices,
        )
    )
    if sandbox:
        return await _complete_in_sandbox(ctx, payload, view)
    ctx.emit("PaymentAttempted", outcome="invoice_sent", payload=payload, subtotal_minor=view.subtotal.minor)
    return Reply(summary, invoice=request, cart=view)


async def _complete_in_sandbox(ctx: AgentContext, payload: str, view: CartView) -> Reply:
    """The sandbox's payment: the order is confirmed for the cart's own total, and the cart emptied."""
    order = f"T-{payload.rsplit(':', 1)[-1][:8].upper()}"
    lines = [{"handle": ln.handle, "variant": ln.variant, "quantity": ln.quantity, "unit_minor": ln.unit_price.minor}
             for ln in view.lines]
    ctx.emit("OrderPaid", order=order, provider="sandbox", payload=payload, total_minor=view.subtotal.minor,
             currency=view.subtotal.currency, lines=lines)
    ctx.cart = await ctx.stores.carts.save(ctx.cart.clear())
    receipt = "\n".join(f"• {ln.quantity} × **{ln.title}**{f' ({ln.variant})' if ln.variant else ''} — {ln.total.format()}"
                        for ln in view.lines)
    return Reply(
        f"✅ Test order **{order}** confirmed (sandbox: no money moved).\n{receipt}\n"
        f"Total: **{view.subtotal.format()}**",
        cart=cart_view(ctx.cart, ctx.catalog) if ctx.catalog else None,
    )


def _payment_update(ctx: AgentContext, payload: str, subtotal_minor: int, currency: str) -> Reply:
    event = ctx.turn.payment
    assert event is not None
    matches = event.payload == payload and event.total_minor == subtotal_minor and event.currency == currency
    if event.kind == "pre_checkout":
        ctx.emit("PaymentPrechecked", ok=matches, payload=event.payload, total_minor=event.total_minor)
        if matches:
            return Reply("", data={"pre_checkout_ok": True})
        return Reply("", data={"pre_checkout_ok": False,
                               "error": "Your cart changed since this invoice was made; please check out again."})
    ctx.emit("PaymentSucceeded", ok=matches, payload=event.payload, total_minor=event.total_minor,
             charge_id=event.provider_charge_id)
    if not matches:  # a payment for another cart, total or currency confirms nothing
        return Reply("We received a payment that doesn't match your cart. The shop will check it and contact "
                     "you; your cart is unchanged.")
    return Reply("Thank you! Your payment was received and your order is confirmed.")
