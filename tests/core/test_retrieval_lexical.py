"""The inverted index under retrieval: word families, typos, and pruning that changes nothing."""

from __future__ import annotations

import random

import pytest

from chatpay.core.retrieval.lexical import LexicalIndex
from chatpay.core.retrieval.text import parse_query, stem, terms

FIELDS = (1.0, 0.8, 0.5)  # name, tags, description


def _index(docs: list[tuple[str, str, str]]) -> LexicalIndex:
    return LexicalIndex(docs, FIELDS)


def _words(index: LexicalIndex, term: str) -> set[str]:
    return {index._terms[tid] for tid, _ in index.expand(term)}


def test_plurals_and_possessives_fold_to_one_term() -> None:
    assert terms("Berries, Boxes & Mugs") == ["berry", "box", "mug"]
    assert terms("Kids' Lover's Glasses") == ["kid", "lover", "glass"]
    assert stem("bus") == "bus" and stem("dress") == "dress"


def test_a_word_finds_its_family_but_not_its_adverb() -> None:
    index = _index([("Burr Grinder", "", ""), ("Delivery", "", ""), ("Instantly soluble", "", "")])
    assert "grinder" in _words(index, "grind")
    assert "delivery" in _words(index, "deliver")
    assert _words(index, "instant") == set()


def test_typos_keep_the_first_letter() -> None:
    index = _index([("Roasted beans", "", ""), ("Kettle", "", "")])
    assert "kettle" in _words(index, "kettel")
    assert _words(index, "toasted") == set()  # a different word, not a typo of "roasted"


def test_short_words_are_not_guessed() -> None:
    index = _index([("Tea", "", ""), ("Mug", "", "")])
    assert _words(index, "tee") == set()


def test_head_noun_and_weights() -> None:
    q = parse_query("good beans for a moka pot")
    assert q.head == "bean"
    assert q.weights[q.content.index("bean")] > q.weights[q.content.index("moka")]
    assert parse_query("something to keep my coffee hot").head == "coffee"  # not the adjective


@pytest.mark.parametrize("seed", range(6))
def test_pruned_search_returns_the_exact_top(seed: int) -> None:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(300)]
    weights = [1.0 / (i + 1) for i in range(len(vocab))]  # a long tail, like real text
    docs = [
        tuple(" ".join(rng.choices(vocab, weights, k=n)) for n in (3, 4, 25)) for _ in range(1500)
    ]
    index = _index(docs)  # type: ignore[arg-type]
    for _ in range(25):
        query = [stem(w) for w in rng.sample(vocab[:120], rng.randint(1, 4))]
        pruned = index.search(query, limit=10).hits
        exact = index.search(query, limit=len(docs)).hits[:10]
        assert [round(h.strength, 9) for h in pruned] == [round(h.strength, 9) for h in exact]
        assert {h.doc for h in pruned} == {h.doc for h in exact} or len({round(h.strength, 9) for h in exact}) < 10
