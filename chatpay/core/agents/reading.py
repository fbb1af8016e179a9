"""What a message asks, read against the dialogue state: a pick among the products or options
just shown, a switch or a quantity set on a cart line, a count of a product, a policy's words.

The engine's router (:mod:`chatpay.core.agents`) asks these before and after the classifier; they
only read the turn, the thread's state and the catalog.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from chatpay.core.cartparse import sets_quantity
from chatpay.core.context import AFFIRMATIVE, AFFIRMATIVE_HEADS, NEGATIVE, PICK_FILLER
from chatpay.core.evidence import CUES, asks_switch
from chatpay.core.mentions import NEVER_NAMES
from chatpay.core.negation import QUESTION_OPENERS
from chatpay.core.options import match_variant, size_word, unit_pairs
from chatpay.core.quantities import COUNT_NOUNS
from chatpay.core.routing import RouteDecision
from chatpay.core.text import NUMBER_WORDS, by_longest_run, same_word, tokens

if TYPE_CHECKING:
    from chatpay.core.agents import AgentContext


def switch_request(ctx: AgentContext) -> RouteDecision | None:
    """ "switch it to white", "поменяй на 200х220": a new option for a line already in the cart."""
    if ctx.cart.is_empty or ctx.delex is None:
        return None
    if not asks_switch(list(ctx.delex.tokens), strict=True) or "?" in ctx.turn.text:
        return None
    if not ctx.delex.variant_words and not measures_a_cart_option(ctx):
        return None
    return RouteDecision("cart_add", 0.9, reason="a new option for a line in the cart", layer="context")


def set_request(ctx: AgentContext) -> RouteDecision | None:
    """ "make it 2", "сделай 3 карты": a quantity set on the cart, up or down. The add agent sets it
    either way (a lower count is reported as a removal); the remove agent could only lower it."""
    if ctx.cart.is_empty or "?" in ctx.turn.text:
        return None
    words = tokens(ctx.turn.text)
    if not sets_quantity(words):
        return None
    if not any(w.isdigit() or w in NUMBER_WORDS for w in words):
        return None
    return RouteDecision("cart_add", 0.9, reason="sets a quantity in the cart", layer="context")


def picks_an_option(ctx: AgentContext) -> str | None:
    """The product in focus, when the message only names one of its options ("тогда 26", "the 5.0
    one then") with words that surround a pick: not a question, and no other product named."""
    focus = ctx.catalog.get(ctx.last_product) if ctx.catalog is not None and ctx.last_product else None
    if focus is None or not focus.has_options or "?" in ctx.turn.text or (ctx.delex and ctx.delex.mentions):
        return None
    words = tokens(ctx.turn.text)
    variant_id, hit = match_variant(focus, words)
    if variant_id is None or not hit:
        return None
    rest = [w for w in words if w not in hit and w not in PICK_FILLER and not w.replace(".", "", 1).isdigit()]
    return focus.handle if not rest else None


def picks_one_shown(ctx: AgentContext) -> str | None:
    """The one product of those just offered to choose from that the message names by a word of
    its name no other offered product has ("the leather ones in M", "чугунную, на 24")."""
    if ctx.catalog is None:
        return None
    names = {h: {w for w in tokens(p.name) if len(w) > 2} for h in ctx.last_shown if (p := ctx.catalog.get(h))}
    said = [w for w in tokens(ctx.turn.text) if len(w) > 2]
    picked = set()
    for handle, words in names.items():
        others = set().union(*(w for h, w in names.items() if h != handle))
        own = {w for w in words if not any(same_word(w, o) for o in others)}
        if any(same_word(s, w) for s in said for w in own):
            picked.add(handle)
    if len(picked) == 1:
        return picked.pop()
    # "the usb-c to usb-c one" among cables that share every word: the name holding the longest run
    # of the message's words, three or more, unlike any other
    return by_longest_run(tokens(ctx.turn.text), ((h, tokens(p.name)) for h in ctx.last_shown
                                                   if (p := ctx.catalog.get(h)) is not None))


def picks_one_of_the_kind(ctx: AgentContext) -> str | None:
    """A product of the kind just offered, named though not among those shown ("the selvedge ones,
    32 waist" after four other jeans were suggested)."""
    if ctx.catalog is None or ctx.delex is None or not ctx.delex.mentions:
        return None
    kinds = {p.product_type for h in ctx.last_shown if (p := ctx.catalog.get(h)) is not None and p.product_type}
    best = ctx.delex.mentions[0].score
    named = {m.handle for m in ctx.delex.mentions if m.score >= best - 0.05}
    of_kind = [h for h in named if (p := ctx.catalog.get(h)) is not None and p.product_type in kinds]
    return of_kind[0] if len(of_kind) == 1 else None


def names_a_policy(ctx: AgentContext) -> bool:
    """Whether the message holds a keyword of one of the store's policies (whole words)."""
    if ctx.catalog is None or not ctx.catalog.policies:
        return False
    words = tokens(ctx.turn.text)
    if "?" not in ctx.turn.text and not (words and words[0] in QUESTION_OPENERS):
        return False  # "I love this shop": praise that happens to hold a policy word, not a question
    said = f" {' '.join(words)} "
    for policy in ctx.catalog.policies:
        for keyword in (*policy.keywords, policy.title):
            phrase = " ".join(tokens(keyword))
            if phrase and f" {phrase} " in said:
                return True
    return False


# "what's similar?", "any alternatives?", "есть что-то похожее?", "аналоги есть?"
SIMILAR = frozenset("similar alternative alternatives alike похожее похожие похожий похожая аналог аналоги аналогичное".split())


def asks_for_similar(text: str) -> bool:
    """Whether ``text`` asks for products like the one in focus (and names no product of its own)."""
    words = tokens(text)
    return bool(set(words) & SIMILAR) and len(words) <= 8


def _count_before_product(ctx: AgentContext, after: Callable[[int, list[str]], bool]) -> bool:
    """Whether a count stands right before a product's name, where ``after(i, said)`` holds of the
    delexicalised words before the count at ``i``."""
    said = ctx.delex.text.split() if ctx.delex is not None else []
    return any((w.isdigit() or (w in NUMBER_WORDS and w not in ("a", "an"))) and _product_follows(said, i + 1)
               and after(i, said) for i, w in enumerate(said[:-1]))


def _product_follows(said: list[str], i: int) -> bool:
    """Whether a product's name starts at ``i``, or after a unit of count ("2 pairs of PRODUCT")."""
    if said[i] == "PRODUCT":
        return True
    return said[i] in COUNT_NOUNS and said[i + 1:i + 3] == ["of", "PRODUCT"]


def opens_with_a_count(ctx: AgentContext) -> bool:
    """ "2 pairs of merino socks size L pls", "3 bags of compost": a message that opens with a count
    of a product and asks nothing is an order."""
    return "?" not in ctx.turn.text and _count_before_product(ctx, lambda i, said: i == 0)


def counts_a_product(ctx: AgentContext) -> bool:
    """ "ok just 1 nest box", "fine, 2 bags of compost": a count right before a product's name, at
    the start or after filler ("class 5 earmuffs", "pixel 7 case" are names with numbers)."""
    return _count_before_product(ctx, lambda i, said: i == 0 or said[i - 1] in PICK_FILLER or said[i - 1] == "only")


# Verbs after which a count of a product is an order: "can i get four ...", "i'll take 2 ..."
# (not "have", "need", "want": "we have one pan", "we need one that fits" say what is, not what to add)
_REQUEST_COUNT_VERBS = frozenset("get take order buy grab add возьму беру добавь положи".split())


def requests_a_count(ctx: AgentContext) -> bool:
    """ "can i get four screen protectors", "i'll take 2 bags of compost": a count of a product right
    after a verb that asks for it ("a picture book for a 4 year old" counts years, asks for nothing)."""
    return _count_before_product(ctx, lambda i, said: i > 0 and said[i - 1] in _REQUEST_COUNT_VERBS)


# "one more question", "another thing": more talk, not more of a product
_MORE_TALK = frozenset("question questions thing things вопрос вопросик".split())


def asks_for_more(ctx: AgentContext) -> bool:
    """ "one more for my partner", "another one", "2 more please", "ещё одну": more of the product
    in focus or in the cart, however the rest of the message reads (a gift, a reason)."""
    words = tokens(ctx.turn.text)
    if "?" in ctx.turn.text or len(words) < 2 or not (ctx.last_product or ctx.cart.lines):
        return False
    counted = (words[0].isdigit() or words[0] in NUMBER_WORDS) and words[1] in ("more", "ещё", "еще")
    starts = words[0] in ("another", "ещё", "еще") or counted
    return starts and not set(words) & _MORE_TALK


def measures_a_cart_option(ctx: AgentContext) -> bool:
    """ "switch it to the 10 inch", "поменяй на большие": a measurement or a size word that names
    an option of a product in the cart."""
    words = list(ctx.delex.tokens) if ctx.delex is not None else []
    said = unit_pairs(words)
    sized = size_word(words) is not None
    if not (said or sized) or ctx.catalog is None:
        return False
    for line in ctx.cart.lines:
        product = ctx.catalog.get(line.handle)
        if product is None:
            continue
        if said and any(said & unit_pairs(tokens(v.title)) for v in product.variants):
            return True
        if sized and match_variant(product, words)[0] not in (None, line.variant_id):
            return True
    return False


def actionable(ctx: AgentContext, decision: RouteDecision) -> bool:
    """Whether the reading beside "enquiry" could act on the product named: add one in stock, or
    remove one in the cart. Only then is asking between the two worth the shopper's time."""
    readings = {decision.intent, decision.runner_up}
    if ctx.catalog is None or ctx.delex is None or not ctx.delex.mentions or "enquiry" not in readings:
        return False
    product = ctx.catalog.get(ctx.delex.mentions[0].handle)
    if product is None:
        return False
    if "cart_add" in readings:
        return product.available
    if "cart_remove" in readings:
        return product.handle in ctx.cart.quantities()
    return False


# Words a bare request for a thing may carry besides its name: "a lawnmower", "slug pellets pls".
_BARE_NAME_FILLER = frozenset("a an the some any please pls plz".split())
BARE_NAME_WORDS = 4  # "зимняя куртка мужская", "pond pump with fountain": a name, not a sentence
# Above this the classifier's small talk stands even for a bare name: on the 13 development stores
# (2026-12-01) the bare names of things not sold got small talk at 0.35 to 0.88, and the bare small
# talk without a chat word ("доброе утро)", "you're useless") at 0.98 and above. The midpoint of the gap.
BARE_NAME_CHAT_BELOW = 0.93


def names_a_thing(text: str) -> bool:
    """ "chainsaw", "selfie stick", "шторы блэкаут": a message that is only the name of a thing (no
    chat word, no grammar of a sentence) asks whether the shop sells it, even when it does not."""
    words = [w for w in tokens(text) if w not in _BARE_NAME_FILLER]
    if not 0 < len(words) <= BARE_NAME_WORDS or "?" in text or " ".join(words) in AFFIRMATIVE | NEGATIVE:
        return False
    return not any(w in NEVER_NAMES or w in CUES["chitchat"] or w in AFFIRMATIVE_HEADS or w.isdigit() for w in words)
