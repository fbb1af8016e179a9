"""Retrieval on small catalogs built here: what a shopper notices about finding products."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from chatpay.adapters.memory import HashingEmbedder, PythonVectorIndex
from chatpay.core.catalog import Catalog, PolicyDoc, Product, Variant
from chatpay.core.errors import ModelError
from chatpay.core.money import Money
from chatpay.core.ports import Embeddings
from chatpay.core.retrieval import Retriever, parse_query


def _product(handle: str, name: str, ptype: str, tags: str, desc: str, *, available: bool = True,
             variants: Sequence[str] = ("Default Title",)) -> Product:
    return Product(
        handle, name, desc,
        tuple(Variant(f"{handle}-{i}", v, Money.parse("9.50", "EUR"), available=available)
              for i, v in enumerate(variants)),
        ptype, tuple(t.strip() for t in tags.split(",") if t.strip()),
    )


def stationery(business: str = "paper", *, version: int = 1, extra: Sequence[Product] = ()) -> Catalog:
    """A stationery shop: nothing like the demo store."""
    products = [
        _product("fountain-pen", "Classic Fountain Pen", "Pens", "pen, fountain pen, ink, writing",
                 "A brass fountain pen with a fine steel nib for smooth everyday writing."),
        _product("gel-pens", "Gel Pens (Pack of 10)", "Pens", "pen, gel pen, colours",
                 "Ten bright gel pens that dry fast and never smudge.", variants=("Black", "Blue", "Rainbow")),
        _product("dotted-notebook", "Dotted A5 Notebook", "Notebooks", "notebook, journal, bullet journal, dotted",
                 "160 pages of thick 120 gsm paper, lay-flat binding, numbered pages."),
        _product("leather-journal", "Leather Travel Journal", "Notebooks", "journal, leather, travel, refillable",
                 "A refillable leather cover with three inserts, for sketches and travel notes."),
        _product("washi-tape", "Washi Tape Set", "Decoration", "tape, washi, decoration, crafts",
                 "Twelve rolls of Japanese paper tape for decorating pages and wrapping gifts."),
        _product("desk-lamp", "Folding Desk Lamp", "Desk", "lamp, light, desk, led",
                 "A dimmable LED lamp that folds flat; warm light for late-night reading.",
                 available=False),
        _product("ink-bottle", "Bottled Fountain Pen Ink", "Pens", "ink, bottle, refill",
                 "50 ml of deep blue ink to refill converter fountain pens."),
        _product("ink-cartridges", "Ink Cartridges (Box of 6)", "Ink", "cartridges, refill",
                 "Universal short cartridges in black."),
        _product("paper-inserts", "Dotted Paper Inserts", "Notebooks", "refill, insert",
                 "Three inserts that fit the leather journal."),
    ]
    policies = [
        PolicyDoc("shipping", "Shipping", "We post to the UK and the EU. Postage is free over 30 pounds.",
                  ("shipping", "ship", "postage", "delivery")),
        PolicyDoc("returns", "Returns", "Send unused items back within 14 days for a full refund.",
                  ("return", "returns", "refund", "send back")),
        PolicyDoc("payment", "Payment methods", "We take Visa, Mastercard and PayPal.",
                  ("pay", "payment", "card", "paypal")),
    ]
    return Catalog.of(business, "EUR", [*products, *extra], policies=policies, version=version)


@pytest.fixture
def lexical() -> Retriever:
    return Retriever(None, PythonVectorIndex)


async def test_names_find_their_product(lexical: Retriever) -> None:
    result = await lexical.search(stationery(), "leather travel journal")
    assert result.kind == "products"
    assert result.ranked_keys()[0] == "leather-journal"
    assert result.confidence > 0.8


@pytest.mark.parametrize(("query", "handle"), [
    ("fountian pen", "fountain-pen"),       # transposed letters
    ("leathr jurnal", "leather-journal"),    # dropped letters
    ("notebok", "dotted-notebook"),
    ("washitape", "washi-tape"),             # words run together
])
async def test_typos_still_find_the_product(lexical: Retriever, query: str, handle: str) -> None:
    result = await lexical.search(stationery(), query)
    assert result.kind == "products"
    assert result.ranked_keys()[0] == handle


def test_commerce_filler_is_dropped() -> None:
    q = parse_query("Hi! Do you have any washi tape, please?")
    assert q.content_query == "washi tape"
    assert q.content == ("washi", "tape")
    assert parse_query("I'm looking for something to write with").content == ("write",)


async def test_filler_does_not_change_the_answer(lexical: Retriever) -> None:
    plain = await lexical.search(stationery(), "gel pens")
    chatty = await lexical.search(stationery(), "hello, do you sell gel pens by any chance?")
    assert chatty.ranked_keys()[:2] == plain.ranked_keys()[:2]
    assert chatty.ranked_keys()[0] == "gel-pens"


@pytest.mark.parametrize("query", ["do you sell shampoo", "a laptop", "I need a garden hose", "running shoes"])
async def test_abstains_when_nothing_fits(lexical: Retriever, query: str) -> None:
    result = await lexical.search(stationery(), query)
    assert result.kind == "none"
    assert result.products == ()
    assert result.ranked_keys() == []


@pytest.mark.parametrize("query", ["printer cartridges", "printer ink", "a crayon"])
async def test_abstains_on_an_unknown_kind_of_a_known_word(lexical: Retriever, query: str) -> None:
    # The shop sells cartridges and ink for pens, not for printers: a word of the thing asked
    # for that no product holds means the shop lacks it.
    result = await lexical.search(stationery(), query)
    assert result.kind == "none"


@pytest.mark.parametrize(("query", "handle"), [
    ("cartridges for a fountain pen", "ink-cartridges"),
    ("refills for the leather journal", "paper-inserts"),
])
async def test_the_thing_asked_for_outranks_what_it_is_for(lexical: Retriever, query: str, handle: str) -> None:
    # The journal's name holds more of the words, but refills are what is wanted.
    result = await lexical.search(stationery(), query)
    assert result.ranked_keys()[0] == handle


@pytest.mark.parametrize("query", ["what do you sell?", "show me everything", "what products do you have"])
async def test_store_wide_questions_get_an_overview_across_categories(lexical: Retriever, query: str) -> None:
    result = await lexical.search(stationery(), query, k=4)
    assert result.kind == "overview"
    assert len(result.products) == 4
    catalog = stationery()
    types = {catalog.products[h.handle].product_type for h in result.products}
    assert len(types) == 4  # a different category each, before any second helping


async def test_overview_of_a_tiny_store_shows_it_all(lexical: Retriever) -> None:
    tiny = Catalog.of("tiny", "EUR", list(stationery())[:2])
    result = await lexical.search(tiny, "what do you sell")
    assert result.kind == "overview"
    assert sorted(result.ranked_keys()) == ["fountain-pen", "gel-pens"]


@pytest.mark.parametrize(("query", "policy"), [
    ("do you ship to France?", "shipping"),
    ("how much is postage", "shipping"),
    ("can I send it back if I don't like it", "returns"),
    ("can I pay with PayPal", "payment"),
])
async def test_policy_questions_get_the_policy(lexical: Retriever, query: str, policy: str) -> None:
    result = await lexical.search(stationery(), query)
    assert result.kind == "policy"
    assert result.ranked_keys()[0] == f"policy:{policy}"


async def test_a_product_named_in_full_beats_a_policy_keyword(lexical: Retriever) -> None:
    gift_card = _product("gift-card", "Paper Shop Gift Card", "Gift cards", "gift, voucher",
                         "A card to spend on anything in the shop.")
    result = await lexical.search(stationery(extra=[gift_card]), "do you have gift cards?")
    assert result.kind == "products"
    assert result.ranked_keys()[0] == "gift-card"


async def test_out_of_stock_products_still_rank(lexical: Retriever) -> None:
    result = await lexical.search(stationery(), "desk lamp")
    assert result.ranked_keys()[0] == "desk-lamp"


async def test_at_most_k_products_best_first_with_scores_in_range(lexical: Retriever) -> None:
    result = await lexical.search(stationery(), "pen", k=2)
    assert len(result.products) == 2
    assert result.products[0].score >= result.products[1].score
    assert all(0.0 <= h.score <= 1.0 and 0.0 <= h.lexical <= 1.0 for h in result.products)
    assert 0.0 <= result.confidence <= 1.0


async def test_index_is_rebuilt_when_the_catalog_version_changes() -> None:
    embedder = HashingEmbedder()
    retriever = Retriever(embedder, PythonVectorIndex)

    def catalog_embeddings() -> list[int]:  # embed calls over whole catalogs, not queries or policies
        return [args[0] for _, args in embedder.calls if args[0] >= 9]

    v1 = stationery(version=1)
    await retriever.prepare(v1)
    await retriever.search(v1, "notebook")
    assert catalog_embeddings() == [9]
    assert (await retriever.search(v1, "sealing wax")).kind == "none"

    wax = _product("sealing-wax", "Sealing Wax Sticks", "Decoration", "wax, seal, letters",
                   "Six sticks of red sealing wax for letters and invitations.")
    v2 = stationery(version=2, extra=[wax])
    result = await retriever.search(v2, "sealing wax")
    assert result.ranked_keys()[0] == "sealing-wax"
    assert retriever.prepared_version("paper") == 2
    assert catalog_embeddings() == [9, 10]

    await retriever.search(v2, "wax")  # same version: no rebuild
    await retriever.prepare(v2)
    assert catalog_embeddings() == [9, 10]


async def test_each_business_has_its_own_index(lexical: Retriever) -> None:
    paper = stationery("paper")
    bakery = Catalog.of("bakery", "EUR", [
        _product("sourdough", "Sourdough Loaf", "Bread", "bread, sourdough", "A slow-fermented loaf."),
        _product("croissant", "Butter Croissant", "Pastry", "pastry, butter", "Flaky and golden."),
    ], version=1)
    await lexical.prepare(paper)
    await lexical.prepare(bakery)
    assert (await lexical.search(bakery, "fountain pen")).kind == "none"
    assert (await lexical.search(paper, "sourdough")).kind == "none"
    assert (await lexical.search(bakery, "sourdough")).ranked_keys()[0] == "sourdough"
    assert (await lexical.search(paper, "fountain pen")).ranked_keys()[0] == "fountain-pen"
    assert lexical.prepared_version("paper") == 1 and lexical.prepared_version("bakery") == 1


class _BrokenEmbedder:
    name = "broken"
    dim = 8

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        raise ModelError("embedding service down")


async def test_a_failing_embedder_falls_back_to_lexical() -> None:
    result = await Retriever(_BrokenEmbedder(), PythonVectorIndex).search(stationery(), "dotted notebook")
    assert result.ranked_keys()[0] == "dotted-notebook"
    assert result.products[0].dense == 0.0


async def test_dense_side_joins_the_ranking() -> None:
    retriever = Retriever(HashingEmbedder(), PythonVectorIndex)
    result = await retriever.search(stationery(), "leather journal")
    assert result.ranked_keys()[0] == "leather-journal"
    assert result.products[0].dense > 0.0


async def test_an_empty_catalog_abstains(lexical: Retriever) -> None:
    empty = Catalog.of("empty", "EUR", [])
    assert (await lexical.search(empty, "pen")).kind == "none"
    assert (await lexical.search(empty, "what do you sell")).kind == "none"


async def test_a_replaced_catalog_of_the_same_size_is_reindexed(lexical: Retriever) -> None:
    v1 = stationery(version=1)
    await lexical.prepare(v1)
    renamed = {h: replace(p, name="Midnight Quill" if h == "fountain-pen" else p.name) for h, p in v1.products.items()}
    v2 = replace(v1, products=renamed, version=2)
    assert (await lexical.search(v2, "midnight quill")).ranked_keys()[0] == "fountain-pen"


async def test_products_covering_every_word_outrank_one_naming_only_the_head(lexical: Retriever) -> None:
    """'light roast': the light roasts (in their tags) before a dark roast that has 'roast' in its name."""
    catalog = Catalog.of("beans", "EUR", [
        _product("dark", "Midnight Dark Roast", "Coffee", "coffee, dark roast", "Smoky and bold."),
        _product("sunny", "Sunny Side Beans", "Coffee", "coffee, light roast", "Bright and floral."),
        _product("dawn", "Dawn Single Origin", "Coffee", "coffee, light roast", "Citrus and tea-like."),
        _product("mug", "Stoneware Mug", "Drinkware", "mug", "Holds a light lunch of coffee."),
    ])
    result = await lexical.search(catalog, "do you have a light roast?")
    assert {h.handle for h in result.products[:2]} == {"sunny", "dawn"}
