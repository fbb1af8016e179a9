"""Catalog search with the shipped fitted models, on a small catalog of another trade."""

from __future__ import annotations

import pytest

from chatpay.adapters.encoders.onnx_minilm import OnnxMiniLMEncoder
from chatpay.core.catalog import Catalog, PolicyDoc, Product, Variant
from chatpay.core.money import Money
from chatpay.nlu.lexicon import CatalogLexicon
from chatpay.nlu.search import CatalogSearch


def _p(handle: str, name: str, kind: str, desc: str, price: str, tags: tuple[str, ...] = (),
       variants: tuple[str, ...] = ()) -> Product:
    vs = tuple(Variant(f"{handle}-{i}", v, Money.parse(price, "EUR")) for i, v in enumerate(variants or ("Default Title",)))
    return Product(handle, name, desc, vs, product_type=kind, tags=tags)


CATALOG = Catalog.of(
    "garden", "EUR",
    [
        _p("hose-25", "FlexiCoil Garden Hose", "Hoses", "A kink-free hose for watering beds.", "24.00",
           ("hose", "watering"), ("15 m", "25 m")),
        _p("can-10", "Copper Watering Can", "Watering", "Ten litre can with a long spout.", "39.00", ("watering",)),
        _p("gloves", "Nitrile Garden Gloves", "Gloves", "Grippy gloves that keep hands dry.", "6.50",
           ("gloves",), ("S", "M", "L")),
        _p("trowel", "Ash Handle Trowel", "Hand tools", "A forged steel trowel for planting bulbs.", "14.00",
           ("tools", "trowel")),
        _p("compost", "Peat-Free Compost", "Compost", "Forty litre bag of peat-free compost, works with any TV "
           "gardening programme's advice.", "8.90", ("compost", "soil")),
        _p("feeder", "Hanging Bird Feeder", "Wildlife", "A feeder for seed and nuts.", "18.00", ("birds",)),
        _p("kneeler", "Foam Kneeler", "Accessories", "Soft pad to kneel on while weeding.", "9.00", ("comfort",)),
        _p("shears", "Bypass Pruning Shears", "Hand tools", "Sharp shears for roses and shrubs.", "22.00",
           ("pruning", "tools")),
        _p("pots-set", "Terracotta Pot Set", "Pots", "Three classic clay pots.", "19.00", ("pots",)),
        _p("bulbs", "Tulip Bulb Mix", "Bulbs", "Twenty tulip bulbs for spring colour.", "11.00", ("bulbs",)),
        _p("hose-reel", "Hozelock Hose Reel", "Hoses", "A wall-mounted reel that winds a hose away.", "45.00",
           ("hose", "reel")),
        _p("stand", "Подставка для шланга", "Accessories", "Металлическая подставка.", "15.00"),
    ],
    store_name="Groenhof Garden Centre",
    policies=(PolicyDoc("delivery", "Доставка", "Доставляем за три дня.", ("доставка", "курьер")),),
)


@pytest.fixture(scope="module")
def search() -> CatalogSearch:
    return CatalogSearch(OnnxMiniLMEncoder())


@pytest.mark.parametrize(
    ("query", "handle"),
    [
        ("FlexiCoil hose", "hose-25"),
        ("prunning shears", "shears"),  # a typo the catalog's vocabulary corrects
        ("watring can", "can-10"),  # a transposition
        ("tulips", "bulbs"),  # a word of the description, and the product's kind by meaning
        ("хозелок", "hose-reel"),  # a brand written in Cyrillic, by its sound
    ],
)
async def test_the_right_product_comes_first(search: CatalogSearch, query: str, handle: str) -> None:
    result = await search.search(CATALOG, query)
    assert result.kind == "products", result
    assert result.handles[0] == handle


@pytest.mark.parametrize("query", ["do you sell TVs?", "do you sell lawn mowers"])
async def test_what_the_shop_does_not_sell_is_declined(search: CatalogSearch, query: str) -> None:
    """"TV" sits in the compost's description; that makes no television of it."""
    result = await search.search(CATALOG, query)
    assert result.kind == "none", result


async def test_the_shops_name_gets_the_overview(search: CatalogSearch) -> None:
    result = await search.search(CATALOG, "tell me about Groenhof Garden Centre")
    assert result.kind == "overview"
    assert len(result.handles) >= 3


async def test_a_budget_filters_by_catalog_price(search: CatalogSearch) -> None:
    result = await search.search(CATALOG, "something under 10 euros")
    assert result.handles, result
    prices = {p.handle: p.price.to_decimal() for p in CATALOG}
    assert all(prices[h] <= 10 for h in result.handles)


