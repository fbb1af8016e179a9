"""Raw Telegram ``Update`` objects in, :class:`Turn` out.

The queue holds updates exactly as Telegram sent them (see docs/formats.md, "Telegram updates on the queue").
:func:`parse_raw` reads one from JSON text, :func:`parse_update` from a decoded object:

- ``message`` and ``edited_message`` with text (or a caption) become a text turn; a message
  carrying ``successful_payment`` becomes a payment turn;
- ``callback_query`` becomes a button-press turn (its id must always be answered);
- ``pre_checkout_query`` becomes a payment turn that must be answered within 10 seconds;
- anything else (channel posts, polls, chat-member changes, stickers, service messages) is
  acknowledged and ignored: the parser returns ``None``.

Malformed input raises :class:`InvalidInput` naming the field, so the worker can dead-letter
it with the reason. The thread of a conversation is the Telegram user id.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from chatpay.core.errors import InvalidInput
from chatpay.core.orders import ConfirmedPayment
from chatpay.core.turns import PaymentEvent, Turn

SOURCE = "update"
MAX_TEXT = 4096
"""Telegram's own limit on a message's text; longer input (a forged update) is cut to it."""


def clean_text(text: str | None) -> str | None:
    """``text`` safe to keep, send and log: invalid Unicode replaced, at most :data:`MAX_TEXT` characters.

    JSON may carry lone surrogates (``"\\ud800"``), which decode to a ``str`` that no encoder
    accepts: every later send or store of the reply would fail. They become U+FFFD here, at the edge.
    """
    if text is None:
        return None
    return _SURROGATE.sub("\ufffd", text)[:MAX_TEXT]


# json.loads joins a valid surrogate pair into one code point, so any surrogate left is a lone one.
_SURROGATE = re.compile("[\ud800-\udfff]")
_MESSAGE_KINDS = ("message", "edited_message")


class _Fields:
    """Typed access to one update's nested fields, naming the dotted path on error."""

    def __init__(self, update_id: int | None) -> None:
        self.item = None if update_id is None else str(update_id)

    def fail(self, path: str, value: Any, expected: str) -> InvalidInput:
        reason = "is missing" if value is None else f"must be {expected}, got {type(value).__name__}"
        return InvalidInput(reason, source=SOURCE, item=self.item, field=path)

    def opt_obj(self, parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any] | None:
        value = parent.get(key)
        return None if value is None else self.obj(parent, key, path)

    def obj(self, parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
        value = parent.get(key)
        if not isinstance(value, Mapping):
            raise self.fail(path, value, "an object")
        return value

    def opt_whole(self, parent: Mapping[str, Any], key: str, path: str) -> int | None:
        value = parent.get(key)
        return None if value is None else self.whole(parent, key, path)

    def whole(self, parent: Mapping[str, Any], key: str, path: str) -> int:
        value = parent.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, value, "a whole number")
        return value

    def opt_string(self, parent: Mapping[str, Any], key: str, path: str) -> str | None:
        value = parent.get(key)
        return None if value is None else self.string(parent, key, path)

    def string(self, parent: Mapping[str, Any], key: str, path: str) -> str:
        value = parent.get(key)
        if not isinstance(value, str):
            raise self.fail(path, value, "a string")
        return value


