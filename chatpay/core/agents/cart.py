"""The cart agents: add, remove, view and clear, deterministic and atomic.

Words are read by :class:`CartParser`; a phrase it cannot tie to a product goes to
retrieval, then (LLM engine only) to the model, which may only pick one of the
retrieved catalog products and a small quantity. Prices always come from the catalog.
"""

from __future__ import annotations

import logging
from typing import Any

from chatpay.core.agents import (
    VIEW_CART_DATA,
    AgentContext,
    add_button,
    checkout_button,
    clear_cart_button,
    product_key,
    view_cart_button,
)
from chatpay.core.agents.finding import alternatives, resolve_unknown, says_what_it_is, searched, suggestions
from chatpay.core.agents.lines import (
    REFERRING,
    asks_fewer,
    available,
    cart_lines_named,
    cart_switch,
    held_variant,
    line_variants,
    listed_option,
    repick,
    switch_asked,
)
from chatpay.core.buttons import Action, decode, encode, resolve
from chatpay.core.cart import MAX_QUANTITY, Cart
from chatpay.core.cartparse import (
    CartParser,
    Target,
    count_in,
    parse_quantity,
    quantity_problem,
)
from chatpay.core.catalog import Catalog, Product
from chatpay.core.context import is_affirmative
from chatpay.core.errors import CartError, ConcurrencyConflict, OutOfStock, QuantityError
from chatpay.core.evidence import has_cue
from chatpay.core.options import match_variant
from chatpay.core.replies import count as count_of
from chatpay.core.replies import say
from chatpay.core.text import normalise, tokens
from chatpay.core.turns import Button, CartLineView, CartView, Reply

log = logging.getLogger(__name__)
SAVE_ATTEMPTS = 4
MAX_NAMED = 3  # phrases named in one "couldn't find" line
CLIP = 40  # characters of a phrase repeated back


def cart_view(cart: Cart, catalog: Catalog) -> CartView:
    lines = tuple(
        CartLineView(pl.product.handle, pl.product.name, pl.variant_title, pl.line.quantity, pl.unit_price, pl.total)
        for pl in cart.priced(catalog)
    )
    return CartView(lines, cart.subtotal(catalog))


def cart_text(view: CartView) -> str:
    if not view.lines:
        return say("cart.empty")
    rows = [
        f"• {ln.quantity} × **{ln.title}**{f' ({ln.variant})' if ln.variant else ''} — {ln.total.format()}"
        for ln in view.lines
    ]
    count = view.item_count
    subtotal = say("cart.subtotal", items=count_of(count, "item"), amount=view.subtotal.format())
    return say("cart.heading") + "\n" + "\n".join(rows) + "\n" + subtotal


def _clip(phrase: str) -> str:
    phrase = " ".join(phrase.split())
    return phrase if len(phrase) <= CLIP else phrase[: CLIP - 1].rsplit(" ", 1)[0] + "…"


def _label(product: Product, variant_id: str | None) -> str:
    v = product.variant(variant_id)
    return product.name if v.is_default else f"{product.name} ({v.title})"


async def _save(ctx: AgentContext, change: Any) -> Cart:
    """Apply ``change(cart) -> cart`` and store it atomically, re-reading on a lost race."""
    cart = ctx.cart
    for attempt in range(SAVE_ATTEMPTS):
        updated = change(cart)
        try:
            ctx.cart = await ctx.stores.carts.save(updated)
            return ctx.cart
        except ConcurrencyConflict:
            if attempt == SAVE_ATTEMPTS - 1:
                raise
            cart = await ctx.stores.carts.get(ctx.turn.business_id, ctx.turn.thread_id)
    raise AssertionError("unreachable")


def _finish(ctx: AgentContext, said: list[str], *, buttons: tuple[tuple[Button, ...], ...] = ()) -> Reply:
    assert ctx.catalog is not None
    view = cart_view(ctx.cart, ctx.catalog)
    text = "\n".join(s for s in said if s)
    if view.lines:
        text += f"\n\n{cart_text(view)}"
        buttons = buttons + ((view_cart_button(), checkout_button()),)
    return Reply(text.strip(), buttons=buttons, cart=view)


