"""Catalog search: the merchant's lexicon and a sentence encoder, combined by fitted models.

One :class:`CatalogSearch` serves every business; per business it keeps a prepared index for
one catalog version (lexicon, product vectors, policy keywords). A search:

1. parses the question (:mod:`chatpay.nlu.query`): content words, cues, a price budget;
2. answers questions about the whole shop, or naming the shop, with an overview;
3. gathers candidates: the best by BM25 over the lexicon and the nearest by cosine;
4. scores each candidate with the fitted ranker (:mod:`chatpay.nlu.fitted`) over features
   such as coverage of the question in strong fields, name precision, head match and cosine;
5. decides with the fitted abstainer whether the shop sells the thing at all;
6. answers a policy question ("do you ship to Spain?") when the question says a policy's own
   keywords and the fitted policy decision finds the policy, not a product, is what it asks.

Product vectors are computed once per catalog version and encoder and kept in the
:class:`~chatpay.core.ports.VectorStore` (MongoDB in production), so other processes load them.

The dense side is optional: without an encoder the ranker's lexical-only model is used.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass

import numpy as np

from chatpay.core.catalog import Catalog, PolicyDoc, Product
from chatpay.core.errors import ConfigError, ModelError, StorageError
from chatpay.core.ports import ChatMessage, ChatModel, ChatRequest, Embedder, StoredVectors, VectorStore
from chatpay.core.retrieval.prepared import PreparedCache
from chatpay.core.retrieval.results import PolicyHit, ProductHit, RetrievalResult
from chatpay.nlu.fitted import FittedModels, load_models
from chatpay.nlu.lexicon import BM25_K1, CatalogLexicon, ReadQuery
from chatpay.nlu.policy import POLICY_FEATURES, ProductEvidence, policy_candidate
from chatpay.nlu.query import ParsedQuery, parse
from chatpay.nlu.text import stem

log = logging.getLogger(__name__)

CANDIDATES = 40  # from each side; the ranker re-scores their union
DENSE_TEXT_CHARS = 240
EMBED_BATCH = 256
OVERVIEW_CONFIDENCE = 0.9
MODEL_CHOICES = 6
# A question the search declines may still name a product by a rare word of its name ("flannel",
# "скатерть"): the products whose names hold it, at most this many (a word more names share is the
# shop's trade, "cable", and offers nothing in particular) ...
NEAR_NAMES = 3
NEAR_MIN_LETTERS = 4  # ... and words of four letters or more ("usb", "led" name kinds of many things)

RANK_FEATURES = (
    "bm25_rel", "bm25_norm", "cov_strong", "cov_any", "cov_name", "cov_type", "name_precision",
    "head_strong", "head_any", "cos", "cos_gap", "cos_rank", "bm25_rank", "unknown_share",
    "available", "strong_x_cos",
)
ABSTAIN_FEATURES = (
    "top_p", "second_p", "top_cos", "max_cos", "top_strong", "max_strong", "unknown_share",
    "known_terms", "head_strong_df", "recommend", "budget", "desc_only", "p_gap", "dense_lead", "top_any",
    "unknown_number", "cos_z", "lead_z", "need", "content_len", "unknown_head", "top_name_precision",
    "top_head_strong", "confident_count", "top3_mean_p", "top_bm25_norm", "number_conflict",
    "purpose_head_strong",
)


def dense_text(q: ParsedQuery, read: ReadQuery) -> str:
    """What the encoder reads of a question: the text as written, with its typos corrected."""
    fixes = {t.original: t.surface for t in read.terms if t.corrected}
    if not fixes:
        return q.text
    return " ".join(fixes.get(w, w) for w in q.words)


def product_text(p: Product) -> str:
    """What the encoder embeds for a product: name, type, tags, options, start of the description."""
    desc = p.description
    if len(desc) > DENSE_TEXT_CHARS:
        desc = desc[:DENSE_TEXT_CHARS].rsplit(" ", 1)[0]
    options = ", ".join(sorted({v.title for v in p.variants if not v.is_default}))
    return ". ".join(part for part in (p.name, p.product_type, ", ".join(p.tags), options, desc) if part)


RANKED = 64  # dense ranks are exact for the nearest this many; the rest share the next rank


def dense_ranks(cos_all: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """Each of ``docs``' rank by cosine among all products, in O(products) rather than a full sort."""
    n = len(cos_all)
    if n <= RANKED:
        order = np.argsort(-cos_all, kind="stable")
    else:
        top = np.argpartition(-cos_all, RANKED - 1)[:RANKED]
        order = top[np.argsort(-cos_all[top], kind="stable")]
    rank = np.full(n, min(n, RANKED), dtype=np.float32)
    rank[order] = np.arange(len(order), dtype=np.float32)
    return rank[docs]


