"""Hybrid product retrieval: lexical with typo tolerance, fused with dense similarity.

One :class:`Retriever` serves every business. Per business it keeps one prepared index,
built for a catalog version and rebuilt when the version changes. A search:

1. takes the query apart (:func:`parse_query`): commerce filler ("do you have", "something
   for") is dropped, leaving content terms;
2. answers store-wide questions ("what do you sell?") with an overview across categories;
3. scores the store's policies and its products; a policy question ("do you ship to Spain?")
   gets the policy;
4. fuses, per candidate product, the lexical strength (field-weighted share of the content
   terms it holds) with the dense cosine of query and product text;
5. abstains (kind ``none``) when the best product neither covers enough of the query's
   content nor is close in meaning; otherwise returns the ranked products.

The dense side is optional: with no embedder (or when it fails) retrieval is lexical-only.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from chatpay.core.catalog import Catalog, Product
from chatpay.core.errors import ConfigError, ModelError
from chatpay.core.ports import Embedder, VectorIndex, VectorIndexFactory
from chatpay.core.retrieval.lexical import LexicalHit, LexicalIndex, LexicalMatch
from chatpay.core.retrieval.policies import PolicyMatch, PolicyMatcher
from chatpay.core.retrieval.prepared import PreparedCache
from chatpay.core.retrieval.results import PolicyHit, ProductHit, RetrievalResult
from chatpay.core.retrieval.text import QueryText, parse_query

log = logging.getLogger(__name__)

# Name, product type, tags, variant titles, description.
PRODUCT_FIELDS = (1.0, 0.8, 0.8, 0.55, 0.5)
DENSE_TEXT_CHARS = 240
EMBED_BATCH = 2048
THREADED_BUILD = 3000  # catalogs larger than this are indexed in a worker thread
LEXICAL_CANDIDATES = 60

# Fusion and abstention. Cosines of the shipped static model: unrelated texts sit near 0.1,
# paraphrases from about 0.35.
DENSE_LO, DENSE_HI = 0.2, 0.7
LEXICAL_WEIGHT = 0.7  # of the fused score, when a dense side exists
MIN_COVERAGE = 0.5  # of the query's weight, when its head noun is in a name, type or tag
HEAD_MISSING = 0.45  # evidence per unit of coverage when the head noun is only in descriptions
FULL_COVERAGE = 0.95
STRONG_FIELDS = 3  # name, type and tags say what a product *is*; the rest only mention
HEAD_WEAK, HEAD_ABSENT = 0.85, 0.7  # rank factor when the head noun is only in a description, or nowhere
DOMAIN_SHARE = 0.2  # a word this share of products hold is the shop's domain ("yarn" in a yarn shop), not a kind
TYPO_DENSE = 0.3  # below this cosine, a head matched only through a typo is doubted
STRONG_DENSE = 0.64  # a cosine that stands on its own
LEAD_DENSE, DENSE_LEAD = 0.35, 0.18  # a cosine that leads every other product's by this much
POLICY_MIN = 0.3
OVERVIEW_CONFIDENCE = 0.9  # "what do you sell?" is rarely anything else
POLICY_DENSE = 0.35  # cosine at which the dense side agrees a question is about a policy


@dataclass(frozen=True)
class _Candidate:
    doc: int
    score: float
    lexical: float
    dense: float
    hit: LexicalHit | None
    dense_lead: float = 0.0  # how far its cosine leads the runner-up's, when it is the dense top


@dataclass
class _Prepared:
    business_id: str
    version: int
    size: int
    handles: tuple[str, ...]
    lexical: LexicalIndex
    vectors: VectorIndex | None
    policies: PolicyMatcher
    overview: tuple[str, ...]


def product_fields(p: Product) -> tuple[str, str, str, str, str]:
    """The lexical fields of a product, in :data:`PRODUCT_FIELDS` order."""
    variants = " ".join(v.title for v in p.variants if not v.is_default)
    return (p.name, p.product_type, " ".join(p.tags), variants, p.description)


def product_text(p: Product) -> str:
    """What the dense side embeds: name, type, tags and the start of the description."""
    desc = p.description[:DENSE_TEXT_CHARS].rsplit(" ", 1)[0] if len(p.description) > DENSE_TEXT_CHARS else p.description
    return ". ".join(part for part in (p.name, p.product_type, ", ".join(p.tags), desc) if part)


def spread(catalog: Catalog) -> tuple[str, ...]:
    """Every handle, ordered round-robin across categories, available products first."""
    groups = [
        sorted(items, key=lambda p: not p.available) for items in catalog.categories().values()
    ]
    out: list[str] = []
    for i in range(max((len(g) for g in groups), default=0)):
        out.extend(g[i].handle for g in groups if i < len(g))
    return tuple(out)


def _dense_norm(cosine: float) -> float:
    return min(1.0, max(0.0, (cosine - DENSE_LO) / (DENSE_HI - DENSE_LO)))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


class Retriever:
    """Finds a business's products and policies for a shopper's words.

    Args:
        embedder: the dense side; ``None`` runs lexical-only.
        index_factory: builds a vector index from product vectors (numpy or naive).
    """

    def __init__(self, embedder: Embedder | None, index_factory: VectorIndexFactory) -> None:
        self.embedder = embedder
        self.index_factory = index_factory
        self.cache: PreparedCache[_Prepared] = PreparedCache(self._build)

    async def prepare(self, catalog: Catalog) -> None:
        """Build and cache the index for ``(catalog.business_id, catalog.version)``."""
        await self.cache.get(catalog)

    def prepared_version(self, business_id: str) -> int | None:
        """The catalog version indexed for ``business_id``, if any."""
        return self.cache.version(business_id)

    async def _get(self, catalog: Catalog) -> _Prepared:
        return await self.cache.get(catalog)

    async def _build(self, catalog: Catalog) -> _Prepared:
        products = list(catalog)
        if len(products) > THREADED_BUILD:
            lexical = await asyncio.to_thread(LexicalIndex, map(product_fields, products), PRODUCT_FIELDS)
        else:
            lexical = LexicalIndex(map(product_fields, products), PRODUCT_FIELDS)
        vectors: VectorIndex | None = None
        policy_vectors: Sequence[Sequence[float]] | None = None
        if self.embedder is not None and products:
            try:
                product_vectors = await self._embed_all([product_text(p) for p in products])
                vectors = self.index_factory(product_vectors)
                if catalog.policies:
                    policy_vectors = (await self.embedder.embed(PolicyMatcher.texts(catalog.policies))).vectors
            except (ModelError, ConfigError) as exc:
                log.warning(
                    "embedding failed; retrieval runs lexical-only",
                    extra={"business_id": catalog.business_id, "error": repr(exc)},
                )
                vectors, policy_vectors = None, None
        log.info(
            "indexed catalog",
            extra={"business_id": catalog.business_id, "version": catalog.version, "products": len(products),
                   "terms": lexical.vocabulary_size, "dense": vectors is not None},
        )
        return _Prepared(
            catalog.business_id, catalog.version, len(products), tuple(p.handle for p in products),
            lexical, vectors, PolicyMatcher(catalog.policies, policy_vectors), spread(catalog),
        )

    async def _embed_all(self, texts: list[str]) -> Sequence[Sequence[float]]:
        assert self.embedder is not None
        if len(texts) <= EMBED_BATCH:
            return (await self.embedder.embed(texts)).vectors
        out: list[Sequence[float]] = []
        for start in range(0, len(texts), EMBED_BATCH):
            out.extend((await self.embedder.embed(texts[start : start + EMBED_BATCH])).vectors)
        return out

    async def search(self, catalog: Catalog, query: str, *, k: int = 6) -> RetrievalResult:
        """Rank ``catalog``'s products (or policies) for ``query``; at most ``k`` products."""
        prepared = await self._get(catalog)
        q = parse_query(query)
        if q.asks_for_overview:
            return self._overview(q, query, prepared, k)
        lexical = (
            prepared.lexical.search(q.content, q.weights, q.unknown_weights, limit=LEXICAL_CANDIDATES)
            if q.content else None
        )
        dense_text = q.content_query
        if lexical is not None and lexical.corrected != q.content:
            dense_text = " ".join(lexical.corrected)  # embed "notebook", not the typo "notebok"
        query_vector = await self._embed_query(dense_text, prepared) if q.content else None
        policies = prepared.policies.match(q, query_vector)
        candidates = self._rank(q, prepared, lexical, query_vector, k)
        return self._decide(query, q, prepared, candidates, policies)

    async def _embed_query(self, text: str, prepared: _Prepared) -> Sequence[float] | None:
        if self.embedder is None or prepared.vectors is None or not text:
            return None
        try:
            return (await self.embedder.embed([text])).vectors[0]
        except (ModelError, ConfigError) as exc:
            log.warning("query embedding failed; lexical-only", extra={"error": repr(exc)})
            return None

    def _rank(
        self,
        q: QueryText,
        prepared: _Prepared,
        lexical: LexicalMatch | None,
        query_vector: Sequence[float] | None,
        k: int,
    ) -> list[_Candidate]:
        """The ``k`` best products by fused score."""
        if lexical is None or not prepared.size:
            return []
        lex = {h.doc: h for h in lexical.hits}
        dense: dict[int, float] = {}
        floor = 0.0
        if query_vector is not None and prepared.vectors is not None:
            found = prepared.vectors.search(query_vector, min(prepared.size, max(50, 8 * k)))
            dense = dict(found)
            floor = min(dense.values()) if len(found) < prepared.size and dense else 0.0
        weight = LEXICAL_WEIGHT if dense else 1.0
        head = self._head(q, prepared)
        lead_doc, lead = -1, 0.0
        if len(dense) >= 2:
            (lead_doc, first), (_, second) = sorted(dense.items(), key=lambda kv: -kv[1])[:2]
            lead = first - second
        out: list[_Candidate] = []
        for doc in set(lex) | set(dense):
            hit = lex.get(doc)
            lexical_score = 0.0
            if hit is not None:
                lexical_score = hit.strength * (0.85 + 0.15 * hit.name_precision) * (0.7 + 0.3 * hit.coverage)
                if head >= 0:  # what is asked for should be what the product is
                    f = hit.term_fields[head]
                    lexical_score *= 1.0 if 0 <= f < STRONG_FIELDS else HEAD_WEAK if f >= 0 else HEAD_ABSENT
            cosine = dense.get(doc, floor)
            fused = weight * lexical_score + (1.0 - weight) * _dense_norm(cosine)
            out.append(_Candidate(doc, fused, lexical_score, cosine, hit, lead if doc == lead_doc else 0.0))
        out.sort(key=lambda c: (-c.score, -c.lexical, c.doc))
        return out[:k]

    @staticmethod
    def _head(q: QueryText, prepared: _Prepared) -> int:
        """The head noun's position in ``q.content``, or -1 when it cannot tell products apart.

        A head most products share ("yarn" in a yarn shop) is the shop's domain, not a
        product kind, and one no product holds is the same for all of them.
        """
        if q.head is None or q.head not in q.content:
            return -1
        df = prepared.lexical.df(q.head)
        if df == 0 or df >= DOMAIN_SHARE * prepared.size:
            return -1
        return q.content.index(q.head)

    @staticmethod
    def _names(hit: LexicalHit) -> bool:
        """True when the query names the product: most of its name, or two words of it."""
        return hit.name_precision >= 0.6 or (hit.name_hits >= 2 and hit.name_precision >= 0.5)

    def _evidence(self, q: QueryText, prepared: _Prepared, c: _Candidate) -> float:
        """How well one product fits the query, 0..1; 0.5 and above means it fits."""
        evidence = 0.0
        hit = c.hit
        dense_known = self.embedder is not None and prepared.vectors is not None
        if hit is not None:
            if self._names(hit):
                evidence = 0.5 + 0.5 * hit.name_precision * hit.coverage  # the query names it
            head = q.content.index(q.head) if q.head in q.content else -1
            if head < 0 or prepared.lexical.df(q.head or "") >= DOMAIN_SHARE * prepared.size:
                head_ok = True
            else:
                head_ok = 0 <= hit.term_fields[head] < STRONG_FIELDS
            lexical = hit.coverage * (0.5 / MIN_COVERAGE if head_ok else HEAD_MISSING)
            if not head_ok and hit.coverage >= FULL_COVERAGE and all(f >= STRONG_FIELDS for f in hit.term_fields):
                # Every word, all in the description ("helps you drift off to sleep"): a fit, if a
                # modest one. Not so "a sewing machine" against a sewing thread whose text
                # mentions machines: there the product is something else the query also names.
                lexical = 0.5
            if head >= 0 and hit.term_credits[head] < 1.0 and dense_known and c.dense < TYPO_DENSE:
                lexical *= 0.6  # "hose" read as "house", and the meaning disagrees
            evidence = max(evidence, min(1.0, lexical))
        if dense_known:
            evidence = max(evidence, min(1.0, 0.5 + (c.dense - STRONG_DENSE) * 2.5))
            if c.dense >= LEAD_DENSE and c.dense_lead >= DENSE_LEAD:
                # No shared words, but one product stands out in meaning ("something to help
                # me sleep" -> a calming bedtime infusion): a fit, if a modest one.
                evidence = max(evidence, 0.55)
        return evidence

    def _decide(
        self,
        query: str,
        q: QueryText,
        prepared: _Prepared,
        candidates: list[_Candidate],
        policies: list[PolicyMatch],
    ) -> RetrievalResult:
        products = tuple(ProductHit(prepared.handles[c.doc], round(c.score, 4), round(c.lexical, 4),
                                    round(c.dense, 4)) for c in candidates)
        evidence = [self._evidence(q, prepared, c) for c in candidates[:3]]
        best = max(evidence, default=0.0)
        fits = best >= 0.5
        top = candidates[0].hit if candidates else None
        top_coverage = 0.0
        if top is not None and q.weights:  # on the policies' scale: the shopper's weights, no idf
            top_coverage = sum(w * c for w, c in zip(q.weights, top.term_credits, strict=True)) / sum(q.weights)
        named = top is not None and self._names(top)
        # Words that name what the shop sells ("yarn" in "Yarn subscriptions") are no sign of
        # a policy question; the policy's other words are.
        product_terms = frozenset(t for t in q.content if 0 <= prepared.lexical.best_field(t) < STRONG_FIELDS)
        policy = next(
            (m for m in policies if m.asked_about(product_terms, dense_agrees=m.dense >= POLICY_DENSE)), None
        )
        if (
            policy is not None
            and policy.score >= POLICY_MIN
            and (not fits or policy.coverage > top_coverage + 1e-9 or (policy.coverage > top_coverage - 1e-9 and not named))
        ):
            ranked = [policy, *(m for m in policies if m is not policy)][:3]
            hits = tuple(PolicyHit(m.policy.id, m.policy.title, round(m.score, 4)) for m in ranked)
            confidence = _sigmoid(8.0 * (policy.score - POLICY_MIN))
            return RetrievalResult(query, q.content_query, "policy", products, hits, round(confidence, 4))
        if not fits:
            return RetrievalResult(query, q.content_query, "none", (), (), round(1.0 - _sigmoid(8.0 * (best - 0.5)), 4))
        confidence = _sigmoid(8.0 * (evidence[0] - 0.5))
        if len(candidates) > 1:  # a near tie makes the first product less certain to be the one
            margin = candidates[0].score - candidates[1].score
            confidence *= 0.8 + 0.2 * min(1.0, margin / 0.1)
        return RetrievalResult(query, q.content_query, "products", products, (), round(confidence, 4))

    def _overview(self, q: QueryText, query: str, prepared: _Prepared, k: int) -> RetrievalResult:
        count = min(prepared.size, max(k, 3))
        handles = prepared.overview[:count]
        hits = tuple(ProductHit(h, 1.0, 0.0, 0.0) for h in handles)
        if not hits:
            return RetrievalResult(query, q.content_query, "none", (), (), 1.0)
        return RetrievalResult(query, q.content_query, "overview", hits, (), OVERVIEW_CONFIDENCE)
