"""The agents and the engine that routes a turn to one of them.

Agents are plain async functions ``(ctx) -> Reply`` in a dict keyed by intent. They read
the catalog, cart and thread state from the context and write back through it
(``ctx.cart``, ``ctx.state_changes``, ``ctx.events``); the turn service persists.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from chatpay.core.agents.reading import (
    BARE_NAME_CHAT_BELOW,
    actionable,
    asks_for_more,
    asks_for_similar,
    counts_a_product,
    names_a_policy,
    names_a_thing,
    opens_with_a_count,
    picks_an_option,
    picks_one_of_the_kind,
    picks_one_shown,
    requests_a_count,
    set_request,
    switch_request,
)
from chatpay.core.buttons import Action, encode, product_key
from chatpay.core.cart import Cart
from chatpay.core.catalog import Catalog, Product
from chatpay.core.context import NEGATIVE, context_intent, is_affirmative
from chatpay.core.evidence import (
    ADD_COMMANDS,
    asks_only_to_remove,
    asks_to_empty,
    has_cue,
    points_or_counts,
    stands,
)
from chatpay.core.mentions import NEVER_NAMES, Delexicalised, MentionIndex
from chatpay.core.metering import UsageMeter
from chatpay.core.negation import (
    CART_WORDS,
    asks_about_not_for,
    asks_about_orders,
    asks_new_total,
    asks_rather_than_requests,
    cart_word_names_a_product,
    mentions_the_cart,
    negated_action,
)
from chatpay.core.ports import ChatModel, Clock, PaymentProvider, Stores
from chatpay.core.replies import say
from chatpay.core.routing import RouteDecision, Router
from chatpay.core.telemetry import Event, Trace
from chatpay.core.text import NUMBER_WORDS, normalise, tokens
from chatpay.core.turns import Button, Message, Reply, Turn

# "давай его", "add two then": a request after a question runs to a few words; on the development
# shops' routing cases, words after a question that hold an add cue and a pointer but ask for
# nothing ("asking because my old one ... i dont want to go through that again") run to 15 or more
SHORT_REQUEST = 6

Agent = Callable[["AgentContext"], Awaitable[Reply]]

# A request to see the cart that never names it is short: on the 13 development stores (2026-12-01)
# every such case has at most 7 words ("what have i got so far", "how many things have I added"),
# while small talk and needs the classifier read as one ran to 12 words and more.
LONG_CART_VIEW = 10
# "I'd like to" before a verb that is not one of getting: a wish to do something oneself
_WISH_TO_DO = re.compile(r"\b(?:i'?d|i would|i'?ll|we'?d) (?:like|love) to\b(?! (?:add|get|buy|order|take|have|grab|"
                         r"purchase|pick|put))", re.IGNORECASE)

@dataclass
class AgentContext:
    """What an agent may read, and where it leaves what it changed."""

    turn: Turn
    catalog: Catalog | None
    cart: Cart
    history: list[Message]
    state: dict[str, Any]
    trace: Trace
    stores: Stores
    clock: Clock
    engine: Engine
    decision: RouteDecision | None = None
    delex: Delexicalised | None = None
    retrieval: Any = None
    state_changes: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    span_attrs: dict[str, Any] = field(default_factory=dict)
    model_calls: int = 0
    outcome_intent: str | None = None  # what the turn did, when it differs from what was read

    def emit(self, name: str, **data: Any) -> None:
        self.events.append(
            Event(self.turn.business_id, self.turn.thread_id, self.turn.turn_id, name, data, self.clock.now())
        )

    def remember(self, **changes: Any) -> None:
        self.state.update(changes)
        self.state_changes.update(changes)

    @property
    def last_shown(self) -> list[str]:
        return list(self.state.get("last_shown") or [])

    @property
    def last_product(self) -> str | None:
        value = self.state.get("last_product")
        return value if isinstance(value, str) else None


# ----------------------------------------------------------------- buttons (the codec is chatpay.core.buttons)


def add_button(product: Product, label: str | None = None, variant_id: str | None = None) -> Button:
    return Button(label or say("button.add"), encode(Action("add", product_key(product.handle), variant_id)))


# The cart's buttons are made per reply: their labels are in the turn's language.
VIEW_CART_DATA = encode(Action("view"))


def view_cart_button() -> Button:
    return Button(say("button.view_cart"), VIEW_CART_DATA)


def checkout_button() -> Button:
    return Button(say("button.checkout"), encode(Action("pay")))


def clear_cart_button() -> Button:
    return Button(say("button.clear_cart"), encode(Action("clear")))


# ----------------------------------------------------------------- engine

NEGATABLE = frozenset({"cart_add", "cart_remove", "cart_clear", "payments"})


def _left_alone(ctx: AgentContext) -> Reply:
    """The answer to a negated command ("don't empty my cart"): nothing changes, and it says so."""
    from chatpay.core.agents.cart import cart_text, cart_view

    ctx.emit("CommandDeclined", reason=ctx.decision.reason if ctx.decision else "")
    if ctx.catalog is None or ctx.cart.is_empty:
        return Reply(say("cart.no_change"))
    view = cart_view(ctx.cart, ctx.catalog)
    return Reply(f"{say('cart.left_as_is')}\n\n{cart_text(view)}", cart=view)



class Engine:
    """Routes turns and runs agents; the offline engine when ``model`` is None."""

    def __init__(
        self,
        *,
        router: Router,
        retriever: Any,
        meter: UsageMeter,
        model: ChatModel | None = None,
        payments: PaymentProvider | None = None,
        top_k: int = 6,
        agents: dict[str, Agent] | None = None,
        persona: str = "",
    ) -> None:
        from chatpay.core.agents.cart import AGENTS as CART_AGENTS
        from chatpay.core.agents.enquiry import enquiry_agent
        from chatpay.core.agents.payments import payments_agent
        from chatpay.core.agents.smalltalk import chitchat_agent, clarify_agent

        self.router = router
        self.retriever = retriever
        self.meter = meter
        self.model = model
        self.payments = payments
        self.top_k = top_k
        self.persona = persona.strip()  # the merchant's words for the bot's voice, given to the chat model
        self.name = model.name if model is not None else "offline"
        self.agents: dict[str, Agent] = {
            "enquiry": enquiry_agent, "payments": payments_agent, "chitchat": chitchat_agent,
            "clarify": clarify_agent, **CART_AGENTS,
        }
        if agents:
            self.agents.update(agents)
        self._indexes: dict[tuple[str, int], MentionIndex] = {}

    def voice(self, system: str) -> str:
        """``system`` with the merchant's persona, when one is set (``persona`` in CHATPAY_BUSINESSES)."""
        if not self.persona:
            return system
        return f"{system}\n\nThe shop's voice, in the merchant's words (style only, never facts or prices): " \
               f"{self.persona[:500]}"

    def mention_index(self, catalog: Catalog) -> MentionIndex:
        key = (catalog.business_id, catalog.version)
        index = self._indexes.get(key)
        if index is None:
            for old in [k for k in self._indexes if k[0] == catalog.business_id]:
                del self._indexes[old]
            index = self._indexes[key] = MentionIndex(catalog)
        return index

    async def route(self, ctx: AgentContext) -> RouteDecision:
        text = ctx.turn.text
        index = self.mention_index(ctx.catalog) if ctx.catalog is not None else None
        if index is not None:
            ctx.delex = index.delexicalise(text)
        else:
            ctx.delex = Delexicalised(text, normalise(text), tuple(), ())
        ruled = self.router.rule(ctx.turn)
        if ruled is not None:
            return ruled
        said = normalise(text)
        verb = negated_action(text)
        pending = ctx.state.get("pending")
        if pending == "clear" and is_affirmative(said):
            return RouteDecision("cart_clear", 0.95, reason="yes to emptying the cart", layer="context")
        if pending == "clear" and (said in NEGATIVE or verb):
            return RouteDecision("chitchat", 0.9, reason="kept the cart", layer="context", negated=True)
        if pending == "keep" and verb is None and any(w.isdigit() or w in NUMBER_WORDS for w in tokens(text)):
            return RouteDecision("cart_remove", 0.9, reason="how many to leave in the cart", layer="context")
        if pending == "pick" and verb is None and "?" not in text:
            picked = picks_one_shown(ctx) or picks_one_of_the_kind(ctx)
            if picked is not None:
                return RouteDecision("cart_add", 0.9, reason=f"picked {picked} from the products offered",
                                     layer="context")
        option = picks_an_option(ctx)
        if option is not None and verb is None:
            return RouteDecision("cart_add", 0.85, reason=f"picked an option of {option}, the product in focus",
                                 layer="context")
        offer = ctx.state.get("offer")
        if offer and is_affirmative(said) and not (index is not None and index.names_besides(tokens(text), offer)):
            return RouteDecision("cart_add", 0.95, reason=f"yes to the offer of {offer}", layer="context")
        if verb is None and asks_for_similar(text) and ctx.last_product:
            return RouteDecision("enquiry", 0.85, reason=f"asks what is like {ctx.last_product}", layer="context")
        if verb is None and asks_for_more(ctx):
            return RouteDecision("cart_add", 0.85, reason="more of what is in focus or in the cart", layer="context")
        if verb is not None:
            decision = await self.router.route(ctx.turn, ctx.delex, ctx.history)
            if decision.intent in NEGATABLE:
                return replace(decision, negated=True, reason=f"{decision.reason}; negated ({verb!r})")
            return decision
        if asks_to_empty(text):
            return RouteDecision("cart_clear", 0.9, reason="a verb that takes away, and everything", layer="rule")
        if asks_about_orders(text):
            return RouteDecision("payments", 0.95, reason="asks about their orders or payment", layer="context")
        if asks_new_total(text) and ctx.cart.lines and not (ctx.delex and ctx.delex.mentions):
            return RouteDecision("cart_view", 0.85, reason="asks the cart's total now", layer="context")
        switched = switch_request(ctx) or set_request(ctx)
        if switched is not None:
            return switched
        names = (lambda w: w in index.by_token and w not in NEVER_NAMES) if index is not None else None
        read = context_intent(ctx.delex, ctx.history, self.router.classifier.predict, names)
        if read is not None:
            intent, confidence, why = read
            mentions = ctx.delex.mentions if ctx.delex is not None else ()
            best = max((m.score for m in mentions), default=0.0)
            named = {m.handle for m in mentions if m.score >= best}  # "sweet basil seeds": the basil, not every seed
            if intent == "cart_remove" and why.startswith("continues") and named and not named & set(ctx.cart.quantities()):
                # "and birds of britain" after "one less": a removal names a line of the cart; a product
                # that is not in it, with no word that takes away, is the next thing to add
                intent, why = "cart_add", f"{why}, but names nothing in the cart: an addition"
            return RouteDecision(intent, confidence, reason=why, layer="context")
        decision = await self.router.route(ctx.turn, ctx.delex, ctx.history)
        if decision.model_called:
            ctx.model_calls += 1
        decision = self._safeguarded(ctx, decision)
        tail = text.rsplit("?", 1)[1].strip() if "?" in text else ""
        if (decision.intent == "enquiry" and tail and len(tokens(tail)) <= SHORT_REQUEST
                and has_cue(tail, "cart_add") and points_or_counts(tail)):
            # "а бежевое есть? давай его", "is it in stock? add two then": the question, then a request
            decision = replace(decision, intent="cart_add", runner_up="enquiry",
                               reason=f"{decision.reason}; a request to add after the question")
        if (decision.intent == "chitchat" and decision.layer in ("classifier", "model") and ctx.catalog is not None
                and getattr(self.retriever, "fitted_abstention", False)):
            # Only a search whose "we don't sell that" is fitted may overrule small talk; the legacy
            # retriever answers "good morning" with products.
            decision = await self._describes_what_we_sell(ctx, decision)
        return decision

    async def _describes_what_we_sell(self, ctx: AgentContext, decision: RouteDecision) -> RouteDecision:
        """Small talk that describes something the shop sells ("keep my dog cool in the summer heat",
        "ears freezing on my morning walk, help") is a product question: the search's own decision
        (it answers with products, not "we don't sell that") says so."""
        assert ctx.catalog is not None
        result = await self.retriever.search(ctx.catalog, ctx.turn.text, k=self.top_k)
        # Even odds or better that the top product is wanted and sold. On the thirteen development
        # stores (2026-11-30) the classifier's small talk that search answered with products was a
        # product question 10 times in 15; at 0.5 and above 10 in 12, below it 0 in 4 ("ты бот или
        # живой человек?", "can you help me with my maths homework").
        if result.kind == "overview":  # "АвтоДом", "расскажи про уютную лавку": the shop itself
            ctx.retrieval = result
            return replace(decision, intent="enquiry", runner_up="chitchat",
                           reason=f"{decision.reason}; asks about the shop itself: an enquiry")
        if result.kind == "none" and decision.confidence < BARE_NAME_CHAT_BELOW and names_a_thing(ctx.turn.text):
            # "chainsaw" in a shop that has none: the shopper asked for it, so the answer is "we
            # don't sell that" (with what the shop has instead), not a welcome
            ctx.retrieval = result
            return replace(decision, intent="enquiry", runner_up="chitchat",
                           reason=f"{decision.reason}; names a thing the shop does not sell: an enquiry")
        if result.kind != "products" or result.confidence < 0.5:
            return decision
        ctx.retrieval = result  # the enquiry agent answers from this search rather than running it again
        return replace(decision, intent="enquiry", runner_up="chitchat",
                       reason=f"{decision.reason}; the shop sells what it describes: an enquiry")

    def _safeguarded(self, ctx: AgentContext, decision: RouteDecision) -> RouteDecision:
        """The classifier's (or model's) reading, checked before anything changes the cart.

        An action needs words that ask for it (fitted classifier); two readings it cannot tell
        apart get a question; a question that borrows an action's verb is answered, not acted on.
        """
        text = ctx.turn.text
        if (decision.intent == "enquiry" and decision.layer == "classifier" and "?" not in text
                and next(iter(tokens(text)), None) in ADD_COMMANDS
                and ctx.delex is not None and "PRODUCT" in ctx.delex.text.split()):
            # "добавь два полотенца велюр белых": a message that opens with the command to add and
            # names a product is that command, whatever the classifier made of its other words
            return replace(decision, intent="cart_add", runner_up="enquiry",
                           reason=f"{decision.reason}; opens with a command to add a product it names")
        if (decision.intent in ("enquiry", "cart_add") and decision.layer == "classifier"
                and ((requests_a_count(ctx) and not asks_rather_than_requests(text)
                      and ("?" not in text or next(iter(tokens(text)), "") in ("can", "could", "may")))
                     or opens_with_a_count(ctx))):
            # "can i get four screen protectors for the iphone 16 pro": a count of a product, asked for
            return replace(decision, intent="cart_add", runner_up=decision.runner_up if decision.intent == "cart_add"
                           else "enquiry", clarify=False, reason=f"{decision.reason}; asks for a count of a product")
        if (decision.intent == "cart_add" and decision.layer in ("classifier", "model") and ctx.cart.lines
                and asks_only_to_remove(text)):
            # "fine, take out the 4.5mm then, I'll wait": a removal phrase and no word that adds ("I'll"
            # and "then" lean to adding, but ask for nothing); the cart agent removes only a line it finds
            return replace(decision, intent="cart_remove", runner_up="cart_add",
                           reason=f"{decision.reason}; a removal phrase and no word that adds")
        if (decision.intent == "chitchat" and decision.layer in ("classifier", "model")
                and names_a_policy(ctx)):
            # "do you ship for free?": the shop's own policy words make it a question for the shop.
            return replace(decision, intent="enquiry", runner_up="chitchat",
                           reason=f"{decision.reason}; names the shop's policy: an enquiry")
        # "the 2m one" answers an offer or a list just shown; with nothing shown yet, "the red shears"
        # names a product and an option but asks for nothing: it is a product question.
        shown = any(ctx.state.get(k) for k in ("offer", "pending", "shown_variants", "last_shown", "last_product"))
        picks_option = decision.intent == "cart_add" and bool(ctx.delex and ctx.delex.variant_words) and shown
        cue_check = getattr(self.router.classifier, "stands", None)  # the fitted classifier's learned cues
        # Small talk with a fitted "we don't sell that" needs no words of its own: the search decides
        # whether it describes something the shop sells (_describes_what_we_sell). A question about a
        # product it names ("will the travel adapter work with my hair straighteners") still needs them.
        searched = (decision.intent == "chitchat" and getattr(self.retriever, "fitted_abstention", False)
                    and not (ctx.delex is not None and "PRODUCT" in ctx.delex.text.split()
                             and asks_rather_than_requests(text)))
        # A pointer ("the saute one", "the last train to ...") stands for a request only when there is
        # something to point at; a count still does ("2x gloves").
        points = shown or decision.intent != "cart_add" or opens_with_a_count(ctx)
        cue_text = _WISH_TO_DO.sub(" ", text)  # "I'd like to prune the roses myself" asks for nothing
        if (decision.layer in ("classifier", "model") and cue_check is not None and not picks_option and not searched
                and not cue_check(text, decision.intent)
                and not (stands(cue_text, decision.intent) if points else has_cue(cue_text, decision.intent))
                and not (decision.intent == "cart_add" and counts_a_product(ctx))):
            return replace(decision, intent="enquiry", runner_up=decision.intent, clarify=False,
                           reason=f"{decision.reason}; no words for {decision.intent}: a product question")
        if (decision.layer in ("classifier", "model") and decision.intent in ("cart_add", "payments")
                and asks_rather_than_requests(text)):
            # "will the battery fit the saw?", "does it charge my phone?": answered, not acted on.
            return replace(decision, intent="enquiry", runner_up=decision.intent,
                           reason=f"{decision.reason}; a question, not a request to {decision.intent}")
        ask_margin = getattr(self.router.classifier, "meta", {}).get("ask_margin")
        if decision.intent == "enquiry" and asks_rather_than_requests(text):
            ask_margin = None  # a product question with an action's verb in it is answered, not queried
        other = decision.runner_up if decision.intent == "enquiry" else decision.intent
        if other == "cart_add" and not stands(text, other) and not (cue_check is not None and cue_check(text, other)):
            # "the rugged case": no word asks to add, so the answer is about the product (with its add
            # button), not a question. A removal reading is still asked about: taking away is the risk.
            ask_margin = None
        if (ask_margin and decision.layer == "classifier" and actionable(ctx, decision)
                and decision.confidence - decision.runner_up_confidence < float(ask_margin)):
            # Two readings the classifier cannot tell apart, one of them changing the cart: ask.
            return replace(decision, clarify=True,
                           reason=f"{decision.reason}; {decision.intent} or {decision.runner_up}? asking")
        if (decision.intent == "cart_view" and decision.layer in ("classifier", "model")
                and len(tokens(text)) >= LONG_CART_VIEW and not CART_WORDS & set(tokens(text))):
            # "I keep losing my leads at the bottom of my backpack, anything that keeps them all
            # together?": a long message that never says cart, basket or order tells of a need
            return replace(decision, intent="enquiry", runner_up="cart_view",
                           reason=f"{decision.reason}; a long message with no word for the cart")
        if (decision.intent == "cart_view" and decision.layer in ("classifier", "model")
                and cart_word_names_a_product(text)):
            # "poop bags", "got the puppy food in the 15 lb bag?": a bag that is sold, not the cart
            return replace(decision, intent="enquiry", runner_up="cart_view",
                           reason=f"{decision.reason}; the cart's word names a product")
        takes_away = decision.intent == "cart_remove" or (
            decision.intent == "cart_clear" and not mentions_the_cart(text))
        if takes_away and asks_about_not_for(text):
            # Taking something away needs a request, not a question that borrows its verb.
            return replace(decision, intent="enquiry", runner_up=decision.intent,
                           reason=f"{decision.reason}; a question, not a request to {decision.intent}")
        return decision

    async def run_agent(self, name: str, ctx: AgentContext) -> Reply:
        agent = self.agents.get(name) or self.agents["clarify"]
        if ctx.catalog is None and name not in ("chitchat", "clarify"):
            return Reply(say("shop.no_catalog"))
        if ctx.decision is not None and ctx.decision.negated:
            reply = _left_alone(ctx)
        else:
            reply = await agent(ctx)
        for key in ("offer", "pending"):  # an offer or a question only stands for the very next message
            if ctx.state.get(key) and key not in ctx.state_changes:
                ctx.remember(**{key: None})
        return reply
