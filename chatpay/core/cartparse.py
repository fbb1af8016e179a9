"""Deterministic reading of cart commands.

"add 2 of the ethiopian and a french press", "make it two", "one more", "remove one",
"the second one", "the 1kg in black": quantities (digits and words), relative changes,
variants, and references to products just shown or just touched. No model involved;
whatever this cannot read is reported as unresolved so the agent can ask, suggest, or
(in LLM mode) let the model choose among catalog products.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from chatpay.core.cart import MAX_QUANTITY
from chatpay.core.catalog import Catalog, Product
from chatpay.core.evidence import drop_corrected_count, fewer_than_said, is_remark
from chatpay.core.mentions import NEVER_NAMES, MentionIndex, fullest, in_order
from chatpay.core.options import match_variant, normalise_units, option_names, size_word, variant_numbers
from chatpay.core.quantities import (  # noqa: F401  (re-exported: the parser's public API)
    COUNT_NOUNS,
    ONE_AS_ITEM,
    RELATIVE,
    count_in,
    parse_quantity,
    quantity_problem,
)
from chatpay.core.text import FILLER, NUMBER_WORDS, ORDINALS, same_word, tokens

Mode = Literal["add", "remove", "set"]

# Clauses split at commas (not the decimal comma of "0,5"), "and", "plus", "и" ...
_SPLIT = re.compile(r"\s*(?:,(?!\d)|;|\band also\b|\bplus\b|\bas well as\b|\band\b|(?<!\w)и(?!\w)|&|\+)\s*",
                    re.IGNORECASE)
_PRICE_TALK = re.compile(
    r"\b(price|prices|priced|cost|costs|discount|free|cheaper|euros?|dollars?|pounds?|cents?|usd|eur|gbp)\b|[€$£]",
    re.IGNORECASE,
)
_AMOUNT = re.compile(
    r"[€$£]\s*\d+(?:[.,]\d+)?|\d+(?:[.,]\d+)?\s*(?:euros?|eur|dollars?|usd|pounds?|gbp|cents?|[€$£])",
    re.IGNORECASE,
)
PRONOUNS = frozenset("it that this them those these one ones same его её ее их это этот эту этого него нее".split())
SET_CUES = ("make it", "make that", "make them", "change it to", "change that to", "change to", "set it to",
            "set to", "instead", "only want", "just want", "total of", "in total", "update to", "make the",
            "сделай", "сделайте", "пусть будет", "всего")


def sets_quantity(words: list[str]) -> bool:
    """Whether the words hold a set-quantity cue, as a run of whole words ("sunset tote" holds no "set to"),
    or correct a count ("only 1 springform pan not 2" sets it to 1)."""
    padded = f" {' '.join(words)} "
    return any(f" {cue} " in padded for cue in SET_CUES) or fewer_than_said(words)


@dataclass(frozen=True)
class Target:
    """One product the shopper means, as far as words alone can tell."""

    handle: str | None
    quantity: int | None = None  # None: the default for the mode (add 1, remove all)
    mode: Mode = "add"
    variant_id: str | None = None
    variant_words: tuple[str, ...] = ()
    via: str = ""  # "name", "reference", "ordinal", "last", "only-line"
    phrase: str = ""
    candidates: tuple[str, ...] = ()  # close alternatives when ambiguous
    problem: str | None = None  # a quantity no cart can hold ("-5", "0.5", "1e9"): ask, change nothing


@dataclass(frozen=True)
class CartCommand:
    targets: tuple[Target, ...]
    price_talk: bool = False
    unresolved: tuple[str, ...] = ()  # phrases that named nothing we know
    notes: tuple[str, ...] = field(default_factory=tuple)


def _besides(words: Sequence[str], said: Sequence[str], *also: Collection[str]) -> list[str]:
    """The words of a clause that are neither the option words ``said`` (in any ending), filler, words
    that never name a product, nor in one of the sets ``also``."""
    return [w for w in words if w not in said and not any(same_word(w, o) for o in said) and w not in FILLER
            and w not in NEVER_NAMES and not any(w in words_ for words_ in also)]


# Words after which a clause only describes its head: "the kit with the battery" is a kit.
_MODIFIER_START = frozenset("with that which including с со который которая которое которые".split())


def _head(words: list[str]) -> list[str]:
    """The words of a clause before its first modifier ("the kit" of "the kit with the battery")."""
    for i, w in enumerate(words):
        if w in _MODIFIER_START:
            return words[:i]
    return words


class CartParser:
    """Reads cart commands against one catalog's mention index and the thread's state."""

    def __init__(self, index: MentionIndex) -> None:
        self.index = index

    def parse(
        self,
        text: str,
        mode: Mode,
        *,
        last_shown: Sequence[str] = (),
        last_product: str | None = None,
        cart_handles: Sequence[str] = (),
    ) -> CartCommand:
        is_set = mode != "remove" and sets_quantity(tokens(text))
        raw = normalise_units(drop_corrected_count(text))  # "... not 2": the count it corrects is not one to take
        segments = [s for s in _SPLIT.split(raw) if s and s.strip()]
        targets: list[Target] = []
        unresolved: list[str] = []
        for original in segments or [raw]:
            seg = _AMOUNT.sub(" ", original)
            words = tokens(seg)
            if not words:
                continue
            if _PRICE_TALK.search(seg) and not self.index.find(seg):
                continue  # "...and set its price to 1 euro": ignored, prices come from the catalog
            if mode == "remove" and (targets or unresolved) and is_remark(words):
                continue  # "remove the can, the kit already has one": the reason, not a second line
            # Variants are matched on the original words: "a €50 gift card" names the €50 card.
            target = self._segment(seg, words, tokens(original), mode, is_set, last_shown, last_product,
                                   cart_handles, message_words=tokens(raw))
            if (target is not None and target.via in ("name", "reference", "described") and targets
                    and (self._only_options(targets, words) or self._only_options(targets, _head(words)))):
                # "and the feeder, 6 ports": an option of the feeder, not "pots" misspelt
                self._attach_variant(targets, tokens(original))
                continue
            if targets and self._both_take(targets, words, tokens(original)):
                continue  # "add the novel and the memoir, both paperback"
            if target is not None and target.via == "last" and targets and self._repeats_option(targets, words):
                continue  # "add three softcover packs, dotted": the option of the product just named
            if target is not None and target.via == "last" and targets:
                # "add the ladder, 1.5m", "наволочки, 2 упаковки белых": the option and the count
                # are the named product's, not the one in focus
                attached = self._attach_variant(targets, tokens(original))
                if self._attach_count(targets, words) or attached:
                    continue
            if target is not None and target.via == "described" and targets and is_set:
                continue  # "make it 2 pens, one's for my brother": a remark, not a second product to set
            if target is not None and target.via == "reference" and targets and self._attach_count(
                    targets, words):
                continue  # "ёлочек многовато, сделай 2": the count is the named product's, not the one in focus
            if target is not None and targets and self._sharpens(targets, target):
                continue  # "add the braidline one, 2m black": the second clause says which braidline
            if target is None:
                # "add the step ladder, 1.5m": a clause that only names an option of a product the
                # message names elsewhere chooses that option.
                attached = self._attach_variant(targets, tokens(original))
                if self._attach_count(targets, words) or attached:
                    continue
                if any(w not in NEVER_NAMES and w not in FILLER and not w.isdigit() and w not in NUMBER_WORDS
                       and w not in COUNT_NOUNS
                       and w not in RELATIVE for w in words):
                    unresolved.append(seg.strip())
                continue
            targets.append(target)
        if not targets and not unresolved:
            # "one more", "make it two", "remove one": the product is implied by context.
            words = tokens(raw)
            qty, relative = parse_quantity(words)
            implied = self._implied(mode, last_shown, last_product, cart_handles)
            if implied:
                q_mode: Mode = "set" if is_set else mode
                problem = quantity_problem(raw, qty, MAX_QUANTITY) if mode != "remove" else None
                targets.append(Target(implied[0], qty, q_mode, via=implied[1], phrase=raw.strip(), problem=problem))
        # "ёлочек многовато": a count to set on a cart line, but no count said; never a silent 1
        # ("make it the compact" names an option instead: a switch, not a count)
        targets = [replace(t, problem="missing") if t.mode == "set" and t.via == "cart" and t.quantity is None
                   and t.variant_id is None and not t.problem else t for t in targets]
        price_talk = _price_talk(raw, targets)
        merged = self._merge(targets)
        return CartCommand(tuple(merged), price_talk, tuple(unresolved))

    def _sharpens(self, targets: list[Target], new: Target) -> bool:
        """Replace an earlier target guessed from context by ``new`` when the earlier clause's own
        words are all in ``new``'s name: both clauses then speak of one product."""
        product = self.index.catalog.get(new.handle) if new.handle else None
        if product is None or not new.variant_id:
            return False
        name = set(tokens(product.name))
        for i, old in enumerate(targets):
            said = [w for w in tokens(old.phrase) if w not in NEVER_NAMES and w not in FILLER and w not in PRONOUNS
                    and not w.isdigit()]
            if old.via in ("last", "reference") and said and all(w in name for w in said):
                targets[i] = Target(new.handle, old.quantity if new.quantity in (None, 1) else new.quantity,
                                    old.mode, new.variant_id, new.variant_words, "name", f"{old.phrase}, {new.phrase}")
                return True
        return False

    def _product(self, t: Target) -> Product | None:
        return self.index.catalog.get(t.handle) if t.handle else None

    def _only_owner(self, words: list[str]) -> str | None:
        """The one product whose option titles hold every option word of ``words`` (two or more
        letters, no numbers), when the words hold at least one and only one product has them."""
        said = [w for w in words if w in self.index.variant_vocab and w.isalpha() and len(w) > 1
                and w not in NEVER_NAMES and w not in FILLER]
        if not said:
            return None
        owners: set[str] | None = None
        for w in said:
            having = self.index.option_owners().get(w, set())
            owners = having if owners is None else owners & having
        return next(iter(owners)) if owners is not None and len(owners) == 1 else None

    def _only_options(self, targets: list[Target], words: list[str]) -> bool:
        """Whether every word of a clause is part of an option of the product named just before."""
        last = targets[-1]
        product = self._product(last)
        if product is None or not product.has_options:
            return False
        _, said = match_variant(product, words)
        titled = set(tokens(" ".join(v.title for v in product.variants if not v.is_default)))
        return bool(said) and not _besides(words, said, titled, COUNT_NOUNS, option_names(product))

    def _repeats_option(self, targets: list[Target], words: list[str]) -> bool:
        """Whether a clause only names the option the last target already took."""
        last = targets[-1]
        product = self._product(last)
        if product is None or last.variant_id is None:
            return False
        variant_id, said = match_variant(product, words)
        return variant_id == last.variant_id and not _besides(words, said)

    def _both_take(self, targets: list[Target], words: list[str], original: list[str]) -> bool:
        """"both paperback", "оба белые": the option goes to every target named before, none counted."""
        if not set(words) & {"both", "оба", "обе", "обоих"} or len(targets) < 2:
            return False
        picked = []
        for t in targets:
            product = self._product(t)
            variant_id, said = match_variant(product, original) if product else (None, ())
            if variant_id is None:
                return False
            picked.append(replace(t, variant_id=variant_id, variant_words=said))
        targets[:] = picked
        return True

    def _attach_count(self, targets: list[Target], words: list[str]) -> bool:
        """Give the last target without a count the count of a clause that only counts ("и наволочки,
        2 упаковки белых", "the merino, 10 balls"); True if done."""
        if not targets or targets[-1].quantity is not None:
            return False
        last = targets[-1]
        product = self._product(last)
        if product is None:
            return False
        _, options = match_variant(product, words)
        said = [w for w in words if not any(same_word(w, o) for o in options)]  # "6-7Y" is a size, not 6
        qty, relative = parse_quantity(said)
        if qty is None or relative or any(not w.isdigit() for w in _besides(said, (), COUNT_NOUNS, NUMBER_WORDS)):
            return False
        clause = " ".join(words)
        targets[-1] = replace(last, quantity=qty, phrase=f"{last.phrase}, {clause}",
                              problem=last.problem or quantity_problem(clause, qty, MAX_QUANTITY))
        return True

    def _attach_variant(self, targets: list[Target], words: list[str]) -> bool:
        return self.attach_variant(self.index.catalog, targets, words)

    @staticmethod
    def attach_variant(catalog: Catalog, targets: list[Target], words: list[str]) -> bool:
        """Give the one earlier target without an option the option ``words`` name; True if done."""
        fits = []
        for i, t in enumerate(targets):
            product = catalog.get(t.handle) if t.handle else None
            if product is None:
                continue
            if t.variant_id is not None:
                # "the work shirt in navy, size M": the clause sharpens the option already taken
                variant_id, vwords = match_variant(product, [*t.variant_words, *words])
                new = [w for w in vwords if w not in t.variant_words]
                if variant_id and variant_id != t.variant_id and new and set(t.variant_words) <= set(vwords):
                    fits.append((i, variant_id, tuple(new)))
                continue
            variant_id, vwords = match_variant(product, words)
            if variant_id:
                fits.append((i, variant_id, vwords))
        # One product, even when "свечку ваниль и сандал" named it in two clauses (merged later)
        if len({(targets[i].handle, variant_id) for i, variant_id, _ in fits}) != 1:
            return False
        for i, variant_id, vwords in fits:
            t = targets[i]
            targets[i] = Target(t.handle, t.quantity, t.mode, variant_id, t.variant_words + vwords, t.via, t.phrase,
                                t.candidates, t.problem)
        return True

    def _implied(
        self, mode: Mode, last_shown: Sequence[str], last_product: str | None, cart_handles: Sequence[str]
    ) -> tuple[str, str] | None:
        if mode == "remove" and len(cart_handles) == 1:
            return cart_handles[0], "only-line"
        if last_product and (mode != "remove" or last_product in cart_handles):
            return last_product, "last"
        if len(last_shown) == 1:
            return last_shown[0], "reference"
        return None

    def _segment(
        self,
        seg: str,
        words: list[str],
        vwords_all: list[str],
        mode: Mode,
        is_set: bool,
        last_shown: Sequence[str],
        last_product: str | None,
        cart_handles: Sequence[str],
        message_words: Sequence[str] = (),
    ) -> Target | None:
        mentions = self.index.find(seg)
        if any(w.isdigit() or w in NUMBER_WORDS for w in words):
            # "2 pairs of nitrile gloves", "add 10 balls": beside a number, a unit word or the number
            # itself names no product ("Sawhorse (Pair)", "Ball Winder", "(pack of 10)") when another
            # word names one, or when adding more of the product in focus.
            units = [m for m in mentions if all(w.isdigit() or w in COUNT_NOUNS for w in m.words)]
            if len(units) < len(mentions) or (mode == "add" and last_product):
                mentions = [m for m in mentions if m not in units]
        mentions = in_order(fullest(mentions), words, self.index.catalog)
        named = {p for m in mentions[:1] for p in m.positions}
        # Numbers inside a product's name (a model number) are not quantities.
        qty, relative = parse_quantity([w for i, w in enumerate(words) if i not in named])
        catalog = self.index.catalog

        def target(handle: str, via: str, candidates: tuple[str, ...] = ()) -> Target:
            product = catalog.get(handle)
            variant_id, vwords = match_variant(product, vwords_all) if product else (None, ())
            # A number that is one of the product's option values ("the 20000 one") names the
            # variant; it is a quantity only when another number is there too.
            values = variant_numbers(product) & set(vwords) if variant_id else frozenset()
            own_qty, own_relative = count_in(words, product, values=values, skip=named)
            quantity = own_qty if not (own_relative and own_qty is None) else 1
            problem = quantity_problem(seg, own_qty, MAX_QUANTITY, values) if mode != "remove" else None
            return Target(handle, quantity, "set" if is_set and not own_relative else mode, variant_id, vwords,
                          via, seg.strip(), candidates, problem)

        if mentions and len(mentions[0].words) == 1 and last_shown:
            # "давай длинную, телескопическую" after a list of snow brushes: a word that is an option
            # of one product just shown names that option, not the other product whose name holds it
            lone = mentions[0].words[0]
            having = [h for h in last_shown if h != mentions[0].handle and (p := catalog.get(h)) is not None
                      and any(same_word(lone, w) for w in match_variant(p, vwords_all)[1])]
            if len(having) == 1:
                return target(having[0], "reference")
        if mentions:
            best = mentions[0]
            close = [m.handle for m in mentions[1:4] if m.score >= best.score - 0.05 and m.score > 0]
            if close:
                # Options named anywhere in the message break the tie ("the braidline one, 2m black").
                chosen = self._break_tie([best.handle, *close], [*vwords_all, *message_words], mode, last_shown,
                                         last_product, cart_handles)
                if chosen is not None:
                    return target(chosen, "name")
            return target(best.handle, "name", tuple(close))
        # Ordinals refer to the products just shown: "the second one", "the last one".
        for i, w in enumerate(words):
            if w in ORDINALS and last_shown:
                n = ORDINALS[w]
                idx = len(last_shown) - 1 if n == -1 else n - 1
                if 0 <= idx < len(last_shown) and not self._ordinal_of_another(words[i + 1:i + 2], last_shown[idx]):
                    return target(last_shown[idx], "ordinal")
        if "both" in words or "all" in words and "them" in words:
            return None  # handled by the agent from last_shown
        # "three of the small ones" after a list: a size of the product in focus, not a shown product
        # whose tags say "small breed"
        focus = last_product or (last_shown[0] if len(last_shown) == 1 else None)
        sized = catalog.get(focus) if focus and size_word(words) is not None else None
        if sized is not None and match_variant(sized, vwords_all)[0]:
            return target(sized.handle, "last")
        # "add two bottles of midnight blue": an option only one product of the shop has names it,
        # unless the product in focus has it too
        owner = self._only_owner(words)
        focused = catalog.get(focus) if focus else None
        if owner is not None and not (focused is not None and match_variant(focused, vwords_all)[0]):
            return target(owner, "option")
        # "the manual one" among several shown: the one whose own words say "manual".
        described = self.described(words, last_shown)
        if described is not None:
            return target(described, "described")
        # "I don't want the helmet anymore", "2 more of the socks": the cart's only helmet, socks.
        if mode == "remove" or relative or is_set:
            in_cart = self.described(words, cart_handles, at_least=1, strong=True)
            if in_cart is not None:
                return target(in_cart, "cart")
        if any(w in PRONOUNS for w in words) or (qty is not None and all(
            w in NEVER_NAMES or w in FILLER or w.isdigit() or w in NUMBER_WORDS or w in RELATIVE for w in words
        )):
            implied = self._implied(mode, last_shown, last_product, cart_handles)
            if implied and not self._names_another(words, implied[0]):
                return target(implied[0], implied[1])
        # A bare variant ("the 1kg", "in black") refers to the product in focus.
        if focus:
            product = catalog.get(focus)
            if product and match_variant(product, vwords_all)[0]:
                return target(focus, "last")
        # ... or to the one product just shown that has that option ("давай 172х205" after a list)
        having = [h for h in last_shown if (p := catalog.get(h)) is not None and match_variant(p, vwords_all)[1]]
        if len(having) == 1:
            return target(having[0], "reference")
        return None

    def _names_another(self, words: list[str], handle: str) -> bool:
        """Whether a word of the names of other products, and not of ``handle``'s, is said: "make it 1
        blender" (no single blender named) is not about the pans in focus."""
        for w in words:
            if w in PRONOUNS or w in FILLER or w in NEVER_NAMES:
                continue
            owners = {h for t, _ in self.index.lookup(w) for h in self.index.by_token.get(t, ())}
            if owners and handle not in owners:
                return True
        return False

    def _ordinal_of_another(self, after: list[str], handle: str) -> bool:
        """Whether the word after an ordinal names something the product it points at is not: "на
        вторую машину" is "for the second car", not the second product shown (a scent called "Новая
        машина" makes "машину" a catalog word, but not one of that product)."""
        word = after[0] if after else ""
        if not word or not (self.index.lookup(word) or any(same_word(word, t) for t in self.index.variant_vocab)):
            return False
        product = self.index.catalog.get(handle)
        if product is None:
            return False
        own = set(tokens(product.name)) | {t for v in product.variants for t in tokens(v.title)}
        return not any(same_word(word, t) for t in own)

    def _break_tie(
        self,
        handles: list[str],
        words: Sequence[str],
        mode: Mode,
        last_shown: Sequence[str],
        last_product: str | None,
        cart_handles: Sequence[str],
    ) -> str | None:
        """One of equally named products, chosen by the variant asked for, the cart, or the focus."""
        catalog = self.index.catalog
        # "bottle" means the Water Bottle more than the Bottle Cage: the name's head noun decides.
        heads = [h for h in handles if (p := catalog.get(h)) is not None and name_head(p.name) in words]
        if len(heads) == 1:
            return heads[0]
        by_variant = [h for h in handles if (p := catalog.get(h)) is not None and match_variant(p, words)[0]]
        if len(by_variant) == 1:
            return by_variant[0]
        if mode == "remove":
            in_cart = [h for h in handles if h in cart_handles]
            if len(in_cart) == 1:
                return in_cart[0]
        if last_product in handles:
            return last_product
        shown = [h for h in handles if h in last_shown]
        return shown[0] if len(shown) == 1 else None

    def described(self, words: Sequence[str], last_shown: Sequence[str], *, at_least: int = 2,
                  strong: bool = False, tags: bool = True) -> str | None:
        """The single product among ``last_shown`` whose text holds the message's describing words.

        With ``strong``, only what the product *is* counts (name, type, tags, options), never its
        description: "remove the cable" must not remove headphones whose description mentions one.
        Without ``tags``, a product's tags do not count either.
        """
        content = [w for w in words if w not in NEVER_NAMES and w not in FILLER and w not in PRONOUNS
                   and len(w) > 2 and not w.isdigit()]
        if len(last_shown) < at_least or not content:
            return None
        scores = []
        shown_names: set[str] = set()
        for handle in last_shown:
            product = self.index.catalog.get(handle)
            if product is None:
                continue
            options = " ".join(v.title for v in product.variants if not v.is_default)
            tagged = " ".join(product.tags) if tags else ""
            is_words = set(tokens(f"{product.name} {product.product_type} {tagged} {options}"))
            shown_names |= is_words
            text = is_words if strong else set(tokens(product.searchable_text()))
            # "ароматизаторов" is the name's "ароматизатор" in another case
            scores.append((sum(1 for w in content if w in text or w.rstrip("s") in text
                               or any(same_word(w, t) for t in text)), handle))
        if not strong and any(w in self.index.by_token and w not in shown_names for w in content):
            return None  # "an oil" after four serums names another kind of product, not one of them
        scores.sort(reverse=True)
        if scores and scores[0][0] > 0 and (len(scores) == 1 or scores[0][0] > scores[1][0]):
            return scores[0][1]
        return None

    def _merge(self, targets: list[Target]) -> list[Target]:
        """Join segments that name the same product (e.g. a variant given in its own clause).

        Options named in two clauses make one variant when together they name one ("in navy, size
        M" is M / Navy); two options of one kind ("the 4mm and the 4.5mm") stay two lines.
        """
        out: list[Target] = []
        for t in targets:
            prev = next((o for o in out if o.handle == t.handle and o.mode == t.mode), None)
            variant_id = (prev.variant_id or t.variant_id) if prev is not None else None
            if prev is not None and prev.variant_id and t.variant_id and prev.variant_id != t.variant_id:
                product = self._product(t)
                combined, hit = match_variant(product, [*prev.variant_words, *t.variant_words]) if product \
                    else (None, ())
                if combined is None or not set(prev.variant_words) | set(t.variant_words) <= set(hit):
                    out.append(t)  # "the 4mm and the 4.5mm": two lines
                    continue
                variant_id = combined
            if prev is None:
                out.append(t)
                continue
            i = out.index(prev)
            out[i] = Target(
                prev.handle,
                prev.quantity if prev.quantity is not None else t.quantity,
                prev.mode,
                variant_id,
                prev.variant_words + t.variant_words,
                prev.via,
                f"{prev.phrase}, {t.phrase}",
                prev.candidates,
            )
        return out


def _price_talk(raw: str, targets: Sequence[Target]) -> bool:
    """Did the shopper try to name a price? An amount that is a variant's title ("€50 card") is not one."""
    if not _PRICE_TALK.search(raw):
        return False
    leftover = _AMOUNT.sub(" ", raw)
    if _PRICE_TALK.search(leftover):
        return True
    chosen = {w for t in targets for w in t.variant_words}
    for amount in _AMOUNT.findall(raw):
        if not any(tok in chosen for tok in tokens(amount) if tok.isdigit()):
            return True
    return False


def name_head(name: str) -> str:
    """A product name's head noun: its last alphabetic word ("Bottle Cage" -> "cage")."""
    words = [w for w in tokens(name) if w.isalpha()]
    return words[-1] if words else ""
