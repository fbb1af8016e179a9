"""Words for retrieval: folding, tokens, a light stemmer, commerce filler and content terms.

Everything here is about English shopping talk in general; nothing names a product or a shop.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

_WORD = re.compile(r"[a-z0-9]+")
_CONTRACTIONS = (
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"\bcan't\b"), "can not"),
    (re.compile(r"n't\b"), " not"),
    (re.compile(r"'m\b"), " am"),
    (re.compile(r"'re\b"), " are"),
    (re.compile(r"'ve\b"), " have"),
    (re.compile(r"'ll\b"), " will"),
    (re.compile(r"'d\b"), " would"),
    (re.compile(r"'s\b"), ""),  # possessive (or "is"; either way no content)
)

# Grammar, shopping talk and everyday verbs that never say *what* is wanted. Product words
# ("set", "kit", "light", "case", "home") must never be here: a shop may sell them.
STOPWORDS = frozenset(
    """a an the and or but of for with without to in on at by from into onto about as than then so
    my me i im you your yours u ya we our us it its is are was were be been being am do does did
    doing done have has had having get got gets getting give gives want wants wanted need needs
    needed would could should can may might must will shall like likes love looking look find finding
    search searching seek seeking sell sells selling sold carry carries stock stocked offer offers
    buy buying bought purchase order ordering please pls plz thanks thank thx hi hello hey ok okay yes
    no not some any anything something someone somebody anyone everyone thing things stuff one ones
    kind kinds sort type this that these those there here what which who whom whose where when why
    how whats wheres show tell let know recommend recommendation suggest suggestion idea ideas help
    helps maybe perhaps just also too very really quite much many more most lot lots little bit good
    best better great nice cool cheap cheaper cheapest affordable expensive pricey price prices cost
    costs costing available availability currently right now today still else other another mine him
    her his she he they them their theirs if all every each either neither both few own same such only
    myself yourself himself herself itself ourselves themselves guys folks keep keeps kept go goes
    going went gone hold holds take takes taking took use uses using used put puts come comes coming
    came see seen seeing saw try trying tried wonder wondering curious able way ways make makes
    making made work works working fit fits will wont would choose decide prefer
    while near over under because though although whether via per""".split()
)

# Words that end the noun phrase naming what is wanted: "refills | for a fountain pen",
# "a bag | I can wash", "a candle | smells of pine". Not "of": in "a jar of
# honey" the honey is wanted.
BOUNDARIES = frozenset(
    """for with without to in on at from by about into onto over under near like than while so
    because that which who whom whose where when if i you we they he she it my your our their is are
    was were be been being has have had does do did can could will would should may might must
    taste tastes tasted smell smells come comes go goes fit fits work works make makes keep keeps
    contain contains need needs use uses help helps get gets hold holds""".split()
)
# Adjectives that end a phrase without being what is wanted: in "my soup hot" the soup is.
ADJECTIVES = frozenset(
    """hot cold warm cool dry wet damp fresh strong weak mild big small large little tiny huge long
    short tall quiet loud soft hard heavy fast slow new old clean safe easy simple comfortable
    durable sturdy cheap pretty beautiful cute lovely fancy sweet sour bitter smooth healthy tasty
    delicious warmer drier""".split()
)
HEAD_WEIGHT = 1.5  # the head noun of the first phrase ("refills" in "refills for a fountain pen")
TAIL_WEIGHT = 0.6  # words after the first phrase ("fountain pen")
UNKNOWN_TAIL_WEIGHT = 0.3  # such a word no product holds ("won't upset my stomach") barely counts
UNKNOWN_FIRST_WEIGHT = 1.5  # one inside it ("*printer* ink", "*protein* bars") says the shop lacks the thing

# Words that, alone, ask about the whole shop ("what do you sell?", "show me everything").
OVERVIEW_WORDS = frozenset(
    """product products item items everything anything stuff thing things range catalog catalogue
    collection inventory menu selection shop store offer offering offerings sell selling carry stock
    have all kind kinds type types sort sorts category categories whole entire full complete browse
    list available options choice choices goods merchandise merch sale guys see""".split()
)
OVERVIEW_CUES = frozenset(
    """sell selling sold product products item items everything range catalog catalogue collection
    inventory menu selection offer offering offerings carry stock browse categories category goods
    merchandise have available shop store sale""".split()
)
# A question about where or when is about the shop's hours, not its range.
_NOT_OVERVIEW = frozenset("where when open opening hours address located location".split())

# Phrases removed from the shopper-facing content query ("do you sell shampoo" -> "shampoo").
_FILLER_PHRASES: tuple[tuple[str, ...], ...] = tuple(
    tuple(p.split())
    for p in sorted(
        """do you guys have|do you guys sell|do you have|do you sell|do you carry|do you stock|do you offer
        |do you do|do you make|do you got|have you got|have you any|have you|have u got|got any|you got
        |you have|you sell|you carry|you stock|is there|are there|there is|there are|i am looking for
        |im looking for|looking for|i am after|i would like|i want|i need|i wanna|can i get|can i have
        |can i buy|could i get|could i have|may i have|where can i find|where can i get|where can i buy
        |something for|something to|something that|something which|something like|anything for
        |anything to|anything that|anything like|show me|tell me about|what about|how about|give me
        |in stock|for sale|please|pls|thanks|thank you|any|some|how much is|how much are|how much
        |what is the price of|price of|cost of|would you recommend|can you recommend|do you recommend
        |recommend me|suggest me""".replace("\n", " ").split("|"),
        key=lambda p: -len(p.split()),
    )
    if p.strip()
)


def fold(text: str) -> str:
    """Lower-case, strip accents and normalise apostrophes: "Café’s" -> "cafe's"."""
    lowered = text.lower()
    if lowered.isascii():  # the common case, and 100k descriptions make it worth the check
        return lowered.replace("`", "'")
    decomposed = unicodedata.normalize("NFKD", lowered.replace("’", "'").replace("`", "'"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    """Folded words with contractions expanded and possessives dropped."""
    folded = fold(text)
    if "'" in folded:
        for pattern, repl in _CONTRACTIONS:
            folded = pattern.sub(repl, folded)
    return _WORD.findall(folded)


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """A light English stemmer for plurals: "mugs" -> "mug", "berries" -> "berry"."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def terms(text: str) -> list[str]:
    """Stemmed words of a product field, stopwords kept out."""
    return [stem(w) for w in words(text) if w not in STOPWORDS]


