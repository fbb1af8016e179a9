"""The catalog lexicon: what the merchant's own words say, with how much each word tells.

Built once per catalog version from every product's name, type, tags, vendor, option values
and description, plus the store's name. For each stem it keeps the products that hold it, in
which fields, and a field-weighted BM25 weight per product; its document frequency says how
much it tells products apart ("cable" in a cable shop tells little, a model name a lot).

A query is read against it: stems the catalog lacks are corrected to the nearest catalog
word when they are close enough (Damerau-Levenshtein through ``rapidfuzz``, so a transposed
pair of letters is one edit), and scored with BM25 over the postings in numpy. Everything a
ranking feature needs per candidate product (coverage in strong fields, name precision, head
match) comes from the same postings.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein

from chatpay.core.catalog import Catalog, PolicyDoc, Product
from chatpay.core.text import sound, sound_index
from chatpay.nlu.text import is_stopword, stem, tokens

# Fields in the order of :func:`product_fields`, with the BM25F weight of a word found there.
# The weights follow BM25F practice (a title counts several times the body); what they do to the
# ranking is measured by the fitted ranker's features, which see each field's coverage separately.
FIELDS = ("name", "type", "tags", "vendor", "options", "description")
FIELD_WEIGHTS = np.array([3.0, 2.0, 2.0, 1.0, 1.5, 1.0], dtype=np.float32)
NAME, TYPE, TAGS, VENDOR, OPTIONS, DESCRIPTION = range(6)
STRONG = (1 << NAME) | (1 << TYPE) | (1 << TAGS) | (1 << VENDOR) | (1 << OPTIONS)  # what a product *is*
BM25_K1, BM25_B = 1.2, 0.75  # Robertson's defaults


def product_fields(p: Product) -> tuple[str, ...]:
    variant_words = {v.title for v in p.variants if not v.is_default}
    variant_words.update(value for v in p.variants for _, value in v.options)
    return (p.name, p.product_type, " ".join(p.tags), p.vendor, " ".join(sorted(variant_words)), p.description)


def _policy_phrases(policy: PolicyDoc) -> list[tuple[str, ...]]:
    phrases = [tuple(stem(t) for t in tokens(k) if not is_stopword(t)) for k in policy.keywords]
    phrases.append(tuple(stem(t) for t in tokens(policy.title) if not is_stopword(t)))
    return [p for p in phrases if p]


def typo_budget(token: str) -> int:
    """Edits forgiven in a word of this length: none up to 4 letters, 1 up to 7, then 2."""
    n = len(token)
    if n <= 4 or token[0].isdigit():
        return 0
    return 1 if n <= 7 else 2


@dataclass
class Posting:
    docs: np.ndarray  # int32 product positions
    weights: np.ndarray  # float32 BM25 term-frequency part per product (idf applied at query time)
    masks: np.ndarray  # uint8 bit set of fields holding the stem


@dataclass(frozen=True)
class QueryTerm:
    """One content word of a query, as read against the lexicon."""

    surface: str
    stem: str
    corrected: bool = False
    known: bool = True
    idf: float = 0.0
    original: str = ""  # the word as the shopper wrote it, when it was corrected


@dataclass
class ReadQuery:
    terms: list[QueryTerm]
    bm25: np.ndarray | None = None  # per product

    @property
    def stems(self) -> list[str]:
        return [t.stem for t in self.terms]

    @property
    def corrected_text(self) -> str:
        return " ".join(t.surface for t in self.terms)


class CatalogLexicon:
    """Postings, document frequencies and the vocabulary of one catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.size = len(catalog)
        self.handles = tuple(p.handle for p in catalog)
        self.index_of = {h: i for i, h in enumerate(self.handles)}
        by_stem: dict[str, dict[int, list[float]]] = defaultdict(dict)
        self.name_sizes = np.zeros(self.size, dtype=np.float32)
        lengths = np.zeros(self.size, dtype=np.float32)
        surfaces: dict[str, str] = {}
        strong_surfaces: set[str] = set()
        for doc, product in enumerate(catalog):
            name_stems: set[str] = set()
            for f, text in enumerate(product_fields(product)):
                for tok in tokens(text):
                    # A name may hold a function word ("Watering Can", "All-Weather"): kept there, so
                    # "cans" finds it, while the query side drops the bare function word ("can I...").
                    if f == DESCRIPTION and is_stopword(tok):
                        continue
                    s = stem(tok)
                    surfaces.setdefault(tok, s)
                    if f != DESCRIPTION:
                        strong_surfaces.add(tok)
                    slot = by_stem[s].setdefault(doc, [0.0, 0.0])
                    slot[0] += float(FIELD_WEIGHTS[f])
                    slot[1] = float(int(slot[1]) | (1 << f))
                    lengths[doc] += float(FIELD_WEIGHTS[f])
                    if f == NAME and not is_stopword(tok):
                        name_stems.add(s)
            self.name_sizes[doc] = max(1, len(name_stems))
        avg = float(lengths.mean()) if self.size else 1.0
        norm = BM25_K1 * (1 - BM25_B + BM25_B * lengths / max(avg, 1e-6))
        self.postings: dict[str, Posting] = {}
        for s, docs in by_stem.items():
            ids = np.fromiter(docs.keys(), dtype=np.int32, count=len(docs))
            tf = np.fromiter((v[0] for v in docs.values()), dtype=np.float32, count=len(docs))
            masks = np.fromiter((int(v[1]) for v in docs.values()), dtype=np.uint8, count=len(docs))
            self.postings[s] = Posting(ids, tf * (BM25_K1 + 1) / (tf + norm[ids]), masks)
        self.vocabulary = surfaces  # surface form -> stem
        self._surface_list = list(surfaces)
        self._strong_list = sorted(strong_surfaces)
        self._sounds: dict[str, list[str]] | None = None  # built on first need (see sound_alike)
        self._sound_keys: list[str] = []
        # The names of options ("Colour", "Size", "Цвет"): words about products though no product's text holds them
        self.option_stems = frozenset(stem(t) for p in catalog for v in p.variants for name, _ in v.options
                                      for t in tokens(name))
        self.store_stems = frozenset(stem(t) for t in tokens(catalog.store_name or "") if not is_stopword(t))
        # Each policy's keywords and title as stem phrases (the search answers a policy question from
        # them); their words are the store's vocabulary too: "доставка" is the delivery policy's word,
        # never a typo for a product's "подставка".
        self.policy_phrases = tuple(_policy_phrases(p) for p in catalog.policies)
        self.policy_stems = frozenset(s for phrases in self.policy_phrases for phrase in phrases for s in phrase)

    # ------------------------------------------------------------------ statistics

    def df(self, s: str) -> int:
        p = self.postings.get(s)
        return 0 if p is None else len(p.docs)

    def idf(self, s: str) -> float:
        """BM25's idf, floored at a small positive value so a word every product holds still counts a little."""
        n = self.df(s)
        return max(0.05, math.log(1 + (self.size - n + 0.5) / (n + 0.5)))

    def strong_df(self, s: str) -> int:
        p = self.postings.get(s)
        return 0 if p is None else int(np.count_nonzero(p.masks & STRONG))

    # ------------------------------------------------------------------ queries

    def correct(self, token: str) -> str | None:
        """The catalog word closest to an unknown ``token``, within its typo budget.

        Words that name products (names, types, tags, options) are tried before words that
        only descriptions use, so "grindr" becomes "grinder", not "grind".
        """
        budget = typo_budget(token)
        if budget == 0:
            return None
        for pool in (self._strong_list, self._surface_list):
            if not pool:
                continue
            found = process.extractOne(token, pool, scorer=DamerauLevenshtein.distance, score_cutoff=budget)
            if found is not None:
                return str(found[0])
        return None

    def sound_alike(self, token: str) -> str | None:
        """The catalog word that sounds like ``token``, in either script ("ликви" finds "liqui").

        Same sound first, then one edit between sounds for sounds of five letters or more.
        Words that name products are preferred to words only descriptions use.
        """
        if len(token) < 3 or token[0].isdigit():
            return None
        if self._sounds is None:
            self._sounds = sound_index([*self._strong_list, *self._surface_list], 3)
            self._sound_keys = list(self._sounds)
        key = sound(token)
        found = self._sounds.get(key)
        if found is not None or len(key) < 5:
            return found[0] if found else None
        near = process.extractOne(key, self._sound_keys, scorer=DamerauLevenshtein.distance, score_cutoff=1)
        return self._sounds[str(near[0])][0] if near is not None else None

    def read(self, content: Sequence[str]) -> ReadQuery:
        """Look up the query's content tokens; unknown ones are corrected where possible."""
        terms: list[QueryTerm] = []
        seen: set[str] = set()
        for tok in content:
            s = stem(tok)
            corrected = False
            original = tok
            if s not in self.postings and s not in self.policy_stems:
                fixed = self.correct(tok) or self.sound_alike(tok)
                if fixed is not None:
                    tok, s, corrected = fixed, self.vocabulary[fixed], True
            if s in seen:
                continue
            seen.add(s)
            known = s in self.postings
            terms.append(QueryTerm(tok, s, corrected, known, self.idf(s) if known else 0.0,
                                   original if corrected else ""))
        scores = np.zeros(self.size, dtype=np.float32)
        for t in terms:
            p = self.postings.get(t.stem)
            if p is not None:
                scores[p.docs] += t.idf * p.weights
        return ReadQuery(terms, scores)

    def rare_name_docs(self, read: ReadQuery, most: int, min_letters: int) -> list[tuple[QueryTerm, np.ndarray]]:
        """The question's words of ``min_letters`` or more that the names of at most ``most``
        products hold (a model or brand rather than the shop's trade), each with those products."""
        out = []
        for t in read.terms:
            p = self.postings.get(t.stem) if t.known and len(t.surface) >= min_letters else None
            if p is None:
                continue
            docs = p.docs[(p.masks & (1 << NAME)) != 0]
            if 0 < len(docs) <= most:
                out.append((t, docs))
        return out

    def conflicts(self, read: ReadQuery, head: str | None, top: int) -> tuple[float, float]:
        """Evidence that product ``top`` is a near miss rather than the thing asked for.

        - number_conflict: the share of the question's words with digits ("pixel 7", "size 12",
          "48 inch") that the product does not hold anywhere; a model or size the shop lacks is
          the usual near miss.
        - purpose_head_strong: whether the thing asked for (``head``, the last content word before
          a purpose cue: "a spare battery for my drill") is in the product's strong fields.
        """
        numbered = [t for t in read.terms if any(c.isdigit() for c in t.surface)]
        conflict = 0.0
        if numbered:
            missing = 0
            for t in numbered:
                p = self.postings.get(t.stem)
                missing += p is None or not bool(np.any(p.docs == top))
            conflict = missing / len(numbered)
        head_strong = 0.0
        if head is not None:
            head_stem = stem(head)
            term = next((t for t in read.terms if t.stem == head_stem or t.original == head), None)
            p = self.postings.get(term.stem) if term is not None else None
            if p is not None:
                hit = np.flatnonzero(p.docs == top)
                head_strong = 1.0 if len(hit) and (int(p.masks[hit[0]]) & STRONG) else 0.0
        return conflict, head_strong

    def named_by(self, words: Sequence[str]) -> int | None:
        """The one product whose name holds the opening words of ``words`` ("moka pot" of "moka pot
        induction compatible"), taking as many as still name some product; None when they name none
        or several ("the case" in a shop of cases)."""
        docs: np.ndarray | None = None
        for w in words:
            p = self.postings.get(stem(w))
            named = p.docs[(p.masks & (1 << NAME)) != 0] if p is not None else np.zeros(0, dtype=np.int64)
            narrowed = named if docs is None else np.intersect1d(docs, named)
            if not len(narrowed):
                break
            docs = narrowed
        return int(docs[0]) if docs is not None and len(docs) == 1 else None

    def coverage(self, query: ReadQuery, docs: np.ndarray, idf_of_unknown: float) -> dict[str, np.ndarray]:
        """Per candidate: idf-weighted share of the query held in strong fields, anywhere, in the
        name, and in the product type; the share of the name the query holds; the head's field."""
        n = len(docs)
        out = {k: np.zeros(n, dtype=np.float32) for k in ("strong", "any", "name", "type", "name_precision",
                                                            "head_strong", "head_any")}
        if not query.terms or n == 0:
            return out
        total = sum(t.idf if t.known else idf_of_unknown for t in query.terms) or 1.0
        position = np.full(self.size, -1, dtype=np.int64)
        position[docs] = np.arange(n)
        head = query.terms[-1]
        for t in query.terms:
            p = self.postings.get(t.stem)
            if p is None:
                continue
            at = position[p.docs]
            hit = at >= 0
            rows, masks = at[hit], p.masks[hit].astype(np.int64)
            share = t.idf / total
            out["any"][rows] += share
            out["strong"][rows] += share * ((masks & STRONG) != 0)
            named = (masks & (1 << NAME)) != 0
            out["name"][rows] += share * named
            out["name_precision"][rows] += named
            out["type"][rows] += share * ((masks & (1 << TYPE)) != 0)
            if t is head:
                out["head_any"][rows] = 1.0
                out["head_strong"][rows] = ((masks & STRONG) != 0).astype(np.float32)
        out["name_precision"] /= self.name_sizes[docs]
        return out
