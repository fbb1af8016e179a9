"""Which cart line, and which option of it, a cart message means.

The cart agents read a message's targets with :class:`chatpay.core.cartparse.CartParser`; these
helpers then place them against the cart and the dialogue state: a switch of one line's option,
an option picked from a list just shown, the line a removal names, fewer without a number.
"""

from __future__ import annotations

from dataclasses import replace

from chatpay.core.agents import AgentContext
from chatpay.core.cartparse import Target, count_in, name_head
from chatpay.core.catalog import Catalog, Product
from chatpay.core.evidence import asks_switch
from chatpay.core.negation import CLAUSE_BREAK
from chatpay.core.options import match_variant, variant_numbers
from chatpay.core.text import ORDINALS, same_word, tokens

REFERRING = frozenset({"it", "that", "this", "them", "those", "one", "его", "её", "ее", "их", "это"})


def cart_switch(ctx: AgentContext, catalog: Catalog, words: list[str]) -> Target | None:
    """The one cart line whose product has another option the message names, when it asks to switch."""
    if not asks_switch(words):
        return None
    fits = []
    for handle in ctx.cart.quantities():
        product = catalog.get(handle)
        held = line_variants(ctx, handle)
        if product is None or len(held) != 1:
            continue
        variant_id, vwords = match_variant(product, words, prefer=held[0])
        if variant_id is not None and variant_id != held[0]:
            fits.append(Target(handle, None, "add", variant_id, vwords, via="switch"))
    return fits[0] if len(fits) == 1 else None


def listed_option(ctx: AgentContext, catalog: Catalog, words: list[str]) -> Target | None:
    """The option an ordinal picks when the last answer listed one product's options in order."""
    listed = ctx.state.get("shown_variants")
    ordinals = [ORDINALS[w] for w in words if w in ORDINALS]
    if not isinstance(listed, list) or len(listed) != 2 or len(ordinals) != 1 or len(ctx.last_shown) > 1:
        return None
    handle, variant_ids = listed
    if ctx.delex is not None and any(m.handle != handle and len(m.positions) >= 2 for m in ctx.delex.mentions):
        return None  # "and the first socks pattern" after the sock yarn's colours: a product of its own
    product = catalog.get(str(handle))
    if product is None or not isinstance(variant_ids, list) or (ctx.last_shown and ctx.last_shown[0] != handle):
        return None
    n = ordinals[0]
    by_value = _nth_value(product, words, n)
    if by_value is not None:
        chosen, vwords = by_value
        quantity, _ = count_in(words, product, values=variant_numbers(product) & set(vwords))
        return Target(product.handle, quantity, "add", chosen, vwords, via="ordinal")
    quantity, _ = count_in(words, product)
    idx = len(variant_ids) - 1 if n == -1 else n - 1
    if not 0 <= idx < len(variant_ids):
        return None
    return Target(product.handle, quantity, "add", str(variant_ids[idx]), via="ordinal")


def _nth_value(product: Product, words: list[str], n: int) -> tuple[str, tuple[str, ...]] | None:
    """The variant "the second colour" means: the option named after the ordinal, its values in the
    order listed (Oatmeal, Heather, ...), not the second of every colour-and-size pair; among the
    variants with that value, the one the other words name ("5 balls": the single ball), else the
    first in stock."""
    at = next(i for i, w in enumerate(words) if w in ORDINALS)
    said = words[at + 1] if at + 1 < len(words) else ""
    names = [name for name, _ in product.variants[0].options]
    named = [name for name in names if len(said) >= 4 and (same_word(said, name.casefold())
                                                            or said[:4] == name.casefold()[:4])]
    if len(named) != 1 or len(names) < 2:
        return None  # one option only: its values are the variants, in the order listed
    values = list(dict.fromkeys(value for v in product.variants for name, value in v.options if name == named[0]))
    idx = len(values) - 1 if n == -1 else n - 1
    if not 0 <= idx < len(values):
        return None
    having = tuple(v for v in product.variants if (named[0], values[idx]) in v.options)
    rest = [w for i, w in enumerate(words) if i not in (at, at + 1)]
    picked, vwords = match_variant(replace(product, variants=having), rest)
    if picked is not None:
        return picked, vwords
    return next((v for v in having if v.available), having[0]).id, ()


