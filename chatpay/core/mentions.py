"""Finding catalog products named in a message, typos and all, and delexicalising it.

"add 2 of the etiopian yirgachefe" names a product whatever the shop; the router should
decide intent from "add 2 of the PRODUCT", never from which products a store sells.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from chatpay.core.catalog import Catalog
from chatpay.core.text import FILLER, edit_distance, sound, sound_index, tokens, typo_budget

# Words whose lookups one index keeps before starting over: a chat's working vocabulary is a few
# thousand words, and an entry is a few hundred bytes, so this bounds the cache near a few MB.
LOOKUP_CACHE = 20_000

# Words that carry the shopper's intent or grammar; they never count as naming a product.
NEVER_NAMES = frozenset(
    """a an the of and or for with to in on at my me i you your we our it its is are be do does did
    have has had want wanted need would like love get got give buy take put add adding added remove
    removing delete drop cancel cart basket bag checkout pay paying order orders show see view list
    price prices cost costs much many how what which who where when why please pls thanks thank hi
    hello hey yes no not dont don't can could will shall should some any more another one two three
    four five six seven eight nine ten all everything anything something this that these those them
    there here out stock available sell sells selling from by about make set just also too really
    same again only each per instead other else new total subtotal clear empty up down off over away back come
    на в во с со для и а но ну же ли бы или по из к от до за у о об мне мой моя это этот эту его её ее их ещё еще
    добавь добавьте добавить добавлю положи положите закинь кинь беру берем возьму возьмем хочу куплю закажу
    убери уберите удали корзину корзина корзине сколько стоит есть
    сделай сделайте поставь пусть будет всего оставь""".split()
)


# Everyday words that may sit in a product's name ("Tea Time Gift Set") but never name it alone.
COMMON = frozenset(
    """time day night home house good best great gift set pack box kit bag classic original pure fresh premium
    special little big small large mini extra super daily everyday morning evening light dark black white red
    blue green gold silver plus pro max one first last new old free world life love happy sweet hot cold
    warm cool travel starter deluxe essential essentials signature select selection collection edition""".split()
)


_ENDING_LETTERS = frozenset("аяоеиыуюйьмвх")


def _is_cyrillic(word: str) -> bool:
    return bool(word) and "\u0400" <= word[0] <= "\u04ff"


DERIVED_ROOT, DERIVED_SUFFIX = 6, 6  # see MentionIndex._derived


def _without_ending(word: str) -> str:
    """A Russian word without its case or number ending (up to three final vowels, й, ь, м, в, х;
    at least four letters kept): "компрессора" and "компрессор", "щётки" and "щётка" agree."""
    end = len(word)
    while end > 4 and len(word) - end < 3 and word[end - 1] in _ENDING_LETTERS:
        end -= 1
    return word[:end]


@dataclass(frozen=True)
class Mention:
    """A product named in the text: which, how well, and where (token positions)."""

    handle: str
    score: float
    start: int
    end: int  # exclusive
    words: tuple[str, ...]
    positions: tuple[int, ...] = ()


@dataclass(frozen=True)
class Delexicalised:
    """The message with product mentions replaced by PRODUCT and variants by VARIANT."""

    original: str
    text: str
    tokens: tuple[str, ...]
    mentions: tuple[Mention, ...]
    variant_words: tuple[str, ...] = ()


class MentionIndex:
    """Name and variant vocabularies of one catalog, for fast fuzzy lookups."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.name_tokens: dict[str, tuple[str, ...]] = {}
        self.by_token: dict[str, set[str]] = defaultdict(set)
        variant_vocab: set[str] = set()
        for p in catalog:
            toks = tuple(t for t in tokens(p.name) if t not in NEVER_NAMES)
            self.name_tokens[p.handle] = toks
            for t in toks:
                self.by_token[t].add(p.handle)
            for v in p.variants:
                if not v.is_default:
                    variant_vocab.update(t for t in tokens(v.title) if t not in NEVER_NAMES and not t.isdigit())
        n = max(len(catalog), 1)
        self.idf = {t: math.log(1 + n / len(h)) for t, h in self.by_token.items()}
        self.variant_vocab = frozenset(variant_vocab)
        self._variant_endless = frozenset(_without_ending(t) for t in variant_vocab if _is_cyrillic(t))
        # Typo candidates by length (only words of 4 letters or more take typos), in vocabulary order,
        # with their letters: an edit changes a word's set of letters by at most two, so a cheap set
        # difference rules most candidates out before the edit distance is computed.
        self._by_length: dict[int, list[tuple[int, str, frozenset[str]]]] = defaultdict(list)
        for order, t in enumerate(self.by_token):
            if len(t) >= 4:
                self._by_length[len(t)].append((order, t, frozenset(t)))
        # Russian words change their endings with case and number ("компрессора", "щётки"): name
        # words by their ending-less form, so an inflected word is the word, not a typo of it.
        self._endless: dict[str, list[str]] = defaultdict(list)
        for t in self.by_token:
            if _is_cyrillic(t):
                self._endless[_without_ending(t)].append(t)
        self._sounds: dict[str, list[str]] | None = None  # sound key -> words; built on first need
        self._owners: dict[str, set[str]] | None = None  # option word -> products (option_owners)
        # Lookups depend only on the word and this (immutable) vocabulary: chat repeats its words, and
        # a worker looks every word of every message up, so the answers are kept (bounded).
        self._looked_up: dict[str, tuple[tuple[str, float], ...]] = {}

    def lookup(self, word: str) -> tuple[tuple[str, float], ...]:
        """Vocabulary words matching ``word`` exactly or within its typo budget, with a weight."""
        known = self._looked_up.get(word)
        if known is None:
            if len(self._looked_up) >= LOOKUP_CACHE:
                self._looked_up.clear()
            known = self._looked_up[word] = tuple(self._lookup(word))
        return known

    def _lookup(self, word: str) -> list[tuple[str, float]]:
        if word in NEVER_NAMES or len(word) < 2:
            return []
        if word in self.by_token:
            return [(word, 1.0)]
        if _is_cyrillic(word):
            same = self._endless.get(_without_ending(word))
            if same:
                return [(t, 1.0) for t in same]  # the same word in another case: not a typo
        budget = 0 if word in FILLER else typo_budget(word)
        if budget == 0:
            return []
        found = []
        letters = frozenset(word)
        n = len(word)
        candidates = []
        for length in range(n - budget, n + budget + 1):
            for order, t, its_letters in self._by_length.get(length, ()):
                # A typo in the first letter is rarer, but happens ("etiopian" is fine; "kenia").
                if t[0] != word[0] and (n <= 4 or abs(length - n) > 1):
                    continue
                if len(letters ^ its_letters) > 2 * budget:
                    continue
                candidates.append((t[0] != word[0], order, t))
        for _, _, t in sorted(candidates):
            d = edit_distance(word, t, budget)
            if d <= min(budget, typo_budget(t)):
                found.append((t, 1.0 - 0.15 * d))
        # Plural and singular forms ("mugs" / "mug").
        for t in (word[:-1], word + "s") if word.endswith("s") else (word + "s",):
            if t in self.by_token:
                found.append((t, 0.95))
        if not found and _is_cyrillic(word):
            found.extend((t, 0.85) for t in self._derived(word))
        if not found and len(word) >= 4 and word.isalpha():
            found.extend((t, 0.85) for t in self._sound_alike(word))  # "карку" names Carku
        return found

    def option_owners(self) -> dict[str, set[str]]:
        """Option word -> the products that have an option with it (built on first need, kept)."""
        if self._owners is None:
            owners: dict[str, set[str]] = {}
            for p in self.catalog:
                for v in p.variants:
                    if not v.is_default:
                        for t in tokens(v.title):
                            owners.setdefault(t, set()).add(p.handle)
            self._owners = owners
        return self._owners

    def _derived(self, word: str) -> list[str]:
        """Russian name words made from ``word`` by a suffix: "телескопом" names "телескопической",
        "пластика" names "пластиковый". Only a stem of six letters or more, and a suffix of at most
        six: a shorter stem starts too many unrelated words."""
        root = _without_ending(word)
        if len(root) < DERIVED_ROOT:
            return []
        return [t for endless, words in self._endless.items()
                if endless.startswith(root) and 0 < len(endless) - len(root) <= DERIVED_SUFFIX for t in words]

    def _sound_alike(self, word: str) -> list[str]:
        """Name words that sound like ``word`` in either script (see :func:`chatpay.core.text.sound`)."""
        if self._sounds is None:
            self._sounds = sound_index(self.by_token, 4)
        return self._sounds.get(sound(word), [])

    def names_besides(self, words: list[str], handle: str) -> bool:
        """Whether a word of ``words`` is a word of other products' names and not of ``handle``'s:
        "ok add the starter kit" names another product than the fish flakes offered."""
        return any(w not in NEVER_NAMES and w in self.by_token and handle not in self.by_token[w] for w in words)

    def find(self, text: str, *, min_score: float = 0.5) -> list[Mention]:
        """Products named in ``text``, best first; overlapping weaker mentions are kept for ambiguity checks."""
        words = tokens(text)
        hits: dict[str, dict[str, tuple[float, int]]] = defaultdict(dict)  # handle -> name token -> (w, pos)
        for pos, w in enumerate(words):
            for vocab, weight in self.lookup(w):
                for handle in self.by_token[vocab]:
                    prev = hits[handle].get(vocab)
                    if prev is None or prev[0] < weight:
                        hits[handle][vocab] = (weight, pos)
        # A one-letter word names nothing alone, but beside a word of the same name it is part of
        # it: the "c" of "usb c" tells "USB-C to USB-C" from "USB-A to USB-C".
        for pos, w in enumerate(words):
            if len(w) == 1 and w.isalpha() and w not in NEVER_NAMES:
                for handle in self.by_token.get(w, ()):
                    near = {p for _, p in hits.get(handle, {}).values()}
                    if near & {pos - 1, pos + 1} and w not in hits[handle]:
                        hits[handle][w] = (1.0, pos)
        mentions = []
        for handle, matched in hits.items():
            name = self.name_tokens[handle]
            total = sum(self.idf[t] for t in set(name)) or 1.0  # a word said twice in a name counts once
            got = sum(self.idf[t] * w for t, (w, _) in matched.items())
            coverage = got / total
            distinctive = max(self.idf[t] * w for t, (w, _) in matched.items())
            # A single word names a product when few products share it.
            rare = distinctive >= math.log(1 + len(self.catalog) / 2.0)
            only_variant_words = all(t in self.variant_vocab or t in COMMON for t in matched)
            score = coverage if coverage >= min_score or not rare or only_variant_words else max(coverage, min_score)
            if score < min_score:
                continue
            positions = [p for _, p in matched.values()]
            mentions.append(
                Mention(handle, round(score, 4), min(positions), max(positions) + 1, tuple(sorted(matched)),
                        tuple(sorted(set(positions))))
            )
        mentions.sort(key=lambda m: (-m.score, -len(m.words), m.handle))
        return mentions

    def delexicalise(self, text: str) -> Delexicalised:
        words = tokens(text)
        mentions = self.find(text)
        replaced: dict[int, str] = {}
        for m in mentions:
            for pos in m.positions:
                replaced[pos] = "PRODUCT"
        variant_words = []
        for pos, w in enumerate(words):
            if pos not in replaced and w not in NEVER_NAMES and (
                    w in self.variant_vocab or (_is_cyrillic(w) and _without_ending(w) in self._variant_endless)):
                replaced[pos] = "VARIANT"
                variant_words.append(w)
        out: list[str] = []
        for pos, w in enumerate(words):
            tok = replaced.get(pos, w)
            if tok in ("PRODUCT", "VARIANT") and out and out[-1] == tok:
                continue
            out.append(tok)
        if "?" in text:
            out.append("?")
        return Delexicalised(text, " ".join(out), tuple(words), tuple(mentions), tuple(variant_words))


