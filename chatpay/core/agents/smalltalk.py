"""Chitchat and clarifying questions: short, friendly, and back to shopping."""

from __future__ import annotations

import logging

from chatpay.core.agents import AgentContext, product_key
from chatpay.core.agents.enquiry import grounded
from chatpay.core.buttons import Action, encode
from chatpay.core.catalog import Product
from chatpay.core.errors import ModelError
from chatpay.core.ports import ChatMessage, ChatRequest
from chatpay.core.text import tokens
from chatpay.core.turns import Button, Reply

log = logging.getLogger(__name__)

GREETING = frozenset("hi hello hey hiya howdy hola bonjour hallo ciao ola morning evening afternoon yo start".split())
THANKS = frozenset("thanks thank thx ty cheers merci gracias danke grazie obrigado".split())
BYE = frozenset("bye goodbye cya later ciao adios night".split())
IDENTITY = frozenset("who are you bot robot human real ai name".split())
SUGGESTIONS = ("What do you sell?", "Show my cart")

CHITCHAT_PROMPT = (
    "You are the friendly shop assistant of {store}. Reply to the shopper's small talk in one short sentence, "
    "then invite them to ask about products. Never make promises about prices, discounts or orders."
)


def _template(ctx: AgentContext) -> str:
    # A name that ends a sentence loses its own full stop ("Bean & Leaf Co." + "." is one stop).
    store = ((ctx.catalog.store_name if ctx.catalog else "") or "our shop").rstrip(".")
    words = set(tokens(ctx.turn.text))
    if ctx.turn.text.strip().startswith("/start") or words & GREETING:
        return f"Hi! Welcome to {store}. Ask me about our products, or tell me what you'd like to add to your cart."
    if words & THANKS:
        return "You're welcome! Anything else I can help you find?"
    if words & BYE:
        return f"Thanks for visiting {store}. See you soon!"
    if {"who", "are", "you"} <= words or words & {"bot", "robot", "human"}:
        return f"I'm the shopping assistant of {store}: I can answer questions, fill your cart and check you out."
    if ctx.turn.text.strip().startswith("/help"):
        return ("I can answer questions about our products and policies, add or remove items "
                "(\"add 2 of …\"), show your cart (/cart) and check you out (/checkout).")
    return f"I'm here to help you shop at {store}. What are you looking for today?"


async def chitchat_agent(ctx: AgentContext) -> Reply:
    if ctx.turn.callback_data:  # the router sends buttons it cannot read here
        return Reply("That button has expired. Ask me again and I'll show you fresh options.",
                     callback_answer="Expired", quick_replies=SUGGESTIONS)
    text = _template(ctx)
    model = ctx.engine.model
    if model is not None and ctx.turn.text and not ctx.turn.text.startswith("/"):
        store = (ctx.catalog.store_name if ctx.catalog else "") or "this shop"
        try:
            response = await model.complete(ChatRequest(
                messages=(ChatMessage("system", ctx.engine.voice(CHITCHAT_PROMPT.format(store=store))),
                          ChatMessage("user", ctx.turn.text[:500])),
                max_tokens=60, temperature=0.5,
            ))
            ctx.model_calls += 1
            # Small talk passes the same check as product answers: no amount the catalog does not hold.
            said = response.text.strip()
            if said and grounded(said, list(ctx.catalog) if ctx.catalog else []):
                text = said
        except ModelError as exc:
            log.warning("chitchat generation failed; using the template", extra={"error": repr(exc)})
    return Reply(text, quick_replies=SUGGESTIONS)


async def clarify_agent(ctx: AgentContext) -> Reply:
    d = ctx.decision
    product = _named_product(ctx)
    if d is not None and product is not None and {d.intent, d.runner_up} & {"cart_add", "cart_remove"}:
        return _two_readings(ctx, product, d.intent if d.intent != "enquiry" else str(d.runner_up))
    options = {
        "enquiry": "ask about a product", "cart_add": "add something to your cart",
        "cart_remove": "remove something from your cart", "cart_view": "see your cart",
        "cart_clear": "empty your cart", "payments": "check out", "chitchat": "just chat",
    }
    if d and d.runner_up:
        guess = f"Did you want to {options[d.intent]} or {options[d.runner_up]}?"
    else:
        guess = "Are you looking for a product, or would you like to see your cart?"
    return Reply(f"Sorry, I'm not sure I understood. {guess}", quick_replies=SUGGESTIONS)


def _named_product(ctx: AgentContext) -> Product | None:
    if ctx.catalog is None or ctx.delex is None or not ctx.delex.mentions:
        return None
    return ctx.catalog.get(ctx.delex.mentions[0].handle)


def _two_readings(ctx: AgentContext, product: Product, action: str) -> Reply:
    """ "Add the 2m cable to your cart" / "Tell me about the 2m cable": a button for each reading."""
    key = product_key(product.handle)
    name = product.name[:36]
    if action == "cart_remove" and product.handle in ctx.cart.quantities():
        act = Button(f"➖ Remove {name}", encode(Action("remove", key)))
    elif action == "cart_add" and product.available:
        act = Button(f"🛒 Add {name}", encode(Action("add", key)))
    else:
        act = None
    about = Button(f"ℹ️ About {name}", encode(Action("info", key)))
    rows = ((act,), (about,)) if act is not None else ((about,),)
    ctx.remember(last_product=product.handle)
    return Reply(f"Do you want me to {'remove' if action == 'cart_remove' else 'add'} **{product.name}**, "
                 "or tell you more about it?", buttons=rows)
