"""Deterministic reading of cart commands.

"add 2 of the ethiopian and a french press", "make it two", "one more", "remove one",
"the second one", "the 1kg in black": quantities (digits and words), relative changes,
variants, and references to products just shown or just touched. No model involved;
whatever this cannot read is reported as unresolved so the agent can ask, suggest, or
(in LLM mode) let the model choose among catalog products.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, Sequence

from chatpay.core.catalog import Product
from chatpay.core.mentions import NEVER_NAMES, MentionIndex
from chatpay.core.text import NUMBER_WORDS, ORDINALS, tokens

Mode = Literal["add", "remove", "set"]

_UNIT = re.compile(r"(\d+(?:[.,]\d+)?)\s*(kg|g|gr|grams?|ml|l|oz|lb|lbs|cl|cm|mm|m)\b", re.IGNORECASE)
_SPLIT = re.compile(r"\s*(?:,|;|\band also\b|\bplus\b|\bas well as\b|\band\b|&|\+)\s*", re.IGNORECASE)
_PRICE_TALK = re.compile(
    r"\b(price|prices|priced|cost|costs|discount|free|cheaper|euros?|dollars?|pounds?|cents?|usd|eur|gbp)\b|[€$£]",
    re.IGNORECASE,
)
_AMOUNT = re.compile(
    r"[€$£]\s*\d+(?:[.,]\d+)?|\d+(?:[.,]\d+)?\s*(?:euros?|eur|dollars?|usd|pounds?|gbp|cents?|[€$£])",
    re.IGNORECASE,
)
ONE_AS_ITEM = frozenset({"the", "that", "this", "which", "other", "same", "big", "small", "large", "cheap",
                         "cheaper", "expensive", "new", *ORDINALS})
PRONOUNS = frozenset("it that this them those these one ones same".split())
RELATIVE = frozenset("another more extra additional again".split())
SET_CUES = ("make it", "make that", "make them", "change it to", "change that to", "change to", "set it to",
            "set to", "instead", "only want", "just want", "total of", "in total", "update to", "make the")


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


@dataclass(frozen=True)
class CartCommand:
    targets: tuple[Target, ...]
    price_talk: bool = False
    unresolved: tuple[str, ...] = ()  # phrases that named nothing we know
    notes: tuple[str, ...] = field(default_factory=tuple)


def _normalise_units(text: str) -> str:
    return _UNIT.sub(lambda m: f"{m.group(1).replace(',', '.')}{m.group(2).lower().rstrip('s')}", text)


def parse_quantity(words: Sequence[str]) -> tuple[int | None, bool]:
    """A quantity in the words and whether it is relative ("2 more", "another")."""
    relative = any(w in RELATIVE for w in words)
    for i, w in enumerate(words):
        if w.isdigit():
            return int(w), relative
        if w in ("x",) and i + 1 < len(words) and words[i + 1].isdigit():
            return int(words[i + 1]), relative
        m = re.fullmatch(r"x?(\d+)x?", w)
        if m and not re.fullmatch(r"\d+(kg|g|ml|l|oz|lb|cl|cm|mm|m)", w):
            return int(m.group(1)), relative
    for i, w in enumerate(words):
        if w in NUMBER_WORDS and w not in ("a", "an", "one", "un", "une", "uno", "una", "ein", "eine"):
            if w == "couple" and (i + 1 >= len(words) or words[i + 1] != "of"):
                continue
            return NUMBER_WORDS[w], relative
    for i, w in enumerate(words):
        # "remove one" is a quantity; "the second one", "that one" name an item.
        if w in ("one", "single") and (i == 0 or words[i - 1] not in ONE_AS_ITEM):
            return 1, relative
    if relative:
        return 1, True
    return None, False


def match_variant(product: Product, words: Sequence[str]) -> tuple[str | None, tuple[str, ...]]:
    """The product's variant named by ``words`` ("1kg", "black", "ground"), if any."""
    present = set(words)
    best: tuple[int, str | None, tuple[str, ...]] = (0, None, ())
    for v in product.variants:
        if v.is_default:
            continue
        vt = [t for t in tokens(_normalise_units(v.title)) if t not in NEVER_NAMES]
        hit = tuple(t for t in vt if t in present)
        if len(hit) > best[0] or (len(hit) == best[0] and hit and len(vt) == len(hit)):
            best = (len(hit), v.id, hit)
    return (best[1], best[2]) if best[0] else (None, ())


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
        raw = _normalise_units(text)
        price_talk = bool(_PRICE_TALK.search(raw))
        lowered = " ".join(tokens(raw))
        is_set = mode != "remove" and any(cue in lowered for cue in SET_CUES)
        segments = [s for s in _SPLIT.split(raw) if s and s.strip()]
        targets: list[Target] = []
        unresolved: list[str] = []
        for seg in segments or [raw]:
            seg = _AMOUNT.sub(" ", seg)
            words = tokens(seg)
            if not words:
                continue
            if price_talk and _PRICE_TALK.search(seg) and not self.index.find(seg):
                continue  # "...and set its price to 1 euro": ignored, prices come from the catalog
            target = self._segment(seg, words, mode, is_set, last_shown, last_product, cart_handles)
            if target is None:
                if any(w not in NEVER_NAMES and not w.isdigit() and w not in NUMBER_WORDS for w in words):
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
                targets.append(Target(implied[0], qty, q_mode, via=implied[1], phrase=raw.strip()))
        merged = self._merge(targets)
        return CartCommand(tuple(merged), price_talk, tuple(unresolved))

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
        mode: Mode,
        is_set: bool,
        last_shown: Sequence[str],
        last_product: str | None,
        cart_handles: Sequence[str],
    ) -> Target | None:
        qty, relative = parse_quantity(words)
        target_mode: Mode = "set" if is_set and not relative else mode
        mentions = self.index.find(seg)
        if mentions:
            best = mentions[0]
            close = tuple(m.handle for m in mentions[1:4] if m.score >= best.score - 0.05 and m.score > 0)
            if mode == "remove" and close:
                in_cart = [h for h in (best.handle, *close) if h in cart_handles]
                if len(in_cart) == 1:
                    best_handle, close = in_cart[0], ()
                else:
                    best_handle = best.handle
            else:
                best_handle = best.handle
            product = self.index.catalog.get(best_handle)
            variant_id, vwords = match_variant(product, words) if product else (None, ())
            return Target(best_handle, qty, target_mode, variant_id, vwords, "name", seg.strip(), close)
        # Ordinals refer to the products just shown: "the second one", "the last one".
        for w in words:
            if w in ORDINALS and last_shown:
                n = ORDINALS[w]
                idx = len(last_shown) - 1 if n == -1 else n - 1
                if 0 <= idx < len(last_shown):
                    handle = last_shown[idx]
                    product = self.index.catalog.get(handle)
                    variant_id, vwords = match_variant(product, words) if product else (None, ())
                    return Target(handle, qty, target_mode, variant_id, vwords, "ordinal", seg.strip())
        if "both" in words or "all" in words and "them" in words:
            return None  # handled by the agent from last_shown
        if any(w in PRONOUNS for w in words) or (qty is not None and all(
            w in NEVER_NAMES or w.isdigit() or w in NUMBER_WORDS for w in words
        )):
            implied = self._implied(mode, last_shown, last_product, cart_handles)
            if implied:
                product = self.index.catalog.get(implied[0])
                variant_id, vwords = match_variant(product, words) if product else (None, ())
                return Target(implied[0], qty if not (relative and qty is None) else 1, target_mode, variant_id,
                              vwords, implied[1], seg.strip())
        # A bare variant ("the 1kg", "in black") refers to the product in focus.
        focus = last_product or (last_shown[0] if len(last_shown) == 1 else None)
        if focus:
            product = self.index.catalog.get(focus)
            if product:
                variant_id, vwords = match_variant(product, words)
                if variant_id:
                    return Target(focus, qty, target_mode, variant_id, vwords, "last", seg.strip())
        return None

    @staticmethod
    def _merge(targets: list[Target]) -> list[Target]:
        """Join segments that name the same product (e.g. a variant given in its own clause)."""
        out: list[Target] = []
        for t in targets:
            prev = next((o for o in out if o.handle == t.handle and o.mode == t.mode), None)
            if prev is None:
                out.append(t)
                continue
            i = out.index(prev)
            out[i] = Target(
                prev.handle,
                prev.quantity if prev.quantity is not None else t.quantity,
                prev.mode,
                prev.variant_id or t.variant_id,
                prev.variant_words + t.variant_words,
                prev.via,
                f"{prev.phrase}, {t.phrase}",
                prev.candidates,
            )
        return out
