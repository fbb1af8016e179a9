"""TelegramPresenter keeps Telegram's limits: split text, short captions, safe HTML, albums, buttons.

Every rendered call is checked with the same rules the Bot API double enforces
(tests/support/botapi_rules.py), so "Telegram would accept it" is what these tests assert.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatpay.core.money import Money
from chatpay.core.ports import OutgoingMessage
from chatpay.core.presenter import (
    MAX_TEXT,
    TelegramPresenter,
    card_caption,
    check_callback_data,
    fit_bytes,
    tg_len,
    to_html,
    truncate,
)
from chatpay.core.turns import Button, InvoiceRequest, ProductCard, Reply
from tests.support.botapi_rules import check_call, parse_html

present = TelegramPresenter().render


def problems(messages: list[OutgoingMessage]) -> list[str]:
    return [f"{m.method}: {p}" for m in messages for p in check_call(m.method, dict(m.params))]


def visible(message: OutgoingMessage, key: str = "text") -> str:
    return parse_html(message.params[key])[0]


def card(i: int = 1, *, title: str = "Red socks", description: str = "Warm wool.", image: bool = True,
         buttons: tuple[Button, ...] = ()) -> ProductCard:
    return ProductCard(handle=f"p{i}", title=title, price=Money(500 + i, "EUR"), description=description,
                       image_url=f"https://shop.example/{i}.jpg" if image else None,
                       buttons=buttons or (Button("Add to cart", data=f"add:p{i}"),))


def test_a_short_reply_is_one_html_message_with_its_buttons() -> None:
    out = present("42", Reply("We have **red socks** for <you> & me", buttons=((Button("Show", data="show"),),)))
    assert [m.method for m in out] == ["sendMessage"]
    assert out[0].params["text"] == "We have <b>red socks</b> for &lt;you&gt; &amp; me"
    assert out[0].params["reply_markup"] == {"inline_keyboard": [[{"text": "Show", "callback_data": "show"}]]}
    assert problems(out) == []


def test_long_text_splits_at_paragraphs_without_losing_words() -> None:
    paragraphs = [f"Paragraph {i}. " + "word " * 150 for i in range(12)]
    text = "\n\n".join(paragraphs)
    out = present("42", Reply(text, buttons=((Button("More", data="more"),),)))
    assert len(out) > 1 and problems(out) == []
    assert " ".join(visible(m) for m in out).split() == text.split()
    assert all(visible(m).startswith("Paragraph") for m in out)  # cut between paragraphs
    assert [("reply_markup" in m.params) for m in out] == [False] * (len(out) - 1) + [True]


def test_astral_characters_count_twice_against_the_limit() -> None:
    out = present("42", Reply("🧦" * 3000))
    assert problems(out) == [] and len(out) == 2
    assert "".join(visible(m) for m in out) == "🧦" * 3000


def test_text_that_escaping_inflates_stays_within_limits_in_few_messages() -> None:
    out = present("42", Reply("&<>" * 3000))
    assert problems(out) == []
    assert all(tg_len(m.params["text"]) <= MAX_TEXT for m in out)  # the HTML source too
    assert "".join(visible(m) for m in out) == "&<>" * 3000
    assert len(out) <= 12  # 39,000 characters of HTML source need 10 at the very least


def test_blank_text_sends_nothing_rather_than_an_empty_message() -> None:
    assert present("42", Reply("  \n ")) == []
    assert present("42", Reply("** **")) == []


def test_a_long_description_is_cut_to_fit_the_caption() -> None:
    c = card(description="Soft & warm <merino> " * 200, title="Sock " * 500)
    caption = card_caption(c)
    shown, errors = parse_html(caption)
    assert errors == [] and tg_len(shown) <= 1024
    assert shown.endswith("…") and "Sock" in shown and "€5.01" in shown


def test_a_few_cards_go_out_as_photos_each_with_its_own_button() -> None:
    out = present("42", Reply("Here you go", cards=(card(1), card(2)), buttons=((Button("Cart", data="cart"),),)))
    assert [m.method for m in out] == ["sendMessage", "sendPhoto", "sendPhoto"]
    assert "reply_markup" not in out[0].params
    assert out[1].params["reply_markup"]["inline_keyboard"] == [[{"text": "Add to cart", "callback_data": "add:p1"}]]
    assert out[2].params["reply_markup"]["inline_keyboard"][-1] == [{"text": "Cart", "callback_data": "cart"}]
    assert problems(out) == []


def test_many_cards_make_an_album_without_buttons_then_a_list_with_them() -> None:
    cards = tuple(card(i) for i in range(1, 13))
    out = present("42", Reply("Twelve socks", cards=cards))
    assert [m.method for m in out] == ["sendMessage", "sendMediaGroup", "sendMessage"]
    album = out[1].params
    assert len(album["media"]) == 10 and "reply_markup" not in album
    listing = out[2]
    assert visible(listing).count("\n") == 11 and len(listing.params["reply_markup"]["inline_keyboard"]) == 12
    assert problems(out) == []


def test_a_list_of_cards_with_huge_titles_keeps_whole_lines() -> None:
    cards = tuple(card(i, title=f"<{i}> " + "Extraordinarily long & fancy title " * 20) for i in range(40))
    out = present("42", Reply("", cards=cards))
    assert problems(out) == []
    assert visible(out[-1]).splitlines()[-1].startswith("… and ")


def test_callback_data_over_64_bytes_is_refused_and_label_fallbacks_fit() -> None:
    with pytest.raises(ValueError, match="64 bytes"):
        check_callback_data("x" * 65)
    out = present("42", Reply("pick", buttons=((Button("🧦" * 40),),)))
    data = out[0].params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    assert 1 <= len(data.encode()) <= 64 and problems(out) == []


def test_quick_replies_become_a_reply_keyboard_two_per_row() -> None:
    out = present("42", Reply("What next?", quick_replies=("Cart", "Pay", "Help", " ")))
    assert out[0].params["reply_markup"]["keyboard"] == [[{"text": "Cart"}, {"text": "Pay"}], [{"text": "Help"}]]


def test_an_invoice_keeps_telegrams_field_limits() -> None:
    inv = InvoiceRequest(title="Your order from the sock shop today", description="d" * 300, payload="é" * 100,
                         currency="XTR", prices=(("Total", 35),))
    out = present("42", Reply("Ready to pay", invoice=inv))
    assert [m.method for m in out] == ["sendMessage", "sendInvoice"]
    params = out[1].params
    assert len(params["title"]) == 32 and params["title"].endswith("…")
    assert len(params["description"]) == 255 and len(params["payload"].encode()) <= 128
    assert problems(out) == []


def test_helpers() -> None:
    assert truncate("abcdef", 4) == "abc…" and truncate("abc", 3) == "abc"
    assert fit_bytes("ééé", 5) == "éé"
    assert to_html("**a<b**") == "<b>a&lt;b</b>"


# ----------------------------------------------------------------- properties

odd_text = st.text(st.characters(codec="utf-8"), max_size=60) | st.sampled_from(
    ["&", "<b>", "**", "\u200b", "🧦👩🏽‍💻", "z̴̡̛a̸͚͝", "\n\n", "&amp;", "<", ">", "ﷺ", "\U0010fffd"])
texts = st.lists(odd_text, max_size=400).map("".join)
buttons = st.builds(
    Button, label=st.text(min_size=1, max_size=20),
    data=st.none() | st.text(min_size=1, max_size=16).filter(lambda d: len(d.encode()) <= 64))
cards = st.builds(
    ProductCard, handle=st.text(min_size=1, max_size=10), title=texts, description=texts,
    price=st.builds(Money, st.integers(0, 10**9), st.sampled_from(["EUR", "JPY", "XTR", "KWD"])),
    image_url=st.none() | st.just("https://shop.example/p.jpg"), available=st.booleans(),
    buttons=st.lists(buttons, max_size=2).map(tuple))
replies = st.builds(
    Reply, text=texts | st.text(max_size=9000) | st.just("&" * 5000), cards=st.lists(cards, max_size=14).map(tuple),
    buttons=st.lists(st.lists(buttons, min_size=1, max_size=3).map(tuple), max_size=2).map(tuple),
    quick_replies=st.lists(st.text(max_size=10), max_size=4).map(tuple))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(replies)
def test_no_reply_breaks_telegrams_limits_or_its_html(reply: Reply) -> None:
    out = present("-100200", reply)
    assert problems(out) == []
    if reply.text.strip() and not reply.cards:
        assert out, "a reply with text sends something"


@settings(max_examples=100, deadline=None)
@given(texts)
def test_split_text_loses_no_visible_word(text: str) -> None:
    out = present("1", Reply(text))
    shown: Any = " ".join(visible(m) for m in out)
    if "**" not in text:  # bold markers may pair differently once split
        assert shown.split() == text.split()
