"""An edited message is a correction of the turn it edits, never a second command."""

from __future__ import annotations

from dataclasses import replace

from chatpay.core.updates import parse_update
from tests.core.test_service import runtime_with


async def send(rt, text: str, message_id: int, *, edited: bool = False):  # type: ignore[no-untyped-def]
    turn = replace(rt.turn(text, thread_id="t1"), message_id=message_id, edited=edited)
    return await rt.service.handle(turn)


async def test_an_edit_replaces_the_effect_of_the_message_it_edits() -> None:
    rt = await runtime_with()
    r = await send(rt, "add 5 basil seeds", 10)
    assert r.cart.quantities() == {"basil-seeds": 5}
    r = await send(rt, "add 6 basil seeds", 10, edited=True)
    assert r.cart.quantities() == {"basil-seeds": 6}
    assert "undone" in r.reply.text


async def test_an_edit_after_the_cart_moved_on_changes_nothing_and_says_what_stands() -> None:
    rt = await runtime_with()
    await send(rt, "add 5 basil seeds", 10)
    await send(rt, "add a watering can", 11)
    r = await send(rt, "add 6 basil seeds", 10, edited=True)
    assert r.cart.quantities() == {"basil-seeds": 5, "watering-can": 1}
    assert "left it as it stands" in r.reply.text


async def test_an_edit_of_a_question_is_answered_as_the_new_question() -> None:
    rt = await runtime_with()
    await send(rt, "do you have basil seeds?", 10)
    r = await send(rt, "do you have tomato seeds?", 10, edited=True)
    assert r.intent == "enquiry" and r.cart.is_empty


def test_telegram_edits_carry_the_message_id_they_correct() -> None:
    update = {"update_id": 7, "edited_message": {"message_id": 42, "date": 1, "edit_date": 2,
                                                 "chat": {"id": 5, "type": "private"}, "from": {"id": 5},
                                                 "text": "add 6 basil seeds"}}
    turn = parse_update(update, business_id="garden", turn_id="x")
    assert turn is not None and turn.edited and turn.message_id == 42