async def cart_add_agent(ctx: AgentContext) -> Reply:
    catalog = ctx.catalog
    assert catalog is not None
    data = ctx.turn.callback_data
    action = decode(data)
    if action is not None and action.kind == "add":
        product = resolve(catalog, action.product)
        if product is None:
            return Reply(say("cart.product_gone"), callback_answer=say("answer.not_available"))
        targets = [Target(product.handle, 1, "add", action.variant, via="button")]
        return await _apply(ctx, targets, price_talk=False, unresolved=[])
    if data:  # any other button: forged, or from a reply this version no longer sends
        return Reply(say("button.expired"), callback_answer=say("answer.expired"))
    offer = ctx.state.get("offer")
    if offer and is_affirmative(normalise(ctx.turn.text)) and not ctx.engine.mention_index(catalog).names_besides(
            tokens(ctx.turn.text), str(offer)):  # a yes to "add it to your cart?", not "ok add the kit"
        offered = catalog.get(str(ctx.state["offer"]))
        # "ok, the rhubarb one then": the yes may also choose the option, which must not be dropped
        variant_id = match_variant(offered, tokens(ctx.turn.text))[0] if offered is not None else None
        targets = [Target(str(ctx.state["offer"]), 1, "add", variant_id, via="offer")]
        return await _apply(ctx, targets, price_talk=False, unresolved=[])
    parser = CartParser(ctx.engine.mention_index(catalog))
    words = tokens(ctx.turn.text)
    listed = listed_option(ctx, catalog, words)
    if listed is not None:  # "what sizes does it come in?" ... "add the second one"
        return await _apply(ctx, [listed], price_talk=False, unresolved=[])
    command = parser.parse(
        ctx.turn.text, "add", last_shown=ctx.last_shown, last_product=ctx.last_product,
        cart_handles=list(ctx.cart.quantities()),
    )
    targets = list(command.targets)
    switched = cart_switch(ctx, catalog, words)
    in_cart = set(ctx.cart.quantities())
    if switched is not None and (not targets or (all(t.handle not in in_cart for t in targets)
                                                 and set(words) & REFERRING)):
        targets = [switched]  # "switch it to the 10 inch": the cart's line, not a product named "... 10 in"
    elif switched is not None and targets and all(
            t.via == "last" and t.handle and t.variant_id in line_variants(ctx, t.handle) for t in targets):
        # "switch the bed to the large" with the large mat in focus: the mat already is large, so
        # the switch is the bed's, the one line that has a large to switch to
        targets = [switched]
    if not targets and ("both" in words or ("all" in words and "them" in words)) and ctx.last_shown:
        targets = [Target(h, 1, "add", via="reference") for h in ctx.last_shown[:MAX_QUANTITY]]
    return await _apply(ctx, targets, price_talk=command.price_talk, unresolved=list(command.unresolved))


async def _apply(ctx: AgentContext, targets: list[Target], *, price_talk: bool, unresolved: list[str]) -> Reply:
    catalog = ctx.catalog
    assert catalog is not None
    said: list[str] = []
    buttons: tuple[tuple[Button, ...], ...] = ()
    if not targets:
        missing: list[tuple[str, list[str]]] = []
        suggestion = ""
        for phrase in unresolved or [ctx.turn.text]:
            product, handles = await resolve_unknown(ctx, phrase)
            if product is not None:
                words = tokens(phrase)
                variant_id, _ = match_variant(product, words)
                quantity, _ = count_in(words, product)
                problem = quantity_problem(phrase, quantity, MAX_QUANTITY)
                targets.append(Target(product.handle, quantity, "add", variant_id, via="retrieval", phrase=phrase,
                                      problem=problem))
            else:
                missing.append((phrase, handles))
        not_found: list[str] = []
        for phrase, handles in missing:
            # "…no-show socks, L/XL": a clause naming only an option belongs to the product found
            if targets and CartParser.attach_variant(catalog, targets, tokens(phrase)):
                continue
            not_found.append(_clip(phrase))
            if not buttons:
                hint, rows = suggestions(ctx, handles, say("cart.did_you_mean"))
                buttons += rows
                suggestion = hint
        kinds = _one_kind(ctx, missing) if len(not_found) == 1 and not targets else []
        if kinds:  # "add a notebook": several products are one, so the shopper picks
            hint, rows = suggestions(ctx, kinds, say("cart.which_would_you_like"))
            ctx.remember(pending="pick")  # the next message may pick one of them by a word of its name
            said.append(hint)
            buttons = rows
        elif not_found:  # named once, however long the message: a reply stays a few messages at most
            shown = ", ".join(f"“{p}”" for p in not_found[:MAX_NAMED])
            more = say("cart.not_found_more", n=len(not_found) - MAX_NAMED) if len(not_found) > MAX_NAMED else ""
            hint = suggestion if buttons else ""
            said.append(f"{say('cart.not_found', shown=shown, more=more)} {hint}".strip())
            if hint and not targets:
                ctx.remember(pending="pick")  # "чугунную, на 24": the next message may pick a suggestion
    ctx.span_attrs["targets"] = [
        {"handle": t.handle, "quantity": t.quantity, "mode": t.mode, "variant": t.variant_id, "via": t.via}
        for t in targets
    ]
    problems = [t for t in targets if t.problem]
    if problems:
        t = problems[0]
        product = catalog.get(t.handle) if t.handle else None
        name = say("cart.how_many_of", name=product.name) if product else ""
        ctx.emit("CartQuantityQueried", handle=t.handle, reason=t.problem)
        return _finish(ctx, [say("cart.how_many", name=name, most=MAX_QUANTITY)])
    for t in targets:
        product = catalog.get(t.handle) if t.handle else None
        if product is None:
            continue
        if t.candidates and t.via == "name":
            options = [product.handle, *t.candidates]
            hint, rows = suggestions(ctx, options, say("cart.which_do_you_mean"))
            ctx.remember(pending="pick")
            said.append(hint)
            buttons += rows
            continue
        text, rows = await _apply_one(ctx, product, t)
        said.append(text)
        buttons += rows
    if price_talk:
        said.append(say("cart.listed_price"))
    if not said:
        said.append(say("cart.what_to_add"))
    return _finish(ctx, said, buttons=buttons)


