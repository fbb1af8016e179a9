"""Retrieval with the shipped local embedding model: meaning reaches what words cannot."""

from __future__ import annotations

import pytest

from chatpay.adapters.local_embedder import LocalEmbedder
from chatpay.adapters.memory import PythonVectorIndex
from chatpay.adapters.vector_numpy import NumpyVectorIndex
from chatpay.core.catalog import Catalog, Product, Variant
from chatpay.core.money import Money
from chatpay.core.retrieval import Retriever


def _product(handle: str, name: str, ptype: str, tags: tuple[str, ...], desc: str) -> Product:
    return Product(handle, name, desc, (Variant(f"{handle}-1", "Default Title", Money.parse("6.00", "EUR")),),
                   ptype, tags)


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return LocalEmbedder()


@pytest.fixture
def tea_shop() -> Catalog:
    # No product says "sleep": only the meaning of "bedtime" and "wind down" can find it.
    return Catalog.of("teashop", "EUR", [
        _product("chamomile", "Chamomile Bedtime Tea", "Tea", ("herbal", "bedtime", "calm"),
                 "A calming caffeine-free infusion to wind down before bed."),
        _product("espresso", "Espresso Roast", "Coffee", ("coffee", "dark roast"),
                 "Bold beans for espresso and moka pots."),
        _product("mug", "Stoneware Mug", "Mugs", ("mug", "cup"), "A 300 ml hand-glazed mug."),
        _product("sencha", "Sencha Green Tea", "Tea", ("green tea", "japan"),
                 "Grassy loose-leaf green tea with caffeine."),
        _product("kettle", "Gooseneck Kettle", "Brewing", ("kettle", "pour over"),
                 "Electric kettle with temperature control."),
        _product("flask", "Travel Flask", "Drinkware", ("flask", "insulated"), "Vacuum-insulated steel flask, 500 ml."),
    ], version=1)


async def test_a_paraphrase_reaches_the_product_through_meaning(embedder: LocalEmbedder, tea_shop: Catalog) -> None:
    lexical_only = await Retriever(None, NumpyVectorIndex).search(tea_shop, "something to help me sleep")
    assert lexical_only.kind == "none"  # no shared words

    result = await Retriever(embedder, NumpyVectorIndex).search(tea_shop, "something to help me sleep")
    assert result.kind == "products"
    assert result.ranked_keys()[0] == "chamomile"
    assert result.products[0].dense > 0.3


@pytest.mark.parametrize("query", ["do you sell shampoo", "a laptop", "bicycle pump", "dog food"])
async def test_meaning_does_not_invent_a_match(embedder: LocalEmbedder, tea_shop: Catalog, query: str) -> None:
    result = await Retriever(embedder, NumpyVectorIndex).search(tea_shop, query)
    assert result.kind == "none"


async def test_numpy_and_naive_indexes_rank_alike(embedder: LocalEmbedder, tea_shop: Catalog) -> None:
    fast = Retriever(embedder, NumpyVectorIndex)
    naive = Retriever(embedder, PythonVectorIndex)
    for query in ("green tea", "kettle for pour over", "something to help me sleep", "a cup"):
        a, b = await fast.search(tea_shop, query), await naive.search(tea_shop, query)
        assert a.ranked_keys() == b.ranked_keys()
        assert [h.score for h in a.products] == pytest.approx([h.score for h in b.products], abs=1e-3)
