"""Unicode words, stems, stop words and cue phrases: what the language engine reads."""

from __future__ import annotations

from decimal import Decimal

from chatpay.core.text import sound
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


def test_a_budget_cue_inside_a_longer_one_is_not_read_twice() -> None:
    """"не дороже 2000" caps the price; it is not also the floor "дороже 2000"."""
    capped = parse("сковородку нужно не дороже 2000")
    assert (capped.max_price, capped.min_price) == (Decimal("2000"), None)
    assert (parse("no more than 30 please").max_price, parse("no more than 30 please").min_price) == (Decimal("30"), None)
    assert parse("не дешевле 500").min_price == Decimal("500") and parse("не дешевле 500").max_price is None


def test_a_thousand_word_after_an_amount_multiplies_it() -> None:
    q = parse("комплект постельного до 4 тысяч есть?")
    assert q.max_price == Decimal("4000") and "тысяч" not in q.content
    assert parse("a dash cam under 2k").max_price == Decimal("2000")


def test_the_thing_asked_for_is_named_before_what_it_is_for() -> None:
    assert parse("spare battery for my drill").head == "battery"
    assert parse("pixel 7 case").head == "case"
    assert parse("does the 7 in 1 hub work with a macbook air").head == "hub"
    assert parse("сменный фильтр для чайника").head == "фильтр"


def test_cheapest_is_a_cue_not_a_product_word() -> None:
    q = parse("самый дешёвый чайник")
    assert "cheapest" in q.cues and q.content == ("чайник",)
    assert "cheapest" in parse("what's the cheapest drill you've got").cues


def test_a_brand_sounds_the_same_in_either_script() -> None:
    assert sound("ликви") == sound("liqui") and sound("моли") == sound("moly")
    assert sound("сяоми") == sound("xiaomi") and sound("изофикс") == sound("isofix")
    assert sound("чайник") != sound("chair")