def _one_kind(ctx: AgentContext, missing: list[tuple[str, list[str]]]) -> list[str]:
    """The found products that each are what the one unresolved phrase names ("a notebook"), if two or more."""
    assert ctx.catalog is not None
    [(phrase, handles)] = missing
    what = searched(phrase)
    kinds = [h for h in handles if (p := ctx.catalog.get(h)) is not None and says_what_it_is(p, what)]
    return kinds if len(kinds) >= 2 else []


Rows = tuple[tuple[Button, ...], ...]


async def _apply_one(ctx: AgentContext, product: Product, t: Target) -> tuple[str, Rows]:
    """What happened to one target, and any buttons that go with it (alternatives to a sold-out one)."""
    old = switch_asked(ctx, product, t.variant_id)
    if old is not None and t.variant_id is not None:
        return await _switch(ctx, product, old, repick(product, t, old)), ()
    in_cart = line_variants(ctx, product.handle)
    if len(in_cart) == 1 and (t.variant_id is None or (
            t.mode == "set" and t.variant_id != in_cart[0] and repick(product, t, in_cart[0]) == in_cart[0])):
        # "one more", "make it 2 cables": the line already in the cart, not a new default variant;
        # "make it 6 balls" with Heather / Single ball held: "balls" names that line as well as any
        t = Target(t.handle, t.quantity, t.mode, in_cart[0], t.variant_words, t.via, t.phrase, t.candidates)
    focus = ctx.state.get("focus_variant")
    if not in_cart and isinstance(focus, list) and focus[:1] == [product.handle]:
        # "is the 12 inch one big enough?" ... "ok add that": the option the shopper asked about;
        # "black is fine" after L / Orange was sold out: L / Black
        chosen = repick(product, t, str(focus[1])) if t.variant_id is not None else (
            str(focus[1]) if available(product, str(focus[1])) else None)  # not the sold-out one again
        t = Target(t.handle, t.quantity, t.mode, chosen, t.variant_words, t.via, t.phrase, t.candidates)
    try:
        variant = product.variant(t.variant_id)
    except KeyError:
        return say("cart.no_such_option", name=product.name), ()
    label = _label(product, variant.id)
    current = ctx.cart.quantity_of(product.handle, variant.id)
    try:
        if t.mode == "set":
            quantity = t.quantity if t.quantity is not None else 1
            if current:
                await _save(ctx, lambda c: c.set_quantity(product.handle, quantity, variant.id))
            else:
                await _save(ctx, lambda c: c.add(product, variant.id, quantity))
            ctx.emit("CartQuantitySet", handle=product.handle, variant_id=variant.id, quantity=quantity)
            if quantity < current:  # "make it 1" of 3 took some away: the turn's outcome is a removal
                ctx.outcome_intent = "cart_remove"
            outcome = say("cart.updated", quantity=quantity, label=label)
        else:
            quantity = t.quantity if t.quantity is not None else 1
            await _save(ctx, lambda c: c.add(product, variant.id, quantity))
            ctx.emit("CartItemAdded", handle=product.handle, variant_id=variant.id, quantity=quantity)
            outcome = say("cart.added", quantity=quantity, label=label, price=variant.price.format())
        ctx.remember(last_product=product.handle)
        return outcome, ()
    except OutOfStock:
        # "ok, the 1kg then" refers to it, keeping the other options asked for
        ctx.remember(last_product=product.handle, focus_variant=None if variant.is_default else [product.handle, variant.id])
        ctx.emit("CartItemRefused", handle=product.handle, variant_id=variant.id, reason="out_of_stock")
        others = [v for v in product.variants if v.available]
        if others and not variant.is_default:
            rows = tuple((add_button(product, f"🛒 {v.title[:40]}", v.id),) for v in others[:4])
            return say("cart.option_sold_out", label=label, options=", ".join(v.title for v in others)), rows
        # Never another product in its place: say so, and offer the nearest in-stock ones to choose.
        nearest = await alternatives(ctx, product)
        if nearest:
            rows = tuple((add_button(p, f"🛒 {p.name[:40]}"),) for p in nearest)
            names = ", ".join(f"**{p.name}**" for p in nearest)
            return say("cart.sold_out_nearest", name=product.name, names=names), rows
        return say("cart.sold_out", name=product.name), ()
    except QuantityError:
        return say("cart.at_most", most=MAX_QUANTITY, label=label), ()