def spread(catalog: Catalog) -> tuple[str, ...]:
    """Every handle, round-robin across categories, available products first."""
    groups = [sorted(items, key=lambda p: not p.available) for items in catalog.categories().values()]
    out: list[str] = []
    for i in range(max((len(g) for g in groups), default=0)):
        out.extend(g[i].handle for g in groups if i < len(g))
    return tuple(out)


@dataclass
class PreparedCatalog:
    business_id: str
    version: int
    size: int
    products: tuple[Product, ...]
    lexicon: CatalogLexicon
    vectors: np.ndarray | None  # (size, dim) unit rows
    prices: np.ndarray  # lowest available price per product, major units
    available: np.ndarray
    policies: tuple[PolicyDoc, ...]
    overview: tuple[str, ...]


@dataclass(frozen=True)
class Scored:
    """Candidates with their features and fitted scores (for evals, fitting and traces)."""

    docs: np.ndarray
    features: np.ndarray  # (n, len(RANK_FEATURES))
    probs: np.ndarray
    abstain_features: np.ndarray
    p_not_sold: float


class CatalogSearch:
    """Finds a business's products and policies for a shopper's words.

    Args:
        encoder: the dense side (an :class:`~chatpay.core.ports.Embedder`); ``None`` runs lexical-only.
        models: fitted ranker and abstainer; the shipped artefact for the encoder when omitted.
    """

    fitted_abstention = True  # its "the shop does not sell that" is a fitted decision (the engine may rely on it)

    def __init__(self, encoder: Embedder | None, models: FittedModels | None = None,
                 vectors: VectorStore | None = None, model: ChatModel | None = None) -> None:
        self.encoder = encoder
        self.models = models or load_models(encoder.name if encoder is not None else "lexical")
        if models is None:  # the shipped artefact must read the features this code computes
            self.models.check_features(ranker=RANK_FEATURES, abstainer=ABSTAIN_FEATURES, policy_model=POLICY_FEATURES)
        self.store = vectors
        self.model = model  # asked only about the residue: questions the fitted decisions are unsure of
        self.cache: PreparedCache[PreparedCatalog] = PreparedCache(self.build)

    async def prepare(self, catalog: Catalog) -> None:
        """Build and cache the index for ``(catalog.business_id, catalog.version)``."""
        await self.cache.get(catalog)

    def prepared_version(self, business_id: str) -> int | None:
        """The catalog version indexed for ``business_id``, if any."""
        return self.cache.version(business_id)

    async def _get(self, catalog: Catalog) -> PreparedCatalog:
        return await self.cache.get(catalog)

    async def build(self, catalog: Catalog, vectors: np.ndarray | None = None) -> PreparedCatalog:
        """Index ``catalog``; ``vectors`` are its product vectors when already computed."""
        products = tuple(catalog)
        lexicon = await asyncio.to_thread(CatalogLexicon, catalog) if len(products) > 3000 else CatalogLexicon(catalog)
        if vectors is None and self.encoder is not None and products:
            try:
                vectors = await self._stored_or_embedded(catalog, products)
            except (ModelError, ConfigError) as exc:
                log.warning("embedding failed; search runs lexical-only",
                            extra={"business_id": catalog.business_id, "error": repr(exc)})
                vectors = None
        prices = np.array([float(p.price.to_decimal()) for p in products], dtype=np.float64)
        available = np.array([p.available for p in products], dtype=bool)
        log.info("indexed catalog", extra={"business_id": catalog.business_id, "version": catalog.version,
                                           "products": len(products), "dense": vectors is not None})
        return PreparedCatalog(
            catalog.business_id, catalog.version, len(products), products, lexicon, vectors, prices, available,
            catalog.policies, spread(catalog),
        )

    async def _stored_or_embedded(self, catalog: Catalog, products: tuple[Product, ...]) -> np.ndarray:
        """The catalog version's vectors from the store, or embedded now and stored for every process."""
        assert self.encoder is not None
        model = self.encoder.name
        if self.store is not None:
            try:
                stored = await self.store.get(catalog.business_id, catalog.version, model)
            except StorageError as exc:
                log.warning("stored vectors unreadable; embedding", extra={"error": repr(exc)})
                stored = None
            if stored is not None and stored.rows == len(products) and stored.dim == self.encoder.dim:
                matrix = np.frombuffer(stored.data, dtype="<f2").reshape(stored.rows, stored.dim)
                return matrix.astype(np.float32)
        vectors = await self._embed_all([product_text(p) for p in products])
        if self.store is not None:
            half = np.ascontiguousarray(vectors, dtype="<f2")
            try:
                await self.store.put(catalog.business_id, catalog.version, model,
                                     StoredVectors(half.tobytes(), half.shape[0], half.shape[1]))
            except StorageError as exc:
                log.warning("could not store product vectors", extra={"error": repr(exc)})
        return vectors

    async def _embed_all(self, texts: list[str]) -> np.ndarray:
        assert self.encoder is not None
        parts = []
        for start in range(0, len(texts), EMBED_BATCH):
            parts.append(np.asarray((await self.encoder.embed(texts[start : start + EMBED_BATCH])).vectors,
                                    dtype=np.float32))
        return np.vstack(parts)

    async def embed_query(self, text: str) -> np.ndarray | None:
        if self.encoder is None or not text.strip():
            return None
        try:
            return np.asarray((await self.encoder.embed([text])).vectors[0], dtype=np.float32)
        except (ModelError, ConfigError) as exc:
            log.warning("query embedding failed; lexical-only", extra={"error": repr(exc)})
            return None

    # ------------------------------------------------------------------ search

    async def search(self, catalog: Catalog, query: str, *, k: int = 6) -> RetrievalResult:
        """Rank ``catalog``'s products (or policies) for ``query``; at most ``k`` products."""
        prepared = await self._get(catalog)
        q = parse(query)
        content_query = " ".join(q.content)
        if self._asks_overview(q, prepared):
            return self._overview(query, content_query, prepared, k)
        read = prepared.lexicon.read(q.content)
        vector = await self.embed_query(dense_text(q, read)) if prepared.vectors is not None else None
        scored = self.score(prepared, q, read, vector)
        policy = self._policy(prepared, q, read, scored)
        if policy is not None:
            return RetrievalResult(query, content_query, "policy", (), (policy,), 0.8)
        order = self.order(prepared, q, scored)[:k]
        hits = tuple(
            ProductHit(prepared.products[int(scored.docs[i])].handle, round(float(scored.probs[i]), 4),
                       round(float(scored.features[i, RANK_FEATURES.index("cov_strong")]), 4),
                       round(float(scored.features[i, RANK_FEATURES.index("cos")]), 4))
            for i in order
        )
        corrected = read.corrected_text or content_query
        if self.model is not None and hits and self._unsure(scored.p_not_sold):
            picked = await self._ask_model(prepared, query, hits)
            if picked == "none":
                return RetrievalResult(query, corrected, "none", (), (), round(scored.p_not_sold, 4))
            if picked is not None:
                first = next(h for h in hits if h.handle == picked)
                rest = tuple(h for h in hits if h is not first)
                return RetrievalResult(query, corrected, "products", (first, *rest), (), round(float(first.score), 4))
        if not hits or self.declines(q, scored):
            # "is the moka pot induction compatible" presumes the shop has the one thing it names first
            subject = prepared.lexicon.named_by(q.subject) if q.subject else None
            if subject is None:
                return RetrievalResult(query, corrected, "none", (), (), round(scored.p_not_sold, 4),
                                       near=self._near(prepared, read, hits))
            return RetrievalResult(query, corrected, "products", (ProductHit(prepared.products[subject].handle,
                                   1.0 - scored.p_not_sold, 0.0, 0.0),), (), round(1.0 - scored.p_not_sold, 4))
        confidence = float(scored.probs[order[0]]) * (1.0 - scored.p_not_sold)
        return RetrievalResult(query, corrected, "products", hits, (), round(confidence, 4))

    @staticmethod
    def order(prepared: PreparedCatalog, q: ParsedQuery, scored: Scored) -> np.ndarray:
        """Candidates best first; for "the cheapest X", the likely matches by price, lowest first.

        A likely match is one the ranker gives even odds or better of being asked for (its own
        decision boundary, not a tuned constant); the rest follow in the ranker's order.
        """
        order = np.argsort(-scored.probs, kind="stable")
        if "cheapest" not in q.cues or len(order) < 2:
            return order
        likely = order[scored.probs[order] >= 0.5]
        if len(likely) < 2:
            return order
        docs = scored.docs[likely]
        by_price = likely[np.lexsort((prepared.prices[docs], ~prepared.available[docs]))]
        return np.concatenate([by_price, order[scored.probs[order] < 0.5]])

    def declines(self, q: ParsedQuery, scored: Scored) -> bool:
        """Whether the shop sells nothing that fits: the fitted abstainer's call, except that
        "something under 30" names nothing to not sell, and a comparison whose two sides both
        match (even odds or better by the ranker) names two things the shop does sell."""
        if not len(scored.docs):
            return True
        names_nothing = q.has_budget and not q.content
        compares_two = "compare" in q.cues and int((scored.probs >= 0.5).sum()) >= 2
        return scored.p_not_sold >= self.models.abstain_threshold and not names_nothing and not compares_two

    @staticmethod
    def _near(prepared: PreparedCatalog, read: ReadQuery, hits: tuple[ProductHit, ...]) -> tuple[ProductHit, ...]:
        """Of the ranked candidates, those whose name holds a word of the question that at most
        :data:`NEAR_NAMES` products' names hold: what the shopper named, if not all they asked."""
        rare = prepared.lexicon.rare_name_docs(read, NEAR_NAMES, NEAR_MIN_LETTERS)
        index_of = prepared.lexicon.index_of  # built once per catalog: a dict per question cost ms at 10k
        out = [hit for hit in hits if any(bool(np.any(docs == index_of[hit.handle])) for _, docs in rare)]
        return tuple(out[:NEAR_NAMES])

    def _unsure(self, p_not_sold: float) -> bool:
        lo, hi = self.models.meta.get("unsure", (0.0, 0.0))
        return float(lo) <= p_not_sold < float(hi)

    async def _ask_model(self, prepared: PreparedCatalog, query: str, hits: tuple[ProductHit, ...]) -> str | None:
        """The model's pick among the retrieved products ("none" when nothing fits), None on failure.

        It may only answer one of the handles it was shown, or "none": never a product, price or id
        of its own.
        """
        assert self.model is not None
        by_handle = {p.handle: p for p in prepared.products}
        shown = [h.handle for h in hits[:MODEL_CHOICES]]
        listing = "\n".join(
            f"{h}: {by_handle[h].name} ({by_handle[h].product_type}) - {by_handle[h].description[:160]}" for h in shown
        )
        schema = {"type": "object", "properties": {"handle": {"type": "string", "enum": [*shown, "none"]}},
                  "required": ["handle"], "additionalProperties": False}
        system = ("You help a shop answer a shopper. Pick the one product below that the shopper asks for, "
                  "or none if the shop sells nothing that fits. Answer with JSON only.\nProducts:\n" + listing)
        request = ChatRequest(messages=(ChatMessage("system", system), ChatMessage("user", query[:500])),
                              json_schema=schema, schema_name="pick", max_tokens=40, temperature=0.0)
        try:
            response = await self.model.complete(request)
        except ModelError as exc:
            log.warning("residue model failed; keeping the fitted decision", extra={"error": repr(exc)})
            return None
        picked = response.parsed.get("handle") if isinstance(response.parsed, dict) else None
        if picked == "none" or picked in shown:
            return str(picked)
        log.warning("residue model answered outside its choices", extra={"answer": str(picked)[:40]})
        return None

    def _asks_overview(self, q: ParsedQuery, prepared: PreparedCatalog) -> bool:
        """A question about the whole shop: an overview cue and no content word left ("what do you
        guys sell?", "what kind of store is this"; not "do you sell laptops"), or the shop's name."""
        content = {stem(w) for w in q.content}
        if content and prepared.lexicon.store_stems and content <= prepared.lexicon.store_stems:
            return True  # "tell me about <the shop's name>"
        return "overview" in q.cues and not content

    def _overview(self, query: str, content: str, prepared: PreparedCatalog, k: int) -> RetrievalResult:
        handles = prepared.overview[: min(prepared.size, max(k, 3))]
        if not handles:
            return RetrievalResult(query, content, "none", (), (), 1.0)
        return RetrievalResult(query, content, "overview", tuple(ProductHit(h, 1.0, 0.0, 0.0) for h in handles),
                               (), OVERVIEW_CONFIDENCE)

    @staticmethod
    def policy_candidate(prepared: PreparedCatalog, q: ParsedQuery, read: ReadQuery,
                         scored: Scored) -> tuple[int, float, np.ndarray] | None:
        """:func:`chatpay.nlu.policy.policy_candidate` with the best product's evidence from ``scored``."""
        a = scored.abstain_features
        evidence = ProductEvidence(float(a[ABSTAIN_FEATURES.index("top_strong")]),
                                   float(a[ABSTAIN_FEATURES.index("top_p")]), scored.p_not_sold)
        return policy_candidate(prepared.lexicon, prepared.size, q, read, evidence,
                                rare_name=(NEAR_NAMES, NEAR_MIN_LETTERS))

    def _policy(self, prepared: PreparedCatalog, q: ParsedQuery, read: ReadQuery, scored: Scored) -> PolicyHit | None:
        """The policy the question asks about, if any: a fitted decision over the best candidate.

        The candidate is the policy whose keywords (or title) the question says in full, covering
        the largest share of its words; whether it answers rather than the products do is the
        fitted policy model's call (:data:`POLICY_FEATURES`), since a keyword is often a product
        word too ("card", "track", "measure").
        """
        found = self.policy_candidate(prepared, q, read, scored)
        if found is None:
            return None
        i, share, features = found
        if self.models.policy(features) < 0.5:  # the model's own decision boundary, classes balanced
            return None
        policy = prepared.policies[i]
        return PolicyHit(policy.id, policy.title, round(share, 4))

    def candidates(self, prepared: PreparedCatalog, read: ReadQuery, cos: np.ndarray | None) -> np.ndarray:
        """The best products by BM25 and by cosine (``cos``: the question's cosine with every product)."""
        picks: list[np.ndarray] = []
        if read.bm25 is not None and prepared.size:
            nonzero = np.flatnonzero(read.bm25)
            if len(nonzero) > CANDIDATES:
                nonzero = nonzero[np.argpartition(-read.bm25[nonzero], CANDIDATES)[:CANDIDATES]]
            picks.append(nonzero)
        if cos is not None and prepared.size:
            n = min(CANDIDATES, prepared.size)
            picks.append(np.argpartition(-cos, n - 1)[:n] if n < prepared.size else np.arange(prepared.size))
        if not picks:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate(picks)).astype(np.int64)

    def score(self, prepared: PreparedCatalog, q: ParsedQuery, read: ReadQuery,
              vector: np.ndarray | None) -> Scored:
        """Features and fitted scores for the candidates of one question."""
        # One matrix product per question: candidates and features share it.
        cos_all = prepared.vectors @ vector if vector is not None and prepared.vectors is not None else None
        docs = self.candidates(prepared, read, cos_all)
        if q.has_budget:
            budget_docs = np.flatnonzero(self._in_budget(prepared, q))
            if not q.content:  # "something under 30": anything in the budget, nearest in meaning first
                docs = budget_docs
            docs = docs[np.isin(docs, budget_docs)]
        n = len(docs)
        known = [t for t in read.terms if t.known]
        unknown_idf = math.log(1 + prepared.size + 0.5) if prepared.size else 1.0
        total_idf = sum(t.idf for t in known) + unknown_idf * (len(read.terms) - len(known))
        unknown_share = (unknown_idf * (len(read.terms) - len(known)) / total_idf) if total_idf else 0.0
        f = np.zeros((n, len(RANK_FEATURES)), dtype=np.float32)
        if n:
            bm25 = read.bm25[docs] if read.bm25 is not None else np.zeros(n, dtype=np.float32)
            top_bm25 = float(read.bm25.max()) if read.bm25 is not None and read.bm25.size else 0.0
            f[:, 0] = bm25 / top_bm25 if top_bm25 > 0 else 0.0
            f[:, 1] = bm25 / (sum(t.idf for t in known) * (BM25_K1 + 1)) if known else 0.0
            cov = prepared.lexicon.coverage(read, docs, unknown_idf)
            f[:, 2], f[:, 3], f[:, 4], f[:, 5] = cov["strong"], cov["any"], cov["name"], cov["type"]
            f[:, 6], f[:, 7], f[:, 8] = cov["name_precision"], cov["head_strong"], cov["head_any"]
            if cos_all is not None:
                cos = cos_all[docs]
                f[:, 9] = cos
                f[:, 10] = cos - float(cos_all.max())
                f[:, 11] = 1.0 / (1.0 + dense_ranks(cos_all, docs))
            bm_rank = np.argsort(np.argsort(-bm25, kind="stable"), kind="stable")
            f[:, 12] = np.where(bm25 > 0, 1.0 / (1.0 + bm_rank), 0.0)
            f[:, 13] = unknown_share
            f[:, 14] = prepared.available[docs]
            f[:, 15] = f[:, 2] * f[:, 9]
        probs = self.models.rank(f, dense=cos_all is not None)
        a = np.zeros(len(ABSTAIN_FEATURES), dtype=np.float32)
        order = np.argsort(-probs, kind="stable")
        if n:
            top = order[0]
            a[0] = probs[top]
            a[1] = probs[order[1]] if n > 1 else 0.0
            a[2] = f[top, 9]
            a[3] = float(cos_all.max()) if cos_all is not None else 0.0
            a[4] = f[top, 2]
            a[5] = float(f[order[:3], 2].max())
            a[11] = float(f[top, 3] - f[top, 2])
            a[12] = a[0] - a[1]
            a[14] = f[top, 3]
            a[21] = f[top, 6]
            a[22] = f[top, 7]
            a[23] = min(int((probs >= 0.5).sum()), 5) / 5.0
            a[24] = float(probs[order[:3]].mean())
            a[25] = f[top, 1]
        a[6] = unknown_share
        a[7] = min(len(known), 4) / 4.0
        head = read.terms[-1] if read.terms else None
        a[8] = math.log1p(prepared.lexicon.strong_df(head.stem)) if head is not None else 0.0
        if cos_all is not None and len(cos_all) > 1:
            two = np.partition(cos_all, len(cos_all) - 2)[-2:]
            a[13] = float(two[1] - two[0])
            spread_ = float(cos_all.std()) or 1.0
            a[16] = float((two[1] - cos_all.mean()) / spread_)  # how far the best stands out of the shop
            a[17] = a[13] / spread_
        a[15] = 1.0 if any(not t.known and t.surface[0].isdigit() for t in read.terms) else 0.0
        a[18] = 1.0 if "need" in q.cues else 0.0
        a[19] = min(len(read.terms), 8) / 8.0
        a[20] = 1.0 if head is not None and not head.known else 0.0
        if n:
            a[26], a[27] = prepared.lexicon.conflicts(read, q.head, int(docs[order[0]]))
        a[9] = 1.0 if "recommend" in q.cues or "compare" in q.cues else 0.0
        a[10] = 1.0 if q.has_budget else 0.0
        p_not_sold = self.models.abstain(a, dense=cos_all is not None) if n else 1.0
        return Scored(docs, f, probs, a, p_not_sold)

    @staticmethod
    def _in_budget(prepared: PreparedCatalog, q: ParsedQuery) -> np.ndarray:
        ok = prepared.available.copy()
        if q.max_price is not None:
            ok &= prepared.prices <= float(q.max_price)
        if q.min_price is not None:
            ok &= prepared.prices >= float(q.min_price)
        return ok
