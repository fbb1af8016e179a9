"""A small inverted index with field weights and typo tolerance, in pure Python.

Each document is a tuple of fields (for products: name, type, tags, variant titles,
description); each field has a strength, the credit a query term earns by appearing there.
Postings are compact ``array('l')`` codes (``doc * 8 + field``), one per distinct term per
document, so 100k products fit in tens of megabytes. A query term that is not in the
vocabulary is matched to vocabulary terms within a small edit distance (found through a
character-trigram index) or sharing a long prefix, at a discount.

Scores are fractions of the query: a document's *coverage* is the idf-weighted share of the
query's terms it contains anywhere; its *strength* weighs each term by the field it is in.
Both lie in 0..1, so they compare across queries and catalogs, which abstention needs.
"""

from __future__ import annotations

import heapq
import math
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chatpay.core.retrieval.text import terms
from chatpay.core.text import edit_distance

MAX_FIELDS = 8  # postings hold doc * 8 + field; keep the shifts below in step
MAX_EXPANSIONS = 4
EDIT_PENALTY = (1.0, 0.85, 0.7)  # credit for 0, 1 or 2 edits
FAMILY_CREDIT = 0.8
LOOKUP_COST = 4  # a binary search into postings costs about this many scanned postings
# Endings that make a word of the same family; "ly" is missing on purpose ("instant" is not
# "instantly"), and so is anything longer ("light" is not "lightweight").
SUFFIXES = ("", "e", "s", "es", "er", "ers", "ed", "ing", "y", "ery", "ion", "ist", "ness", "r", "d", "or")
# Endings that make another word, not a typo: "instantly" is not a misspelt "instant".
NOT_TYPOS = frozenset(SUFFIXES[1:]) | {"ly", "less", "ful", "able", "ment", "al", "ic"}


@dataclass(frozen=True)
class LexicalHit:
    """One document's match. ``doc`` indexes the documents given to the index.

    Attributes:
        strength: field-weighted share of the query's weight, 0..1 (ranks the hits).
        coverage: share of the query's weight found in any field, 0..1.
        matched: how many query terms the document holds (typos forgiven).
        term_fields: per query term, the field it was found in, or -1.
        term_credits: per query term, 1.0 when found as written, less through a typo or a
            relative ("grinder" for "grind"), 0.0 when not found.
        name_hits: query terms found in the first field (the name).
        name_precision: share of the name's terms the query matched, 0..1.
    """

    doc: int
    strength: float
    coverage: float
    matched: int
    term_fields: tuple[int, ...]
    term_credits: tuple[float, ...]
    name_hits: int
    name_precision: float


@dataclass(frozen=True)
class LexicalMatch:
    hits: tuple[LexicalHit, ...]
    unmatched: tuple[str, ...]  # query terms no document contains, even with a typo
    corrected: tuple[str, ...]  # the query's terms with typos replaced by the vocabulary's


def _typo_budget(term: str) -> int:
    n = len(term)
    if n <= 3 or term.isdigit():
        return 0
    return 1 if n <= 6 else 2


def _trigrams(term: str) -> set[str]:
    padded = f"^{term}$"
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