def test_a_word_many_products_share_tells_less_than_a_rare_one() -> None:
    lexicon = CatalogLexicon(CATALOG)
    assert lexicon.idf("tool") < lexicon.idf("trowel")
    assert lexicon.correct("watring") == "watering"
    assert lexicon.correct("come") is None  # four letters: never "corrected" into a product word


class _Counting:
    """The real encoder, counting the texts it is asked to embed."""

    def __init__(self) -> None:
        self.inner = OnnxMiniLMEncoder()
        self.name, self.dim, self.texts = self.inner.name, self.inner.dim, 0

    async def embed(self, texts):  # type: ignore[no-untyped-def]
        self.texts += len(texts)
        return await self.inner.embed(texts)


async def test_product_vectors_are_embedded_once_and_loaded_by_the_next_process() -> None:
    from chatpay.adapters.memory import InMemoryVectorStore

    store = InMemoryVectorStore()
    first = _Counting()
    await CatalogSearch(first, vectors=store).prepare(CATALOG)
    assert first.texts == len(CATALOG)
    second = _Counting()  # another worker process: same store, nothing embedded again
    search = CatalogSearch(second, vectors=store)
    result = await search.search(CATALOG, "watring can")
    assert second.texts == 1  # the query only
    assert result.handles[0] == "can-10"


async def test_a_model_decides_only_the_unsure_questions_and_only_among_the_products_shown() -> None:
    from chatpay.adapters.memory import ScriptedChatModel

    encoder = OnnxMiniLMEncoder()
    plain = CatalogSearch(encoder)
    lo, hi = plain.models.meta["unsure"]
    queries = ["FlexiCoil hose", "something to cut back my roses", "do you sell TVs?", "a pad for my knees"]
    unsure = []
    for q in queries:
        prepared = await plain._get(CATALOG)
        from chatpay.nlu.query import parse

        parsed = parse(q)
        read = prepared.lexicon.read(parsed.content)
        scored = plain.score(prepared, parsed, read, await plain.embed_query(q))
        unsure.append(lo <= scored.p_not_sold < hi)
    assert any(unsure), "no query fell in the band, so this test would prove nothing"

    model = ScriptedChatModel([lambda request: {"handle": request.json_schema["properties"]["handle"]["enum"][-2]}] * 4
                              + [{"handle": "a-product-it-was-never-shown"}] * 4)
    withmodel = CatalogSearch(encoder, model=model)
    for q, asked in zip(queries, unsure, strict=True):
        before = len(model.requests)
        result = await withmodel.search(CATALOG, q)
        assert (len(model.requests) > before) == asked
        if asked:
            shown = model.requests[-1].json_schema["properties"]["handle"]["enum"]
            assert result.kind == "products" and result.handles[0] == shown[-2]  # the model's pick leads
    forged = CatalogSearch(encoder, model=ScriptedChatModel([{"handle": "not-in-the-catalog"}] * 4))
    for q in queries:
        result = await forged.search(CATALOG, q)
        assert "not-in-the-catalog" not in result.handles


async def test_the_cheapest_of_the_things_named_comes_first(search: CatalogSearch) -> None:
    plain = await search.search(CATALOG, "watering")
    assert plain.handles[:2] == ["can-10", "hose-25"]  # the can's name says it best
    result = await search.search(CATALOG, "the cheapest thing for watering")
    assert result.kind == "products" and result.handles[:2] == ["hose-25", "can-10"]  # 24.00 before 39.00


def test_the_stores_policy_words_are_never_corrected_into_product_words() -> None:
    """"доставка" is the delivery policy's word, not a typo for the product's "подставка"."""
    assert CatalogLexicon(CATALOG).read(["доставка"]).terms[0].surface == "доставка"
    without_policies = Catalog.of("garden", "EUR", CATALOG, store_name=CATALOG.store_name)
    assert CatalogLexicon(without_policies).read(["доставка"]).terms[0].surface == "подставка"
    assert CatalogLexicon(CATALOG).read(["хозелок"]).terms[0].surface == "hozelock"


