"""The bot answers in the shopper's language: message files, the language of a turn, Russian replies."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest

from chatpay.core.agents import VIEW_CART_DATA
from chatpay.core.replies import LANGUAGES, count, messages, reply_language, speaking
from chatpay.core.replies import say as text_of
from tests.core.test_russian_dialogue import shop
from tests.core.test_service import say

CORE = Path(__file__).resolve().parents[2] / "chatpay" / "core"


def _fields(text: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", text))


def test_every_language_file_has_every_message_with_the_same_fields() -> None:
    english = messages("en")
    for lang in LANGUAGES:
        raw = json.loads(resources.files("chatpay.core").joinpath("lang", f"{lang}.json").read_text(encoding="utf-8"))
        assert "_doc" in raw
        theirs = messages(lang)
        assert set(theirs) == set(english), f"{lang}.json: {sorted(set(theirs) ^ set(english))}"
        wrong = [k for k in english if _fields(english[k]) != _fields(theirs[k])]
        assert not wrong, f"{lang}.json: fields differ in {wrong}"


def test_every_message_the_code_asks_for_exists() -> None:
    asked: set[str] = set()
    for path in CORE.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        asked |= set(re.findall(r"""say\(\s*["']([a-z_]+\.[a-z_.]+)["']""", source))
        asked |= {f"{noun}.one" for noun in re.findall(r"""count_of\([^,]+,\s*["'](\w+)["']\)""", source)}
    assert len(asked) > 60  # the scan found the agents' messages
    missing = sorted(asked - set(messages("en")))
    assert not missing, missing


@pytest.mark.parametrize(("text", "previous", "shop_language", "expected"), [
    ("добавь сковородку", None, "en", "ru"),
    ("add the pan", "ru", "ru", "en"),  # an English sentence in a Russian shop gets English
    ("70mai a810 4k", "ru", "ru", "ru"),  # a model name keeps the conversation's language
    ("2", "ru", "en", "ru"),
    ("ok", None, "ru", "ru"),  # a conversation's first word-less message takes the shop's language
    ("", "en", "ru", "en"),  # a button press
    ("neoline x-cop 9100 сколько стоит?", "en", "en", "ru"),
])
def test_the_language_of_a_reply(text: str, previous: str | None, shop_language: str, expected: str) -> None:
    assert reply_language(text, previous, shop_language) == expected


@pytest.mark.parametrize(("n", "words"), [(1, "1 товар"), (2, "2 товара"), (4, "4 товара"), (5, "5 товаров"),
                                          (11, "11 товаров"), (12, "12 товаров"), (21, "21 товар"), (22, "22 товара")])
def test_russian_counts_take_their_plural_form(n: int, words: str) -> None:
    with speaking("ru"):
        assert count(n, "item") == words
    with speaking("en"):
        assert count(1, "item") == "1 item" and count(n, "item").endswith("items" if n != 1 else "item")


def test_the_shop_overview_counts_its_products_and_categories_in_their_plural_forms() -> None:
    """"У нас 44 товаров в 8 категориях" read wrong: 44 takes "товара", one category "категории"."""
    with speaking("ru"):
        assert text_of("enquiry.overview", products=count(44, "product"), categories=count(1, "category_in"),
                       groups="Коврики (44)").startswith("У нас 44 товара в 1 категории: Коврики (44).")
    with speaking("en"):
        assert text_of("enquiry.overview", products=count(1, "product"), categories=count(3, "category_in"),
                       groups="Tea (1)").startswith("We sell 1 product in 3 categories: Tea (1).")


def test_a_language_without_a_message_falls_back_to_english() -> None:
    with speaking("xx"):  # not a language we have: English
        assert text_of("cart.empty") == "Your cart is empty."


async def test_a_russian_shopper_is_answered_in_russian_and_the_buttons_too() -> None:
    rt = await shop()
    added = await say(rt, "добавь доску 35х25")
    assert added.cart.quantities() == {"board": 1}
    assert "Добавлено: 1 × **Доска разделочная бамбуковая (35х25 см)**" in added.reply.text
    assert "Ваша корзина:" in added.reply.text and "Итого (1 товар)" in added.reply.text
    labels = [b.label for row in added.reply.buttons for b in row]
    assert "🧺 Корзина" in labels and "💳 Оформить заказ" in labels
    more = await say(rt, "и ещё 2 прихватки")
    assert "Итого (3 товара)" in more.reply.text
    sold_out = await say(rt, "добавь сковородку гранит 28 см")
    assert "нет в наличии" in sold_out.reply.text and "Есть: 24 см, 26 см" in sold_out.reply.text


async def test_the_conversation_keeps_its_language_for_word_less_messages_and_buttons() -> None:
    rt = await shop()
    await say(rt, "сколько стоит доска?")
    number = await say(rt, "2")  # no words: the conversation's language
    assert not re.search(r"\b(Added|Your cart|How many)\b", number.reply.text), number.reply.text
    view = await say(rt, "", callback_data=VIEW_CART_DATA)  # the View cart button
    assert "Ваша корзина" in view.reply.text or "Ваша корзина пуста" in view.reply.text, view.reply.text


async def test_an_english_message_in_a_russian_shop_is_answered_in_english() -> None:
    rt = await shop()
    r = await say(rt, "please add the доска 35х25")  # the catalog's own words, in an English sentence
    assert r.cart.quantities() == {"board": 1}
    assert "Added 1 × **Доска разделочная бамбуковая (35х25 см)**" in r.reply.text, r.reply.text
