"""Finding the product a cart request means when the parser could not: search, then the model.

Used by the cart agents. Search ranks; a name the shopper said outranks the search's preference
(a sold-out product named is refused by name, never swapped for an in-stock neighbour); with the
LLM engine, the model may only choose among the retrieved catalog products.
"""

from __future__ import annotations

import logging

from chatpay.core.agents import AgentContext, add_button
from chatpay.core.catalog import Catalog, Product
from chatpay.core.errors import ModelError
from chatpay.core.ports import ChatMessage, ChatRequest
from chatpay.core.text import NUMBER_WORDS, by_longest_run, tokens
from chatpay.core.turns import Button

log = logging.getLogger(__name__)
MODEL_CHOICES = 8
# The verbs of a cart command, which name no product ("add a notebook" searches "notebook"). Only
# verbs and politeness: nouns a cue list holds ("bag", "basket") can be products ("sleeping bag").
COMMAND_WORDS = frozenset("""add adding added put throw chuck stick pop include buy buying grab take taking want
    order get getting gimme please i'll ill i'd remove removing delete drop cancel
    добавь добавьте добавить положи положите закинь кинь возьму возьмем беру берем хочу куплю купить убери удали""".split())
LLM_MAX_QTY = 10


def suggestions(ctx: AgentContext, handles: list[str], prefix: str) -> tuple[str, tuple[tuple[Button, ...], ...]]:
    assert ctx.catalog is not None
    products = [p for h in handles if (p := ctx.catalog.get(h)) is not None][:4]
    if not products:
        return "", ()
    names = ", ".join(f"**{p.name}**" for p in products)
    rows = tuple((add_button(p, f"🛒 {p.name[:40]}"),) for p in products if p.available)
    ctx.remember(last_shown=[p.handle for p in products])
    return f"{prefix} {names}?", rows


def _best_named(catalog: Catalog, phrase: str, handles: list[str]) -> Product | None:
    """The one candidate whose name holds every word of the phrase that any candidate's name holds.

    Availability plays no part: a sold-out product the shopper named is refused by name, never
    replaced by an in-stock neighbour the search preferred.
    """
    words = {w for w in tokens(phrase) if len(w) > 2}
    scored = []
    for h in handles:
        p = catalog.get(h)
        if p is not None:
            scored.append((len(words & set(tokens(p.name))), p))
    if not scored:
        return None
    top = max(n for n, _ in scored)
    best = [p for n, p in scored if n == top]
    if top >= 2 and len(best) == 1 and top == len(words & {w for _, p in scored for w in tokens(p.name)}):
        return best[0]
    # "the usb-c to usb-c one": names that share every word differ in their order; the one holding
    # the longest run of the phrase, three words or more, unlike any other
    return by_longest_run(tokens(phrase), ((p, tokens(p.name)) for _, p in scored))


def searched(phrase: str) -> str:
    """What of a cart phrase names a thing: without counts and command verbs."""
    return " ".join(w for w in tokens(phrase)
                    if not (w.isdigit() or w in NUMBER_WORDS or w in COMMAND_WORDS)) or phrase


def says_what_it_is(product: Product, phrase: str) -> bool:
    """Whether the product's name, type or tags hold every word of the phrase (plurals aside).

    A search may rank "a serum for oily skin" first for "an oil"; adding it on that guess would put
    a product in the cart that the shopper never named, so then the shopper is asked instead.
    """
    own = {w.rstrip("s") for w in tokens(" ".join((product.name, product.product_type, *product.tags)))}
    wanted = {w.rstrip("s") for w in tokens(phrase) if len(w) > 2}
    return bool(wanted) and wanted <= own


async def resolve_unknown(ctx: AgentContext, phrase: str) -> tuple[Product | None, list[str]]:
    """Retrieval, then (LLM only) the model, for a phrase the parser could not tie to a product."""
    assert ctx.catalog is not None
    # "add 2 packs of the no-show socks": the count and the command are the cart's business, not the
    # search's ("add" read as a thing the shop might not sell made it decline "add a notebook").
    what = searched(phrase)
    result = await ctx.engine.retriever.search(ctx.catalog, what, k=MODEL_CHOICES)
    handles = [h.handle for h in result.products]
    named = _best_named(ctx.catalog, what, handles)
    if named is not None:
        return named, handles
    if result.kind == "products" and handles and result.confidence >= 0.75:
        top = result.products[0]
        runner = result.products[1].score if len(result.products) > 1 else 0.0
        product = ctx.catalog.get(top.handle)
        if top.score - runner >= 0.1 and product is not None and says_what_it_is(product, what):
            return product, handles
    model = ctx.engine.model
    if model is None or not handles:
        return None, handles if result.kind != "none" else []
    options = {h: ctx.catalog.get(h) for h in handles}
    listing = "\n".join(f"{h}: {p.name}" for h, p in options.items() if p)
    schema = {
        "type": "object",
        "properties": {"handle": {"type": "string", "enum": [*handles, "none"]},
                       "quantity": {"type": "integer", "minimum": 1, "maximum": LLM_MAX_QTY}},
        "required": ["handle", "quantity"],
        "additionalProperties": False,
    }
    request = ChatRequest(
        messages=(
            ChatMessage("system", "Pick the one catalog product the shopper means, or none. Products:\n" + listing),
            ChatMessage("user", phrase[:300]),
        ),
        json_schema=schema, schema_name="pick", max_tokens=40,
    )
    try:
        response = await model.complete(request)
    except ModelError as exc:
        log.warning("cart model fallback failed", extra={"error": repr(exc)})
        return None, handles
    ctx.model_calls += 1
    picked = response.parsed.get("handle") if isinstance(response.parsed, dict) else None
    ctx.span_attrs["model_pick"] = picked
    if picked in options:  # the model may only choose among the retrieved catalog products
        return options[picked], handles
    return None, handles


async def alternatives(ctx: AgentContext, product: Product, limit: int = 3) -> list[Product]:
    """In-stock products nearest to a sold-out one, by the catalog search on its own name and type."""
    assert ctx.catalog is not None
    try:
        result = await ctx.engine.retriever.search(ctx.catalog, f"{product.name} {product.product_type}", k=limit + 3)
    except Exception:  # alternatives are a courtesy; the refusal stands without them
        log.warning("alternatives search failed", exc_info=True)
        return []
    found = [p for h in result.handles if (p := ctx.catalog.get(h)) is not None and p.available
             and p.handle != product.handle]
    return found[:limit]
