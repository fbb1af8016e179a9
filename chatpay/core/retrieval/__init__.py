"""Product and policy retrieval for the enquiry and cart agents (pure Python).

Use :class:`Retriever`: ``await retriever.prepare(catalog)`` after an import, then
``await retriever.search(catalog, text, k=6)`` per question. See :mod:`.hybrid` for how it
decides, :mod:`.lexical` for the inverted index and :mod:`.text` for the query's words.
"""

from chatpay.core.retrieval.hybrid import Retriever, product_text
from chatpay.core.retrieval.results import PolicyHit, ProductHit, RetrievalKind, RetrievalResult
from chatpay.core.retrieval.text import QueryText, parse_query

__all__ = [
    "PolicyHit",
    "ProductHit",
    "QueryText",
    "RetrievalKind",
    "RetrievalResult",
    "Retriever",
    "parse_query",
    "product_text",
]
