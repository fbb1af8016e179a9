"""Raw Telegram updates become turns; other kinds are ignored; malformed ones name the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatpay.core.errors import InvalidInput
from chatpay.core.turns import Turn
from chatpay.core.updates import parse_raw, parse_update

USER = {"id": 4242, "is_bot": False, "first_name": "Ana", "language_code": "pt"}
PRIVATE = {"id": 4242, "type": "private", "first_name": "Ana"}


def message_update(**fields: Any) -> dict[str, Any]:
    message = {"message_id": 7, "date": 1_700_000_000, "chat": PRIVATE, "from": USER, "text": "hi"}
    message.update(fields)
    return {"update_id": 100, "message": message}


def parse(update: Any) -> Turn | None:
    return parse_update(update, business_id="shop", turn_id="t1")


def test_a_text_message_becomes_a_turn_in_the_users_thread() -> None:
    turn = parse(message_update(text="do you have red socks?"))
    assert turn == Turn(business_id="shop", thread_id="4242", turn_id="t1", text="do you have red socks?",
                        update_id=100, chat_id="4242", at=datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
                        message_id=7)


def test_in_a_group_the_thread_is_the_user_and_replies_go_to_the_group() -> None:
    group = {"id": -100123, "type": "supergroup", "title": "Fans"}
    turn = parse(message_update(chat=group, text="price?"))
    assert turn is not None and (turn.thread_id, turn.chat_id) == ("4242", "-100123")


def test_a_photo_caption_is_read_as_text() -> None:
    turn = parse(message_update(text=None, caption="how much is this?", photo=[{"file_id": "x"}]))
    assert turn is not None and turn.text == "how much is this?"


def test_an_edited_message_is_a_turn_dated_by_its_edit() -> None:
    update = {"update_id": 5, "edited_message": {"message_id": 7, "date": 1_700_000_000, "edit_date": 1_700_000_060,
                                                 "chat": PRIVATE, "from": USER, "text": "blue socks, sorry"}}
    turn = parse(update)
    assert turn is not None and turn.text == "blue socks, sorry" and turn.update_id == 5
    assert turn.at == datetime.fromtimestamp(1_700_000_060, tz=UTC)


def test_the_replied_to_message_text_comes_along() -> None:
    turn = parse(message_update(text="this one", reply_to_message={"message_id": 3, "date": 1, "chat": PRIVATE,
                                                                   "caption": "Red socks — €5.00"}))
    assert turn is not None and turn.reply_to_text == "Red socks — €5.00"


def test_a_button_press_carries_its_data_query_id_and_chat() -> None:
    update = {"update_id": 9, "callback_query": {
        "id": "cbq-1", "from": USER, "chat_instance": "ci", "data": "add:red-socks",
        "message": {"message_id": 8, "date": 1, "chat": {"id": -555, "type": "group", "title": "g"}}}}
    turn = parse(update)
    assert turn is not None
    assert (turn.callback_data, turn.callback_query_id, turn.chat_id, turn.thread_id) == (
        "add:red-socks", "cbq-1", "-555", "4242")


def test_a_button_press_on_an_inline_message_replies_in_the_private_chat() -> None:
    update = {"update_id": 9, "callback_query": {"id": "q", "from": USER, "chat_instance": "c",
                                                 "inline_message_id": "im", "data": "x"}}
    turn = parse(update)
    assert turn is not None and turn.chat_id == "4242"


def test_a_pre_checkout_query_is_a_payment_turn_with_its_query_id() -> None:
    update = {"update_id": 11, "pre_checkout_query": {"id": "pcq-1", "from": USER, "currency": "EUR",
                                                      "total_amount": 1250, "invoice_payload": "order:abc"}}
    turn = parse(update)
    assert turn is not None and turn.payment is not None
    p = turn.payment
    assert (p.kind, p.payload, p.currency, p.total_minor, p.query_id) == ("pre_checkout", "order:abc", "EUR", 1250,
                                                                          "pcq-1")
    assert turn.chat_id == "4242" and turn.text == ""


def test_a_successful_payment_is_keyed_on_telegrams_charge_id() -> None:
    """Telegram's charge id names the payment for every provider (and is what a Stars refund needs)."""
    paid = {"currency": "EUR", "total_amount": 1250, "invoice_payload": "order:abc",
            "telegram_payment_charge_id": "tg-1", "provider_payment_charge_id": "stripe-1"}
    turn = parse(message_update(text=None, successful_payment=paid))
    assert turn is not None and turn.payment is not None
    assert (turn.payment.kind, turn.payment.total_minor, turn.payment.provider_charge_id) == (
        "successful_payment", 1250, "tg-1")