def line_variants(ctx: AgentContext, handle: str) -> list[str]:
    return [ln.variant_id for ln in ctx.cart.lines if ln.handle == handle]


def switch_asked(ctx: AgentContext, product: Product, variant_id: str | None) -> str | None:
    """The option now on the product's one cart line, when the message asks to switch it to another."""
    in_cart = line_variants(ctx, product.handle)
    if (variant_id and len(in_cart) == 1 and in_cart[0] != variant_id
            and asks_switch(tokens(ctx.turn.text))):
        return in_cart[0]
    return None


def available(product: Product, variant_id: str) -> bool:
    return any(v.id == variant_id and v.available for v in product.variants)


def repick(product: Product, t: Target, prefer: str) -> str:
    """``t``'s option, or among the options its words name as well, the one keeping most of ``prefer``'s."""
    assert t.variant_id is not None
    if not t.variant_words:
        return t.variant_id
    return match_variant(product, t.variant_words, prefer=prefer)[0] or t.variant_id


def cart_lines_named(ctx: AgentContext, targets: list[Target]) -> tuple[list[Target], list[Product]]:
    """Point each named removal at the cart line whose name the words fit best; a tie is a question.

    A removal acts only on a line of the cart: "take the weekly planner off" with a weekly planner
    and a weekly desk pad in the cart removes the planner, and with two equally named lines asks.
    """
    catalog = ctx.catalog
    assert catalog is not None
    message = set(tokens(ctx.turn.text))
    lines = [p for h in ctx.cart.quantities() if (p := catalog.get(h)) is not None]
    out: list[Target] = []
    for t in targets:
        if t.via != "name":
            out.append(t)
            continue
        # the words of the clauses that name it: "remove the clover hook, the set already has one that
        # size" is about the hook; the set is the reason, in a clause of its own
        named = catalog.get(t.handle) if t.handle else None
        own = set(tokens(named.name)) if named is not None else set()
        clauses = [set(tokens(c)) for c in CLAUSE_BREAK.split(t.phrase or ctx.turn.text)]
        words = set().union(*(c for c in clauses if c & own)) or message
        scored = sorted(((len(words & set(tokens(p.name))), p) for p in lines), key=lambda sp: -sp[0])
        if not scored or scored[0][0] == 0:
            out.append(t)
            continue
        best = [p for n, p in scored if n == scored[0][0]]
        if len(best) > 1:  # "bottle" is the Water Bottle more than the Bottle Cage: the head noun decides
            headed = [p for p in best if name_head(p.name) in words]
            best = headed if len(headed) == 1 else best
        if len(best) > 1:
            return [], best[:4]
        named_fit = len(words & own)
        if best[0].handle != t.handle and scored[0][0] > named_fit:
            # The words fit a cart line's name better than the product they were read as naming.
            t = Target(best[0].handle, t.quantity, t.mode, None, t.variant_words, "cart", t.phrase)
        out.append(t)
    return out, []


# Words that ask for fewer of a line rather than none of it (stems for Russian endings).
FEWER = frozenset("fewer less lower reduce decrease поменьше меньше убавь уменьши уменьшить".split())


def held_variant(ctx: AgentContext, product: Product, t: Target) -> str | None:
    """The cart line of ``product`` that ``t``'s option words name: "remove the orange one" with an
    XL / Orange line in the cart is that line, though "orange" alone first names S / Orange."""
    held = line_variants(ctx, product.handle)
    if t.variant_id is None or t.variant_id in held or not t.variant_words:
        return t.variant_id
    titled = {v.id: tokens(v.title) for v in product.variants if v.id in held}
    fits = [vid for vid, words in titled.items()
            if all(any(same_word(w, x) for x in words) for w in t.variant_words)]
    return fits[0] if len(fits) == 1 else t.variant_id


def asks_fewer(text: str) -> bool:
    return bool(FEWER & set(tokens(text)))