async def _switch(ctx: AgentContext, product: Product, old: str, new: str) -> str:
    """Replace the variant on the cart's line, keeping its quantity ("switch it to the 65W")."""
    quantity = ctx.cart.quantity_of(product.handle, old)
    target = product.variant(new)
    if not target.available:
        return say("cart.switch_sold_out", new=_label(product, new), old=_label(product, old))
    await _save(ctx, lambda c: c.remove(product.handle, None, old).add(product, new, quantity))
    ctx.emit("CartVariantSwitched", handle=product.handle, old=old, new=new, quantity=quantity)
    ctx.remember(last_product=product.handle)
    return say("cart.switched", quantity=quantity, label=_label(product, new), price=target.price.format())


def _remove_button(product: Product) -> Button:
    return Button(f"➖ {product.name[:40]}", encode(Action("remove", product_key(product.handle))))


async def cart_remove_agent(ctx: AgentContext) -> Reply:
    catalog = ctx.catalog
    assert catalog is not None
    if ctx.cart.is_empty:
        return Reply(say("cart.already_empty"), cart=cart_view(ctx.cart, catalog))
    data = ctx.turn.callback_data
    in_cart = list(ctx.cart.quantities())
    action = decode(data)
    if data:
        product = resolve(catalog, action.product) if action is not None and action.kind == "remove" else None
        targets = [Target(product.handle, None, "remove", via="button")] if product else []
    elif ctx.state.get("pending") == "keep" and ctx.last_product in in_cart:
        # the answer to "how many should I leave?": that many stay
        kept, _ = parse_quantity(tokens(ctx.turn.text))
        targets = [Target(ctx.last_product, kept, "set", via="last")] if kept is not None else []
    else:
        parser = CartParser(ctx.engine.mention_index(catalog))
        command = parser.parse(ctx.turn.text, "remove", last_shown=ctx.last_shown,
                               last_product=ctx.last_product, cart_handles=in_cart)
        targets = list(command.targets)
        for t in targets:  # "switch the conditioner to the 16 oz" changes a line; it removes nothing
            product = catalog.get(t.handle) if t.handle else None
            old = switch_asked(ctx, product, t.variant_id) if product else None
            if product and old is not None and t.variant_id is not None:
                return _finish(ctx, [await _switch(ctx, product, old, t.variant_id)])
        if targets and all(t.via in ("last", "reference", "only-line") for t in targets) and not has_cue(
                ctx.turn.text, "cart_remove"):
            targets = []  # nothing named and no word asks to remove: ask which, never guess a removal
        targets, ambiguous = cart_lines_named(ctx, targets)
        if ambiguous:
            rows = tuple((_remove_button(p),) for p in ambiguous)
            names = say("cart.or").join(f"**{p.name}**" for p in ambiguous)
            return _finish(ctx, [say("cart.which_to_remove", names=names)], buttons=rows)
    said: list[str] = []
    for t in targets:
        product = catalog.get(t.handle) if t.handle else None
        if product is None:
            continue
        if product.handle not in in_cart:
            said.append(say("cart.not_in_cart", name=product.name))
            continue
        quantity = t.quantity if t.mode != "set" else None
        have = ctx.cart.quantity_of(product.handle)
        if t.quantity is None and have > 1 and (t.mode == "set" or asks_fewer(ctx.turn.text)):
            # "too many candles, fewer please": fewer, not none; how many is the shopper's to say
            ctx.remember(last_product=product.handle, pending="keep")
            said.append(say("cart.how_many_leave", have=have, name=product.name))
            continue
        if t.mode == "set" and t.quantity is not None:  # "only keep 2": remove down to that
            have = ctx.cart.quantity_of(product.handle)
            if t.quantity >= have:
                said.append(say("cart.you_have", have=have, name=product.name))
                continue
            quantity = have - t.quantity
        try:
            handle, variant_id = product.handle, held_variant(ctx, product, t)
            await _save(ctx, lambda c, h=handle, n=quantity, v=variant_id: c.remove(h, n, v))
        except (CartError, QuantityError) as exc:
            if ctx.cart.quantity_of(handle, variant_id) == 0:  # "drop the 4mm" when the 5mm is what is held
                said.append(say("cart.not_in_cart", name=_label(product, variant_id)))
            else:
                said.append(say("cart.cannot_remove", error=exc))
            continue
        ctx.emit("CartItemRemoved", handle=product.handle, quantity=quantity)
        left = ctx.cart.quantity_of(product.handle)
        said.append(
            say("cart.removed_some", quantity=quantity, name=product.name, left=left) if quantity and left
            else say("cart.removed", name=product.name)
        )
        ctx.remember(last_product=product.handle if left else None)
    if not said:
        names = ", ".join(f"**{catalog.get(h).name}**" for h in in_cart if catalog.get(h))  # type: ignore[union-attr]
        said.append(say("cart.which_item", names=names))
        rows = tuple(
            (_remove_button(p),) for h in in_cart if (p := catalog.get(h)) is not None
        )
        return _finish(ctx, said, buttons=rows[:8])
    return _finish(ctx, said)