def test_a_stars_payment_falls_back_to_telegrams_charge_id() -> None:
    paid = {"currency": "XTR", "total_amount": 50, "invoice_payload": "order:abc",
            "telegram_payment_charge_id": "tg-1", "provider_payment_charge_id": ""}
    turn = parse(message_update(text=None, successful_payment=paid))
    assert turn is not None and turn.payment is not None and turn.payment.provider_charge_id == "tg-1"


@pytest.mark.parametrize("update", [
    {"update_id": 1, "channel_post": {"message_id": 1, "date": 1, "chat": {"id": -1, "type": "channel"},
                                      "text": "news"}},
    {"update_id": 2, "poll": {"id": "p", "question": "?", "options": []}},
    {"update_id": 3, "my_chat_member": {"chat": PRIVATE, "from": USER, "date": 1}},
    {"update_id": 4, "inline_query": {"id": "i", "from": USER, "query": "socks", "offset": ""}},
    {"update_id": 5},
    message_update(text=None, sticker={"file_id": "s"}),
    message_update(text=None, new_chat_members=[USER]),
])
def test_other_update_kinds_are_acknowledged_and_ignored(update: dict[str, Any]) -> None:
    assert parse(update) is None


@pytest.mark.parametrize(("update", "field"), [
    ({"message": {"text": "hi"}}, "update_id"),
    ({"update_id": "1", "message": {}}, "update_id"),
    ({"update_id": True}, "update_id"),
    ({"update_id": 1, "message": "hi"}, "message"),
    ({"update_id": 1, "message": {"text": "hi"}}, "message.chat"),
    ({"update_id": 1, "message": {"chat": {"id": "4242"}, "text": "hi"}}, "message.chat.id"),
    ({"update_id": 1, "message": {"chat": {"id": 4242.0}, "text": "hi"}}, "message.chat.id"),
    ({"update_id": 1, "message": {"chat": PRIVATE, "from": [], "text": "hi"}}, "message.from"),
    ({"update_id": 1, "message": {"chat": PRIVATE, "from": USER, "text": 5}}, "message.text"),
    ({"update_id": 1, "callback_query": {"from": USER, "data": "x"}}, "callback_query.id"),
    ({"update_id": 1, "callback_query": {"id": "q", "from": USER, "data": ["x"]}}, "callback_query.data"),
    ({"update_id": 1, "pre_checkout_query": {"id": "q", "from": USER, "currency": "EUR",
                                             "total_amount": "12.50", "invoice_payload": "p"}},
     "pre_checkout_query.total_amount"),
])
def test_a_malformed_update_names_the_field_at_fault(update: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(update)
    assert caught.value.field == field
    assert field in str(caught.value)


@pytest.mark.parametrize("value", [[], "update", 5, None])
def test_an_update_that_is_not_an_object_is_invalid(value: Any) -> None:
    with pytest.raises(InvalidInput, match="object"):
        parse(value)


def test_bad_json_names_line_and_column() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_raw('{"update_id": 1,\n "message": {', business_id="shop", turn_id="t")
    assert "line 2 column" in str(caught.value)


def test_bytes_that_are_not_utf8_are_invalid() -> None:
    with pytest.raises(InvalidInput, match="UTF-8"):
        parse_raw(b'{"update_id": 1, "x": "\xff"}', business_id="shop", turn_id="t")


def test_deeply_nested_json_is_invalid_not_a_crash() -> None:
    with pytest.raises(InvalidInput):
        parse_raw("[" * 100_000 + "]" * 100_000, business_id="shop", turn_id="t")


ODD = "Zalgo z̴̡̛a̸͚͝l̵g̷o — 🧦👩🏽‍💻 \u200b\u202e RTL \U0010fffd <b>&amp;</b> \x00 \r\n\t"


@pytest.mark.parametrize("text", ["x" * 10_000, ODD * 200, "🧦" * 5000, ""])
def test_odd_texts_pass_through_intact_up_to_telegrams_limit(text: str) -> None:
    raw = json.dumps(message_update(text=text))
    turn = parse_raw(raw.encode("utf-8"), business_id="shop", turn_id="t")
    assert turn is not None and turn.text == text[:4096]
    assert parse_raw(json.dumps(message_update(text=text), ensure_ascii=False), business_id="shop",
                     turn_id="t") == turn


# ----------------------------------------------------------------- properties

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
keys = st.sampled_from(["update_id", "message", "edited_message", "callback_query", "pre_checkout_query",
                        "chat", "from", "id", "text", "caption", "data", "date", "edit_date", "reply_to_message",
                        "successful_payment", "currency", "total_amount", "invoice_payload", "sender_chat",
                        "provider_payment_charge_id", "telegram_payment_charge_id", "poll"])
# Update-shaped objects whose fields are sometimes right, sometimes of the wrong type.
update_like = st.recursive(
    json_scalars,
    lambda inner: st.dictionaries(keys, inner, max_size=6) | st.lists(inner, max_size=3),
    max_leaves=30,
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(update_like, json_values, st.fixed_dictionaries({"update_id": st.integers()}, optional={
    "message": update_like, "callback_query": update_like, "pre_checkout_query": update_like,
    "edited_message": update_like})))
def test_any_json_is_a_turn_none_or_invalid_input(value: Any) -> None:
    raw = json.dumps(value)
    try:
        result = parse_raw(raw, business_id="shop", turn_id="t")
    except InvalidInput as exc:
        assert str(exc)
    else:
        assert result is None or isinstance(result, Turn)


@settings(max_examples=200)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_any_bytes_or_text_is_a_turn_none_or_invalid_input(raw: bytes | str) -> None:
    try:
        result = parse_raw(raw, business_id="shop", turn_id="t")
    except InvalidInput:
        return
    assert result is None or isinstance(result, Turn)


@settings(max_examples=200)
@given(st.text(max_size=300), st.integers(min_value=-(2**52), max_value=2**52))
def test_any_text_from_any_chat_survives_intact(text: str, chat_id: int) -> None:
    update = message_update(text=text, chat={"id": chat_id, "type": "group"})
    turn = parse_raw(json.dumps(update), business_id="shop", turn_id="t")
    assert turn is not None and turn.text == text and turn.chat_id == str(chat_id)


def test_lone_surrogates_and_overlong_text_are_cleaned_at_the_edge() -> None:
    """A forged update with a lone surrogate used to make every send of the reply fail; now it reads as U+FFFD."""
    raw = ('{"update_id": 9, "message": {"message_id": 1, "date": 1, "chat": {"id": 5, "type": "private"}, '
           '"from": {"id": 5}, "text": "hi \\ud800 there \\ud83d\\ude00' + "x" * 5000 + '", '
           '"reply_to_message": {"message_id": 0, "date": 1, "chat": {"id": 5}, "text": "\\udfff"}}}')
    turn = parse_raw(raw, business_id="shop", turn_id="t1")
    assert turn is not None and turn.text.startswith("hi \ufffd there \U0001F600x")
    assert len(turn.text) == 4096 and turn.reply_to_text == "\ufffd"
    turn.text.encode("utf-8")  # no UnicodeEncodeError on the way to Telegram
