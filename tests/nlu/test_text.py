"""Unicode words, stems, stop words and cue phrases: what the language engine reads."""

from __future__ import annotations

from decimal import Decimal

from chatpay.nlu.query import parse
from chatpay.nlu.text import content_tokens, fold, language, stem, tokens


def test_cyrillic_and_greek_messages_are_read_not_dropped() -> None:
    assert tokens("Добавь ДВА чайника!") == ["добавь", "два", "чайника"]
    assert tokens("Καλημέρα") == ["καλημερα"] or tokens("Καλημέρα") == ["καλημέρα"]
    assert language("есть ли у вас наушники?") == "ru"
    assert language("do you have headphones") == "en"


def test_latin_accents_fold_but_cyrillic_letters_keep_their_marks() -> None:
    assert fold("Café CRÈME") == "cafe creme"
    assert fold("йогурт") == "йогурт"  # й is a letter, not и with a mark
    assert fold("ёлка") == "елка"


def test_letters_and_digits_split_so_65w_and_65_w_share_a_token() -> None:
    assert tokens("the 65W charger") == ["the", "65", "w", "charger"]
    assert tokens("65 w charger") == ["65", "w", "charger"]
    assert tokens("add 1,000 of them") == ["add", "1000", "of", "them"]


def test_russian_stems_know_case_endings() -> None:
    assert stem("чайника") == stem("чайник") == stem("чайники")
    assert stem("кабелем") == stem("кабель")
    assert stem("cables") == stem("cable")


def test_stop_words_are_data_per_language() -> None:
    assert content_tokens("do you have any running shoes") == ["running", "shoes"]
    assert content_tokens("есть ли у вас кроссовки") == ["кроссовки"]


def test_cues_match_whole_words_never_substrings() -> None:
    assert parse("add 2 sunset tote bags").cues == frozenset()
    assert "overview" in parse("what do you sell?").cues
    assert "compare" in parse("difference between the two oils").cues


def test_budgets_take_the_amount_after_their_cue() -> None:
    q = parse("a gift for a tea lover under 30 euros")
    assert q.max_price == Decimal("30") and "recommend" in q.cues
    assert "30" not in q.content
    ru = parse("посоветуйте чайник до 3000 рублей")
    assert ru.max_price == Decimal("3000") and ru.content == ("чайник",)
    assert parse("over 100").min_price == Decimal("100")
    assert parse("under the sink").max_price is None
