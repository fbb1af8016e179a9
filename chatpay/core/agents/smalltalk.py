"""Chitchat and clarifying questions: short, friendly, and back to shopping."""

from __future__ import annotations

import logging

from chatpay.core.agents import AgentContext, product_key
from chatpay.core.agents.enquiry import grounded
from chatpay.core.buttons import Action, encode
from chatpay.core.catalog import Product
from chatpay.core.errors import ModelError
from chatpay.core.ports import ChatMessage, ChatRequest
from chatpay.core.replies import say
from chatpay.core.text import tokens
from chatpay.core.turns import Button, Reply

log = logging.getLogger(__name__)

GREETING = frozenset("""hi hello hey hiya howdy hola bonjour hallo ciao ola morning evening afternoon yo start
    привет здравствуйте здрасте добрый""".split())
THANKS = frozenset("thanks thank thx ty cheers merci gracias danke grazie obrigado спасибо благодарю".split())
BYE = frozenset("bye goodbye cya later ciao adios night пока свидания".split())
IDENTITY = frozenset("who are you bot robot human real ai name".split())


def suggestions() -> tuple[str, ...]:
    """The shopper's quick replies, in the turn's language."""
    return (say("quick.what_do_you_sell"), say("quick.show_cart"))

CHITCHAT_PROMPT = (
    "You are the friendly shop assistant of {store}. Reply to the shopper's small talk in one short sentence, "
    "then invite them to ask about products. Never make promises about prices, discounts or orders."
)


def _template(ctx: AgentContext) -> str:
    # A name that ends a sentence loses its own full stop ("Bean & Leaf Co." + "." is one stop).
    store = ((ctx.catalog.store_name if ctx.catalog else "") or "our shop").rstrip(".")
    words = set(tokens(ctx.turn.text))
    if ctx.turn.text.strip().startswith("/start") or words & GREETING:
        return say("chat.hello", store=store)
    if words & THANKS:
        return say("chat.welcome")
    if words & BYE:
        return say("chat.bye", store=store)
    if {"who", "are", "you"} <= words or {"кто", "ты"} <= words or words & {"bot", "robot", "human", "бот", "робот"}:
        return say("chat.who", store=store)
    if ctx.turn.text.strip().startswith("/help"):
        return say("chat.help")
    return say("chat.default", store=store)


async def chitchat_agent(ctx: AgentContext) -> Reply:
    if ctx.turn.callback_data:  # the router sends buttons it cannot read here
        return Reply(say("button.expired"), callback_answer=say("answer.expired"), quick_replies=suggestions())
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
    return Reply(text, quick_replies=suggestions())


async def clarify_agent(ctx: AgentContext) -> Reply:
    d = ctx.decision
    product = _named_product(ctx)
    if d is not None and product is not None and {d.intent, d.runner_up} & {"cart_add", "cart_remove"}:
        return _two_readings(ctx, product, d.intent if d.intent != "enquiry" else str(d.runner_up))
    if d and d.runner_up:
        guess = say("clarify.either", first=say(f"clarify.{d.intent}"), second=say(f"clarify.{d.runner_up}"))
    else:
        guess = say("clarify.product_or_cart")
    return Reply(say("clarify.unsure", guess=guess), quick_replies=suggestions())


def _named_product(ctx: AgentContext) -> Product | None:
    if ctx.catalog is None or ctx.delex is None or not ctx.delex.mentions:
        return None
    return ctx.catalog.get(ctx.delex.mentions[0].handle)


def _two_readings(ctx: AgentContext, product: Product, action: str) -> Reply:
    """ "Add the 2m cable to your cart" / "Tell me about the 2m cable": a button for each reading."""
    key = product_key(product.handle)
    name = product.name[:36]
    if action == "cart_remove" and product.handle in ctx.cart.quantities():
        act = Button(say("button.remove_named", name=name), encode(Action("remove", key)))
    elif action == "cart_add" and product.available:
        act = Button(say("button.add_named", name=name), encode(Action("add", key)))
    else:
        act = None
    about = Button(say("button.about_named", name=name), encode(Action("info", key)))
    rows = ((act,), (about,)) if act is not None else ((about,),)
    ctx.remember(last_product=product.handle)
    asked = "clarify.remove_or_about" if action == "cart_remove" else "clarify.add_or_about"
    return Reply(say(asked, name=product.name), buttons=rows)