async def cart_view_agent(ctx: AgentContext) -> Reply:
    assert ctx.catalog is not None
    view = cart_view(ctx.cart, ctx.catalog)
    if not view.lines:
        return Reply(say("cart.empty_start"), cart=view, quick_replies=(say("quick.what_do_you_sell"),))
    return Reply(cart_text(view), buttons=((checkout_button(), clear_cart_button()),), cart=view)


def _confirm_clear(cart: Cart) -> str:
    """The Yes button's data: it names the cart version it was asked for, so a stale Yes asks again."""
    return encode(Action("confirm_clear", variant=str(cart.version)))


async def cart_clear_agent(ctx: AgentContext) -> Reply:
    """Empty the cart; one of more than one line is emptied only once the shopper confirms."""
    assert ctx.catalog is not None
    confirmed = ctx.turn.callback_data == _confirm_clear(ctx.cart) or (
        ctx.decision is not None and ctx.decision.layer == "context" and ctx.state.get("pending") == "clear"
    )
    lines = len(ctx.cart.lines)
    if lines > 1 and not confirmed:
        items = ctx.cart.item_count()
        ctx.remember(pending="clear")
        view = cart_view(ctx.cart, ctx.catalog)
        return Reply(
            say("cart.confirm_clear", items=count_of(items, "item")), cart=view,
            buttons=((Button(say("button.confirm_clear"), _confirm_clear(ctx.cart)),
                      Button(say("button.keep_cart"), VIEW_CART_DATA)),),
        )
    if not ctx.cart.is_empty:
        await _save(ctx, lambda c: c.clear())
        ctx.emit("CartCleared")
    ctx.remember(last_product=None, pending=None)
    return Reply(say("cart.now_empty"), cart=cart_view(ctx.cart, ctx.catalog))


AGENTS = {
    "cart_add": cart_add_agent,
    "cart_remove": cart_remove_agent,
    "cart_view": cart_view_agent,
    "cart_clear": cart_clear_agent,
}

__all__ = ["AGENTS", "cart_text", "cart_view"]