class LexicalIndex:
    """An inverted index over documents made of weighted text fields.

    Args:
        docs: each document's field texts, in the order of ``strengths``.
        strengths: the credit a term earns in each field (the first field is the name).
        compound_fields: fields whose adjacent terms are also indexed joined ("pour over" ->
            "pourover"), so a shopper may write them either way.
        idf_weighting: weigh query terms by rarity (else every term weighs the same).
        max_edits: the most typos forgiven in one term (long terms; short ones get fewer).
        families: let a term match others of its family ("grind" ~ "grinder", "deliver" ~ "delivery").
        min_fuzzy_length: shorter terms must match exactly.
    """

    def __init__(
        self,
        docs: Iterable[Sequence[str]],
        strengths: Sequence[float],
        *,
        compound_fields: Iterable[int] = (0,),
        idf_weighting: bool = True,
        max_edits: int = 2,
        families: bool = True,
        min_fuzzy_length: int = 4,
    ) -> None:
        self.idf_weighting = idf_weighting
        self.max_edits = max_edits
        self.families = families
        self.min_fuzzy_length = min_fuzzy_length
        if not 0 < len(strengths) <= MAX_FIELDS:
            raise ValueError(f"between 1 and {MAX_FIELDS} fields, got {len(strengths)}")
        self.strengths = tuple(float(s) for s in strengths)
        compound = frozenset(compound_fields)
        self._vocab: dict[str, int] = {}
        self._postings: list[array[int]] = []
        self._name_len = array("H")
        self._terms: list[str] = []
        self._min_field = bytearray()  # per term, the strongest field any document holds it in
        order = sorted(range(len(self.strengths)), key=lambda f: -self.strengths[f])
        compounds: set[int] = set()  # joined terms ("pourover") no document holds as a word
        n = 0
        for doc, fields in enumerate(docs):
            n += 1
            best: dict[str, int] = {}
            plain: set[str] = set()
            name_terms: set[str] = set()
            for f in order:  # strongest field first, so setdefault keeps the best field
                found = terms(fields[f]) if f < len(fields) and fields[f] else []
                if f == 0:
                    name_terms.update(found)
                for t in found:
                    best.setdefault(t, f)
                plain.update(found)
                if f in compound:
                    for a, b in zip(found, found[1:], strict=False):
                        best.setdefault(a + b, f)
            self._name_len.append(min(len(name_terms), 65535))
            for t, f in best.items():
                tid = self._vocab.get(t)
                if tid is None and t not in plain:
                    compounds.add(len(self._terms))
                if tid is None:
                    tid = self._vocab[t] = len(self._terms)
                    self._terms.append(t)
                    self._postings.append(array("l"))
                    self._min_field.append(f)
                elif f < self._min_field[tid]:
                    self._min_field[tid] = f
                self._postings[tid].append(doc * MAX_FIELDS + f)
        self.size = n
        self._compounds = frozenset(compounds)
        self._grams: dict[str, list[int]] = {}
        for tid, t in enumerate(self._terms):
            if len(t) >= 3 and not t.isdigit() and tid not in compounds:
                for g in _trigrams(t):
                    self._grams.setdefault(g, []).append(tid)

    def __len__(self) -> int:
        return self.size

    @property
    def vocabulary_size(self) -> int:
        return len(self._terms)

    def best_field(self, term: str) -> int:
        """The strongest field any document holds ``term`` in (exactly), or -1."""
        tid = self._vocab.get(term)
        return self._min_field[tid] if tid is not None else -1

    def df(self, term: str) -> int:
        """How many documents hold ``term`` exactly."""
        tid = self._vocab.get(term)
        return len(self._postings[tid]) if tid is not None else 0

    def idf(self, df: int) -> float:
        """BM25's idf, always positive; a term no document holds weighs the most."""
        if not self.idf_weighting:
            return 1.0
        return math.log(1.0 + (self.size - df + 0.5) / (df + 0.5))

    def expand(self, term: str) -> list[tuple[int, float]]:
        """Vocabulary terms ``term`` may mean, as ``(term id, credit)``, best first.

        The term itself when the vocabulary has it; then its family ("grind" ~ "grinder",
        "deliver" ~ "delivery"); typos (same first letter, a few edits)
        only for a term the vocabulary lacks.
        """
        found: dict[int, float] = {}
        tid = self._vocab.get(term)
        if tid is not None:
            found[tid] = 1.0
        if len(term) >= 4 and self.families:
            self._add_family(term, found)
        budget = min(self.max_edits, _typo_budget(term))
        if tid is None and budget and len(term) >= self.min_fuzzy_length:
            self._add_typos(term, budget, found)
        ranked = sorted(found.items(), key=lambda kv: (-kv[1], -len(self._postings[kv[0]])))
        return ranked[:MAX_EXPANSIONS]

    def _add_family(self, term: str, found: dict[int, float]) -> None:
        """Words of one family: a shared stem and common endings ("grind", "grinder", "grinding")."""
        for ending in SUFFIXES:
            if not term.endswith(ending) or len(term) - len(ending) < 3:
                continue
            root = term[: len(term) - len(ending)]
            for other_ending in SUFFIXES:
                other = root + other_ending
                cand = self._vocab.get(other) if other != term and len(other) >= 4 else None
                if cand is not None and cand not in self._compounds:
                    found[cand] = max(found.get(cand, 0.0), FAMILY_CREDIT)

    def _add_typos(self, term: str, budget: int, found: dict[int, float]) -> None:
        grams = _trigrams(term)
        shared: dict[int, int] = {}
        for g in grams:
            for cand in self._grams.get(g, ()):
                shared[cand] = shared.get(cand, 0) + 1
        need = max(1, len(grams) - 3 * budget)
        for cand, count in shared.items():
            other = self._terms[cand]
            if count < need or abs(len(other) - len(term)) > budget or other[0] != term[0]:
                continue  # a typo rarely hits the first letter: "toaster" is not "roaster"
            short, long_ = sorted((term, other), key=len)
            if long_.startswith(short) and long_[len(short):] in NOT_TYPOS:
                continue  # an ending, not a typo: families decide those ("instant" is not "instantly")
            d = edit_distance(term, other, budget)
            if d <= budget:
                found[cand] = max(found.get(cand, 0.0), EDIT_PENALTY[d])

    def _field(self, tid: int, doc: int) -> int:
        """The field ``doc`` holds term ``tid`` in, or -1 (postings are sorted by document)."""
        arr = self._postings[tid]
        i = bisect_left(arr, doc * MAX_FIELDS)
        if i < len(arr) and arr[i] // MAX_FIELDS == doc:
            return arr[i] % MAX_FIELDS
        return -1

    def search(
        self,
        query_terms: Sequence[str],
        weights: Sequence[float] | None = None,
        unknown_weights: Sequence[float] | None = None,
        limit: int = 50,
    ) -> LexicalMatch:
        """The ``limit`` documents that match ``query_terms`` best, strongest first.

        Args:
            query_terms: stemmed terms (see :func:`chatpay.core.retrieval.text.terms`).
            weights: how much each term matters to the shopper (1.0 each when omitted);
                multiplied by the term's idf.
            unknown_weights: the same for a term no document holds (``weights`` when omitted).
            limit: how many documents to return.
        """
        if weights is None:
            weights = [1.0] * len(query_terms)
        if unknown_weights is None:
            unknown_weights = weights
        expanded: list[list[tuple[int, float]]] = []
        term_weights: list[float] = []
        unmatched: list[str] = []
        corrected: list[str] = []
        for term, user_weight, unknown_weight in zip(query_terms, weights, unknown_weights, strict=True):
            expansions = self.expand(term)
            expanded.append(expansions)
            if expansions:
                corrected.append(self._terms[expansions[0][0]])
                term_weights.append(user_weight * max(self.idf(len(self._postings[tid])) for tid, _ in expansions))
            else:
                unmatched.append(term)
                corrected.append(term)
                term_weights.append(unknown_weight * self.idf(0))
        total = sum(term_weights)
        acc = self._accumulate(expanded, term_weights, limit)
        if not acc or total <= 0:
            return LexicalMatch((), tuple(unmatched), tuple(corrected))
        top_docs = heapq.nlargest(limit, acc, key=acc.__getitem__)  # stable: ties keep first-seen order
        return LexicalMatch(
            tuple(self._describe(doc, acc[doc], expanded, term_weights, total) for doc in top_docs),
            tuple(unmatched),
            tuple(corrected),
        )

    def _accumulate(
        self, expanded: list[list[tuple[int, float]]], term_weights: list[float], limit: int
    ) -> dict[int, float]:
        """Field-weighted scores, exact for every document that can still reach the top ``limit``.

        Terms go from the weightiest to the lightest (MaxScore). Once ``limit`` documents score
        more than the remaining terms could give any other, no new document can enter: the
        rest are dropped, and a common term's long postings are no longer scanned when looking
        the few documents still in the running up is cheaper.
        """
        strengths = self.strengths
        top_strength = max(strengths)
        known = [i for i, e in enumerate(expanded) if e]
        caps = {i: term_weights[i] * top_strength * max(c for _, c in expanded[i]) for i in known}
        known.sort(key=lambda i: -caps[i])
        rest = sum(caps.values())
        acc: dict[int, float] = {}
        closed = False
        for i in known:
            if len(acc) > limit:
                kth = heapq.nlargest(limit, acc.values())[-1]
                if closed or kth >= rest:
                    closed = True  # no unseen document can reach the top any more
                    acc = {d: v for d, v in acc.items() if v + rest >= kth}
            rest -= caps[i]
            weight = term_weights[i]
            gains: dict[int, float] = {}
            for tid, credit in expanded[i]:
                by_field = [weight * st * credit for st in strengths]
                postings = self._postings[tid]
                if closed and LOOKUP_COST * len(acc) < len(postings):
                    n = len(postings)
                    for doc in acc:
                        j = bisect_left(postings, doc * MAX_FIELDS)
                        if j < n and postings[j] >> 3 == doc and by_field[postings[j] & 7] > gains.get(doc, 0.0):
                            gains[doc] = by_field[postings[j] & 7]
                elif closed:
                    for code in postings:
                        doc = code >> 3
                        if doc in acc and by_field[code & 7] > gains.get(doc, 0.0):
                            gains[doc] = by_field[code & 7]
                elif len(expanded[i]) == 1:  # the common case, kept tight: 100k-product postings run here
                    get = acc.get
                    for code in postings:
                        doc = code >> 3
                        acc[doc] = get(doc, 0.0) + by_field[code & 7]
                else:  # several spellings: a document earns the term once, through its best one
                    for code in postings:
                        doc = code >> 3
                        if by_field[code & 7] > gains.get(doc, 0.0):
                            gains[doc] = by_field[code & 7]
            for doc, gain in gains.items():
                acc[doc] = acc.get(doc, 0.0) + gain
        return acc

    def _describe(
        self, doc: int, strength: float, expanded: list[list[tuple[int, float]]], term_weights: list[float],
        total: float,
    ) -> LexicalHit:
        fields: list[int] = []
        credits: list[float] = []
        covered = 0.0
        for expansions, weight in zip(expanded, term_weights, strict=True):
            best_field, best_credit, best_strength = -1, 0.0, 0.0
            for tid, credit in expansions:
                f = self._field(tid, doc)
                if f >= 0 and self.strengths[f] * credit > best_strength:
                    best_field, best_credit, best_strength = f, credit, self.strengths[f] * credit
            fields.append(best_field)
            credits.append(best_credit)
            covered += weight * best_credit
        name_hits = sum(1 for f in fields if f == 0)
        name_len = self._name_len[doc]
        return LexicalHit(
            doc,
            min(1.0, strength / total),
            min(1.0, covered / total),
            sum(1 for f in fields if f >= 0),
            tuple(fields),
            tuple(credits),
            name_hits,
            min(1.0, name_hits / name_len) if name_len else 0.0,
        )