@dataclass(frozen=True)
class QueryText:
    """A query taken apart.

    Attributes:
        words: every folded word, in order.
        stems: every word stemmed, in order (for phrase matching against policy keywords).
        content_query: the query without commerce filler, for messages ("shampoo").
        content: the stemmed content terms that retrieval scores, in order, without repeats.
        weights: one per content term: the head noun weighs most, words after the first
            phrase least.
        head: the head noun of the first phrase, the thing asked for, if any.
        unknown_weights: the weights to use for terms no product holds: words outside the
            first phrase count little then, words inside it in full ("*printer* ink").
    """

    words: tuple[str, ...]
    stems: tuple[str, ...]
    content_query: str
    content: tuple[str, ...]
    weights: tuple[float, ...] = ()
    head: str | None = None
    unknown_weights: tuple[float, ...] = ()

    @property
    def asks_for_overview(self) -> bool:
        """True for "what do you sell?" and kin: a cue word and nothing more specific."""
        if not any(w in OVERVIEW_CUES for w in self.words) or _NOT_OVERVIEW.intersection(self.words):
            return False
        return all(w in OVERVIEW_WORDS or w in STOPWORDS for w in self.words)


def _drop_filler(tokens: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for phrase in _FILLER_PHRASES:
            if tuple(tokens[i : i + len(phrase)]) == phrase:
                i += len(phrase)
                break
        else:
            out.append(tokens[i])
            i += 1
    return out


def _first_phrase(kept: list[str]) -> list[str]:
    """Content words of the first phrase that has any: the part naming what is wanted."""
    phrase: list[str] = []
    for w in kept:
        if w in BOUNDARIES:
            if phrase:
                break
            continue
        if w not in STOPWORDS:
            phrase.append(stem(w))
    return phrase


def parse_query(query: str) -> QueryText:
    """Split ``query`` into its words, its shopper-facing content and its content terms."""
    tokens = words(query)
    kept = _drop_filler(tokens)
    while kept and kept[0] in STOPWORDS:
        kept.pop(0)
    while kept and kept[-1] in STOPWORDS:
        kept.pop()
    content: list[str] = []
    for w in kept:
        s = stem(w)
        if w not in STOPWORDS and s not in content:
            content.append(s)
    first = _first_phrase(kept)
    nouns = [t for t in first if t not in ADJECTIVES]
    head = nouns[-1] if nouns else None
    weights = tuple(
        HEAD_WEIGHT if t == head else 1.0 if t in first else TAIL_WEIGHT for t in content
    )
    unknown = tuple(UNKNOWN_FIRST_WEIGHT if w >= 1.0 else UNKNOWN_TAIL_WEIGHT for w in weights)
    return QueryText(
        tuple(tokens), tuple(stem(w) for w in tokens), " ".join(kept), tuple(content), weights, head, unknown
    )
