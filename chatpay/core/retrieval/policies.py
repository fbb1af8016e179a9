"""Matching shipping, returns, payment... questions to the store's own policy documents."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from chatpay.core.catalog import PolicyDoc
from chatpay.core.retrieval.lexical import LexicalIndex
from chatpay.core.retrieval.text import QueryText, stem, terms, words

# Keywords, title, text: the merchant's keywords say what a policy is for; its text only mentions.
POLICY_FIELDS = (1.0, 1.0, 0.45)
PHRASE_BONUS = 0.35  # a multi-word keyword said in full ("how long", "money back")

@dataclass(frozen=True)
class PolicyMatch:
    policy: PolicyDoc
    score: float  # 0..1
    keyword_terms: frozenset[str]  # content terms found as written in the keywords or the title
    phrase_hit: bool  # a multi-word keyword said in full ("how long", "send back")
    coverage: float = 0.0  # share of the query's content words the policy holds anywhere
    dense: float = 0.0
    near_terms: frozenset[str] = frozenset()  # found in keywords or title through a relative or typo
    root_terms: frozenset[str] = frozenset()  # near terms that are a keyword's root ("deliver")

    def asked_about(self, product_terms: frozenset[str] = frozenset(), *, dense_agrees: bool = False) -> bool:
        """True when the query uses this policy's own words, beyond words naming products.

        A keyword's root or longer form counts ("deliver" for "delivery"); a mere sibling or a
        typo ("charger" for "charged") only when the dense side agrees.
        """
        if self.phrase_hit or (self.keyword_terms | self.root_terms) - product_terms:
            return True
        return dense_agrees and bool(self.near_terms - product_terms)


class PolicyMatcher:
    """Scores a store's policies against a query (lexical, plus dense when vectors are given)."""

    def __init__(self, policies: Sequence[PolicyDoc], vectors: Sequence[Sequence[float]] | None = None) -> None:
        self.policies = tuple(policies)
        self.vectors = [list(map(float, v)) for v in vectors] if vectors is not None else None
        self._index = LexicalIndex(
            ((" ".join(p.keywords), p.title, p.text) for p in self.policies),
            POLICY_FIELDS,
            compound_fields=(0, 1),
            idf_weighting=False,  # a dozen documents: rarity means little; every word counts the same
            max_edits=1,  # few documents, so a loose match is soon a wrong one
            min_fuzzy_length=5,  # "shoes" is not "shop"
        )
        self._keyword_vocab = [frozenset(terms(f"{' '.join(p.keywords)} {p.title}")) for p in self.policies]
        self._phrases = [
            [tuple(stem(w) for w in words(k)) for k in p.keywords if len(words(k)) > 1] for p in self.policies
        ]

    @staticmethod
    def texts(policies: Sequence[PolicyDoc]) -> list[str]:
        """What the dense side embeds for each policy."""
        return [f"{p.title}. {', '.join(p.keywords)}. {p.text[:300]}" for p in policies]

    def match(self, q: QueryText, query_vector: Sequence[float] | None = None) -> list[PolicyMatch]:
        """Policies that fit ``q``, best first (empty when the store has none)."""
        if not self.policies:
            return []
        content = list(q.content)
        # Question words stripped as filler still matter for policies: "how long", "when will".
        found = self._index.search(content, q.weights, limit=len(self.policies)).hits if content else ()
        hits = {h.doc: h for h in found}
        dense = self._dense(query_vector)
        stems = q.stems
        out: list[PolicyMatch] = []
        for i, policy in enumerate(self.policies):
            hit = hits.get(i)
            score = hit.strength if hit else 0.0
            in_keywords = [
                (t, c) for t, f, c in zip(content, hit.term_fields, hit.term_credits, strict=True) if 0 <= f < 2
            ] if hit else []
            keyword_terms = frozenset(t for t, c in in_keywords if c >= 1.0)
            near_terms = frozenset(t for t, c in in_keywords if c < 1.0)
            root_terms = frozenset(
                t for t in near_terms
                if any(k.startswith(t) or t.startswith(k) for k in self._keyword_vocab[i] if len(k) >= 4)
            )
            phrase_hit = False
            for phrase in self._phrases[i]:
                if _contains(stems, phrase):
                    score += PHRASE_BONUS
                    phrase_hit = True
            d = dense[i] if dense else 0.0
            if dense:
                score = 0.8 * score + 0.2 * max(0.0, (d - 0.2) / 0.4)
            if score > 0:
                coverage = hit.coverage if hit else 0.0
                out.append(PolicyMatch(
                    policy, min(1.0, score), keyword_terms, phrase_hit, coverage, d, near_terms, root_terms
                ))
        out.sort(key=lambda m: -m.score)
        return out

    def _dense(self, query_vector: Sequence[float] | None) -> list[float]:
        if query_vector is None or not self.vectors:
            return []
        q = [float(x) for x in query_vector]
        qn = math.sqrt(sum(x * x for x in q)) or 1.0
        return [sum(a * b for a, b in zip(q, v, strict=False)) / qn for v in self.vectors]


def _contains(seq: Sequence[str], phrase: Sequence[str]) -> bool:
    n = len(phrase)
    return any(tuple(seq[i : i + n]) == tuple(phrase) for i in range(len(seq) - n + 1))