async def test_a_policy_word_no_product_holds_asks_the_policy_even_beside_a_product(search: CatalogSearch) -> None:
    """"is the merino yarn one dye lot?" in a shop of merino yarns names the yarns, but
    "dye" is the dye-lot policy's word and no product's: it says more of the question than the
    shop's common words, so the policy answers. A policy word the products share does not."""
    yarns = [_p(f"merino-{w}", f"Merino {w.title()} Yarn", "Yarn", f"A merino {w} yarn in fifty gram balls.", "6.50",
                ("merino", "yarn"), ("Teal", "Oatmeal")) for w in ("dk", "aran", "sock", "lace", "chunky")]
    catalog = Catalog.of("garden", "EUR", [*yarns, *CATALOG], store_name=CATALOG.store_name, policies=(
        PolicyDoc("dye-lots", "Dye lots", "Balls in one order come from one dye lot.", ("dye lot",)),
        PolicyDoc("delivery", "Delivery", "We deliver in three days.", ("delivery", "yarn"))))
    result = await search.search(catalog, "is the merino yarn one dye lot?")
    assert result.kind == "policy" and result.policies[0].id == "dye-lots", result
    result = await search.search(catalog, "merino aran yarn in teal")
    assert result.kind == "products" and result.handles[0] == "merino-aran", result


async def test_a_declined_question_keeps_the_products_its_rare_name_word_names(search: CatalogSearch) -> None:
    """"a reel for my fishing rod" is not sold, but "reel" is a word of one product's name: that
    product is the closest, kept apart from the answer; "do you sell TVs?" names no product."""
    result = await search.search(CATALOG, "a reel for my fishing rod")
    assert result.kind == "none" and not result.products
    assert [h.handle for h in result.near] == ["hose-reel"]
    result = await search.search(CATALOG, "do you sell TVs?")
    assert result.kind == "none" and not result.near


async def test_a_policy_keyword_inside_a_product_request_is_not_the_policy(search: CatalogSearch) -> None:
    """"card" is the payment policy's keyword, but "a 128gb memory card" asks for a thing the
    shop does not sell, not how to pay; "can I pay by card?" asks the policy. The fitted policy
    decision tells them apart (the hand-set rule it replaced answered the payment policy to both)."""
    catalog = Catalog.of("garden-payments", "EUR", CATALOG, store_name=CATALOG.store_name, policies=(
        PolicyDoc("payment", "Payment", "We take Visa, Mastercard and PayPal.", ("payment", "pay", "card", "paypal")),
        PolicyDoc("delivery", "Delivery", "We deliver in three days.", ("delivery", "courier"))))
    result = await search.search(catalog, "do you have a 128gb memory card")
    assert result.kind == "none", result
    result = await search.search(catalog, "can I pay by card?")
    assert result.kind == "policy" and result.policies[0].id == "payment", result
    result = await search.search(catalog, "how long does delivery take to Spain?")
    assert result.kind == "policy" and result.policies[0].id == "delivery", result


def test_an_artefact_fitted_on_other_features_is_refused_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """Code and artefact must agree on the features; a stale artefact would otherwise fail deep in
    numpy with a shape error on the first question."""
    from dataclasses import replace

    from chatpay.core.errors import ConfigError
    from chatpay.nlu import search as search_module
    from chatpay.nlu.fitted import load_models

    shipped = load_models("all-minilm-l6-v2-int8")
    assert shipped.policy_model is not None
    stale = replace(shipped, policy_model=replace(shipped.policy_model, features=shipped.policy_model.features[:-1]))
    monkeypatch.setattr(search_module, "load_models", lambda encoder: stale)
    with pytest.raises(ConfigError, match="run scripts/fit_nlu.py"):
        CatalogSearch(None)


@pytest.mark.parametrize(("query", "handle"), [("is the foam kneeler machine washable", "kneeler"),
                                               ("is the hose reel rust proof", "hose-reel"),
                                               ("are the tulip bulbs deer resistant", "bulbs"),
                                               ("is the trowel dishwasher safe", "trowel")])
async def test_a_question_about_a_product_it_names_as_the_shops_is_answered_not_declined(
        search: CatalogSearch, query: str, handle: str) -> None:
    """"is the X machine washable" presumes the shop has X; words the catalog lacks ("machine washable")
    are what the answer is about, not a sign that X is not sold."""
    result = await search.search(CATALOG, query)
    assert result.kind == "products" and [h.handle for h in result.products] == [handle]


def test_the_opening_words_of_a_question_name_one_product_or_none() -> None:
    lexicon = CatalogLexicon(CATALOG)
    found = lexicon.named_by(["hose", "reel", "rust", "proof"])
    assert found is not None and lexicon.handles[found] == "hose-reel"
    assert lexicon.named_by(["hose", "waterproof"]) is None  # two hoses: "the hose" names neither
    assert lexicon.named_by(["kettle"]) is None