def _timestamp(value: int | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None  # an absurd date is not worth refusing the shopper's message over


def parse_update(update: Mapping[str, Any], *, business_id: str, turn_id: str) -> Turn | None:
    """Read one decoded Telegram ``Update`` into a :class:`Turn`.

    Args:
        update: The update object as Telegram sent it (decoded JSON).
        business_id: The business this bot serves.
        turn_id: A fresh id for the turn.

    Returns:
        The turn, or ``None`` for update kinds ChatPay acknowledges and ignores.

    Raises:
        InvalidInput: The update is not an object, lacks ``update_id``, or a field it relies on
            has the wrong type; ``field`` names the dotted path (``message.chat.id``).
    """
    if not isinstance(update, Mapping):
        raise InvalidInput("an update must be a JSON object", source=SOURCE)
    f = _Fields(None)
    update_id = f.whole(update, "update_id", "update_id")
    f = _Fields(update_id)
    base: dict[str, Any] = {"business_id": business_id, "turn_id": turn_id, "update_id": update_id}
    for kind in _MESSAGE_KINDS:
        if kind in update and update[kind] is not None:
            return _message_turn(f, f.obj(update, kind, kind), kind, base)
    if update.get("callback_query") is not None:
        return _callback_turn(f, f.obj(update, "callback_query", "callback_query"), base)
    if update.get("pre_checkout_query") is not None:
        return _pre_checkout_turn(f, f.obj(update, "pre_checkout_query", "pre_checkout_query"), base)
    if update.get(CONFIRMED) is not None:
        return _confirmed_turn(f, f.obj(update, CONFIRMED, CONFIRMED), base)
    return None


# A payment another provider confirmed (a verified Stripe webhook, a USDC transfer found on
# chain), queued by ChatPay itself so that it runs as a turn in the shopper's lane. Telegram never
# sends this key, and the Telegram webhook refuses any update that holds it.
CONFIRMED = "chatpay_payment"


def confirmed_payment_update(payment: ConfirmedPayment, *, thread_id: str, chat_id: str | None = None) -> str:
    """The queue entry for ``payment``. Its ``update_id`` is derived from the payment, so the same
    payment confirmed again (a webhook replayed, a poller racing) is claimed once by the workers."""
    digest = hashlib.sha256(f"{payment.provider}|{payment.payment_id}".encode()).digest()
    update_id = -(int.from_bytes(digest[:7], "big") + 1)  # negative: never one of Telegram's ids
    who = int(thread_id) if thread_id.lstrip("-").isdigit() else thread_id
    chat = chat_id or thread_id
    return json.dumps({"update_id": update_id, CONFIRMED: {
        "from": {"id": who}, "chat": {"id": int(chat) if chat.lstrip("-").isdigit() else chat},
        "provider": payment.provider, "order_id": payment.order_id, "payment_id": payment.payment_id,
        "currency": payment.currency, "total_amount": payment.total_minor}})


def _confirmed_turn(f: _Fields, body: Mapping[str, Any], base: dict[str, Any]) -> Turn:
    who, chat = f.obj(body, "from", f"{CONFIRMED}.from"), f.obj(body, "chat", f"{CONFIRMED}.chat")
    event = PaymentEvent(
        kind="confirmed",
        payload=f.string(body, "order_id", f"{CONFIRMED}.order_id"),
        currency=f.string(body, "currency", f"{CONFIRMED}.currency"),
        total_minor=f.whole(body, "total_amount", f"{CONFIRMED}.total_amount"),
        provider_charge_id=f.string(body, "payment_id", f"{CONFIRMED}.payment_id"),
        provider=f.string(body, "provider", f"{CONFIRMED}.provider"),
    )
    return Turn(**base, thread_id=str(who.get("id")), chat_id=str(chat.get("id")), payment=event)


def _sender(f: _Fields, message: Mapping[str, Any], kind: str, chat_id: int) -> int:
    sender = f.opt_obj(message, "from", f"{kind}.from")
    if sender is not None:
        return f.whole(sender, "id", f"{kind}.from.id")
    # Anonymous group admins and channels have no ``from``; the chat stands in for the user.
    sender_chat = f.opt_obj(message, "sender_chat", f"{kind}.sender_chat")
    if sender_chat is not None:
        return f.whole(sender_chat, "id", f"{kind}.sender_chat.id")
    return chat_id


def _message_turn(f: _Fields, message: Mapping[str, Any], kind: str, base: dict[str, Any]) -> Turn | None:
    chat = f.obj(message, "chat", f"{kind}.chat")
    chat_id = f.whole(chat, "id", f"{kind}.chat.id")
    user_id = _sender(f, message, kind, chat_id)
    date = f.opt_whole(message, "edit_date", f"{kind}.edit_date") or f.opt_whole(message, "date", f"{kind}.date")
    common = {**base, "thread_id": str(user_id), "chat_id": str(chat_id), "at": _timestamp(date)}
    paid = f.opt_obj(message, "successful_payment", f"{kind}.successful_payment")
    if paid is not None:
        path = f"{kind}.successful_payment"
        provider = f.opt_string(paid, "provider_payment_charge_id", f"{path}.provider_payment_charge_id")
        telegram = f.opt_string(paid, "telegram_payment_charge_id", f"{path}.telegram_payment_charge_id")
        event = PaymentEvent(
            kind="successful_payment",
            payload=f.string(paid, "invoice_payload", f"{path}.invoice_payload"),
            currency=f.string(paid, "currency", f"{path}.currency"),
            total_minor=f.whole(paid, "total_amount", f"{path}.total_amount"),
            # Telegram's charge id names the payment for every provider (Stars have no provider id)
            # and is what a Stars refund needs; the contract keys orders on it.
            provider_charge_id=telegram or provider or None,
        )
        return Turn(**common, payment=event)
    text = f.opt_string(message, "text", f"{kind}.text")
    if text is None:
        text = f.opt_string(message, "caption", f"{kind}.caption")
    if text is None:
        return None  # stickers, locations, service messages: nothing to answer
    reply_to = f.opt_obj(message, "reply_to_message", f"{kind}.reply_to_message")
    reply_text = None
    if reply_to is not None:
        reply_text = f.opt_string(reply_to, "text", f"{kind}.reply_to_message.text")
        if reply_text is None:
            reply_text = f.opt_string(reply_to, "caption", f"{kind}.reply_to_message.caption")
    message_id = f.opt_whole(message, "message_id", f"{kind}.message_id")
    return Turn(**common, text=clean_text(text) or "", reply_to_text=clean_text(reply_text), message_id=message_id,
                edited=kind == "edited_message")


def _callback_turn(f: _Fields, query: Mapping[str, Any], base: dict[str, Any]) -> Turn:
    query_id = f.string(query, "id", "callback_query.id")
    sender = f.obj(query, "from", "callback_query.from")
    user_id = f.whole(sender, "id", "callback_query.from.id")
    data = f.opt_string(query, "data", "callback_query.data")
    message = f.opt_obj(query, "message", "callback_query.message")
    chat_id = user_id  # an inline-mode message has no chat; the private chat is the user's id
    if message is not None:
        chat = f.obj(message, "chat", "callback_query.message.chat")
        chat_id = f.whole(chat, "id", "callback_query.message.chat.id")
    return Turn(**base, thread_id=str(user_id), chat_id=str(chat_id), callback_data=data,
                callback_query_id=query_id)


def _pre_checkout_turn(f: _Fields, query: Mapping[str, Any], base: dict[str, Any]) -> Turn:
    path = "pre_checkout_query"
    sender = f.obj(query, "from", f"{path}.from")
    user_id = f.whole(sender, "id", f"{path}.from.id")
    event = PaymentEvent(
        kind="pre_checkout",
        payload=f.string(query, "invoice_payload", f"{path}.invoice_payload"),
        currency=f.string(query, "currency", f"{path}.currency"),
        total_minor=f.whole(query, "total_amount", f"{path}.total_amount"),
        query_id=f.string(query, "id", f"{path}.id"),
    )
    return Turn(**base, thread_id=str(user_id), chat_id=str(user_id), payment=event)


def parse_raw(raw: str | bytes, *, business_id: str, turn_id: str) -> Turn | None:
    """Read one Telegram ``Update`` from JSON text (as it sits on the queue).

    Raises:
        InvalidInput: The text is not UTF-8 or not JSON (the message gives line and column),
            or the update is malformed (see :func:`parse_update`).
    """
    if isinstance(raw, bytes | bytearray):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"not UTF-8 text (byte {exc.start})", source=SOURCE) from exc
    try:
        update = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                           source=SOURCE) from exc
    except RecursionError as exc:
        raise InvalidInput("invalid JSON: nested too deeply", source=SOURCE) from exc
    return parse_update(update, business_id=business_id, turn_id=turn_id)
