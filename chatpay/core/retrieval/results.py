"""What retrieval returns: ranked products, matching policies, a kind and a confidence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RetrievalKind = Literal["products", "policy", "overview", "none"]


@dataclass(frozen=True)
class ProductHit:
    """A ranked product.

    Attributes:
        handle: the product's key in the catalog.
        score: the fused score, 0..1, that ranks the hits.
        lexical: the lexical score, 0..1 (share of the query's words found, weighted by field).
        dense: the cosine similarity of the query and the product's text (0 when lexical-only).
    """

    handle: str
    score: float
    lexical: float
    dense: float


@dataclass(frozen=True)
class PolicyHit:
    """A store policy or FAQ entry that answers the query."""

    id: str
    title: str
    score: float


@dataclass(frozen=True)
class RetrievalResult:
    """The outcome of one search.

    Attributes:
        query: the shopper's text as given.
        content_query: the query with commerce filler removed ("do you sell shampoo" -> "shampoo").
        kind: ``products`` (a match), ``policy`` (a shipping/returns/... question), ``overview``
            (a question about the whole shop) or ``none`` (the shop sells nothing that fits).
        products: ranked best first, at most ``k``; empty when ``kind`` is ``none``.
        policies: matching policies, best first; they lead only when ``kind`` is ``policy``.
        confidence: 0..1, how likely the first product (or policy, or the overview) is what
            the shopper meant; for ``none``, how likely it is that the shop has nothing that fits.
        near: for ``none``, the products whose own name holds a word of the question that few
            names share ("a warm flannel for fall": the flannel overshirt), best first: the
            closest the shop has, offered as such, never as the answer.
    """

    query: str
    content_query: str
    kind: RetrievalKind
    products: tuple[ProductHit, ...]
    policies: tuple[PolicyHit, ...]
    confidence: float
    near: tuple[ProductHit, ...] = ()

    def ranked_keys(self) -> list[str]:
        """``policy:<id>`` keys first when ``kind`` is ``policy``, then product handles."""
        keys = [f"policy:{p.id}" for p in self.policies] if self.kind == "policy" else []
        return keys + [h.handle for h in self.products]

    @property
    def handles(self) -> list[str]:
        return [h.handle for h in self.products]
