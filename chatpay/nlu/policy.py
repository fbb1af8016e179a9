"""Whether a question that says a store policy's keywords asks that policy or the products.

The candidate is the policy whose keywords (or title) the question says in full, covering the
largest share of its words; the fitted policy decision (a logistic regression in the search
artefact, fitted by ``scripts/fit_nlu.py``) reads :data:`POLICY_FEATURES` of it, since a merchant's
keyword is often a product word too ("card", "measure", "доставка").
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from chatpay.nlu.lexicon import CatalogLexicon, ReadQuery
from chatpay.nlu.query import ParsedQuery

POLICY_FEATURES = (
    "share", "weighed_share", "top_strong", "p_not_sold", "top_p", "unknown_to_products", "options_only",
    "keyword_df", "content_len", "covered_terms", "policies_said", "strong_lead", "function_share", "keyword_head",
    "rare_name_word",
)


class ProductEvidence(NamedTuple):
    """How well the products answer the question: the best candidate's coverage in strong
    fields and ranker probability, and the abstainer's P(not sold)."""

    top_strong: float
    top_p: float
    p_not_sold: float


def _covered(phrases: list[tuple[str, ...]], stems: list[str]) -> set[str]:
    """The stems of ``phrases`` said in full, as runs of ``stems``."""
    covered: set[str] = set()
    for phrase in phrases:
        n = len(phrase)
        if any(tuple(stems[j : j + n]) == phrase for j in range(len(stems) - n + 1)):
            covered.update(phrase)
    return covered


def policy_candidate(lexicon: CatalogLexicon, size: int, q: ParsedQuery, read: ReadQuery, products: ProductEvidence,
                     *, rare_name: tuple[int, int]) -> tuple[int, float, np.ndarray] | None:
    """The policy the question says most of (its index and share of the question), with the
    features the fitted decision reads: how much of the question the keyword says (as a share of
    words and weighed as product coverage weighs them, an unknown word weighing most), how well
    the best product explains the question, whether the keyword is a word no product holds or
    only an option value, how common the keyword is among the products, how much of the message
    is not content ("do you deliver to ...?" asks; "tape measure" names a thing), whether the
    keyword is the thing named last, and whether the question names a product by a rare word of
    its name (``rare_name``: at most that many names, that many letters or more)."""
    stems = read.stems
    if not stems or not lexicon.policy_phrases:
        return None
    covered_by = [_covered(phrases, stems) for phrases in lexicon.policy_phrases]
    said = [i for i, c in enumerate(covered_by) if c]
    if not said:
        return None
    i = max(said, key=lambda j: (len(covered_by[j]), -j))  # the first of the policies that say most
    covered = covered_by[i]
    share = len(covered) / len(stems)
    unknown_idf = math.log(1 + size + 0.5) if size else 1.0
    weight = {t.stem: t.idf if t.known else unknown_idf for t in read.terms}
    known = {t.stem for t in read.terms if t.known}
    weighed = sum(weight.get(s, 0.0) for s in covered) / (sum(weight.get(s, 0.0) for s in stems) or 1.0)
    keyword_df = max((lexicon.df(s) for s in covered), default=0) / max(size, 1)
    rare = any(t.stem not in covered for t, _ in lexicon.rare_name_docs(read, *rare_name))
    features = np.array([
        share, weighed, products.top_strong, products.p_not_sold, products.top_p,
        float(bool(covered - known - lexicon.option_stems)), float(covered <= lexicon.option_stems),
        keyword_df, min(len(stems), 8) / 8.0, min(len(covered), 4) / 4.0,
        min(len(said), 4) / 4.0, products.top_strong - share,
        1.0 - len(q.content) / max(len(q.words), 1), float(stems[-1] in covered), float(rare),
    ], dtype=np.float32)
    return i, share, features