# Ties between mentions, settled by what the message says (used by the cart parser).


def fullest(mentions: list[Mention]) -> list[Mention]:
    """``mentions`` without the tied ones another tied mention names more of the message than.

    Among mentions scored alike (within 0.05, the band the ambiguity check uses), one whose matched
    words are a strict part of another's drops out: "the oat cleanser" names the oat one, not every
    cleanser. Mentions matching different words stay a real ambiguity.
    """
    if len(mentions) < 2:
        return mentions
    best = mentions[0].score
    tied = [m for m in mentions if m.score >= best - 0.05]
    kept = [m for m in tied if not any(set(m.positions) < set(o.positions) for o in tied)]
    kept.sort(key=lambda m: -len(m.positions))
    return kept + [m for m in mentions if m not in tied]


def in_order(mentions: list[Mention], words: list[str], catalog: Catalog) -> list[Mention]:
    """Tied mentions told apart by word order: "usb c to usb c" and "usb a to usb c" share every
    word, but only one name has "c to" in it. The name with most of the message's word pairs
    wins; without a single best, the tie stands."""
    if len(mentions) < 2:
        return mentions
    # "a screen protector for iphone 15": what comes after "for" says what it fits, not what it
    # is, so a product named wholly after it gives way to one named wholly before it
    cut = next((i for i, w in enumerate(words) if w in ("for", "для")), None)
    if cut is not None and min(mentions[0].positions or (mentions[0].start,)) > cut:
        before = [m for m in mentions if max(m.positions or (m.start,)) < cut]
        if len(before) == 1:  # and what it fits is no rival for the ambiguity check
            return [before[0], *(m for m in mentions if m is not before[0]
                                 and min(m.positions or (m.start,)) < cut)]
    first = mentions[0]
    tied = [m for m in mentions if m.score >= first.score - 0.05 and len(m.positions) == len(first.positions)]
    if len(tied) < 2:
        return mentions
    said = set(zip(words, words[1:], strict=False))

    def pairs(m: Mention) -> int:
        product = catalog.get(m.handle)
        name = tokens(product.name) if product is not None else []
        return len(said & set(zip(name, name[1:], strict=False)))

    ranked = sorted(((pairs(m), m) for m in tied), key=lambda pm: -pm[0])
    if ranked[0][0] > ranked[1][0]:
        return [ranked[0][1], *(m for m in mentions if m not in tied)]
    return mentions
