"""Telegram's limits, as the Bot API double enforces them on what it receives.

From the Bot API documentation: message text 1-4096 characters after entity parsing, captions
0-1024, callback data 1-64 bytes, albums of 2-10 media, invoice title 1-32, description 1-255,
payload 1-128 bytes, callback answers up to 200 characters; HTML parse mode accepts only
Telegram's tags, the entities ``&lt; &gt; &amp; &quot;`` and numeric ones, and every other
``<`` and ``&`` escaped. Lengths are counted here in UTF-16 code units, the stricter reading
(Telegram's entity offsets use them), so text that passes here passes Telegram either way.
"""

from __future__ import annotations

import html
import re
from typing import Any

MAX_TEXT = 4096
MAX_CAPTION = 1024
JSON_FIELDS = {"reply_markup", "media", "prices", "entities", "caption_entities", "allowed_updates",
               "link_preview_options", "reply_parameters", "suggested_tip_amounts", "results", "commands"}
ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "code",
                "pre", "blockquote", "tg-emoji"}
CHAT_ACTIONS = {"typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
                "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note"}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^<>]*)?)>")
_ENTITY = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|lt|gt|amp|quot);")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def parse_html(source: str) -> tuple[str, list[str]]:
    """Telegram's reading of ``source`` in HTML mode: the visible text and what it would reject."""
    out: list[str] = []
    problems: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(source):
        ch = source[i]
        if ch == "<":
            m = _TAG.match(source, i)
            if not m:
                problems.append(f"can't parse entities: unescaped '<' at offset {i}")
                i += 1
                continue
            closing, name, attrs = m.group(1) == "/", m.group(2).lower(), m.group(3)
            if closing:
                if not stack or stack[-1] != name:
                    problems.append(f"can't parse entities: unexpected end tag </{name}> at offset {i}")
                else:
                    stack.pop()
            elif name not in ALLOWED_TAGS:
                problems.append(f"can't parse entities: unsupported start tag <{name}> at offset {i}")
            elif name == "a" and "href=" not in attrs:
                problems.append("can't parse entities: <a> without href")
            elif name == "span" and 'class="tg-spoiler"' not in attrs:
                problems.append("can't parse entities: <span> without class=\"tg-spoiler\"")
            else:
                stack.append(name)
            i = m.end()
        elif ch == "&":
            m = _ENTITY.match(source, i)
            if not m:
                problems.append(f"can't parse entities: unescaped '&' at offset {i}")
                out.append(ch)
                i += 1
                continue
            out.append(html.unescape(m.group(0)))
            i = m.end()
        else:
            out.append(ch)
            i += 1
    problems.extend(f"can't parse entities: unclosed <{name}>" for name in stack)
    return "".join(out), problems


def uses_html(params: dict[str, Any]) -> bool:
    if str(params.get("parse_mode", "")).upper() == "HTML":
        return True
    media = params.get("media")
    return isinstance(media, list) and any(
        isinstance(m, dict) and str(m.get("parse_mode", "")).upper() == "HTML" for m in media)


def _visible(text: Any, parse_mode: Any, what: str, problems: list[str]) -> str:
    if not isinstance(text, str):
        problems.append(f"{what} must be a string")
        return ""
    if str(parse_mode or "").upper() == "HTML":
        visible, errors = parse_html(text)
        problems.extend(f"{what}: {e}" for e in errors)
        return visible
    if parse_mode:
        problems.append(f"unexpected parse_mode {parse_mode!r}")
    return text


def _check_text(params: dict[str, Any], problems: list[str]) -> None:
    visible = _visible(params.get("text"), params.get("parse_mode"), "text", problems)
    if not visible.strip():
        problems.append("message text is empty")
    if utf16_len(visible) > MAX_TEXT:
        problems.append(f"message is too long: {utf16_len(visible)} > {MAX_TEXT} after entity parsing")


def _check_caption(item: dict[str, Any], problems: list[str]) -> None:
    if item.get("caption") is None:
        return
    visible = _visible(item["caption"], item.get("parse_mode"), "caption", problems)
    if utf16_len(visible) > MAX_CAPTION:
        problems.append(f"message caption is too long: {utf16_len(visible)} > {MAX_CAPTION}")


def _check_markup(markup: Any, problems: list[str]) -> None:
    if markup is None:
        return
    if not isinstance(markup, dict):
        problems.append("reply_markup must be a JSON object")
        return
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            problems.append("inline_keyboard must be an array of button rows")
            return
        for button in (b for row in rows for b in row):
            if not isinstance(button, dict) or not str(button.get("text", "")).strip():
                problems.append(f"inline button without text: {button!r}")
                continue
            kinds = [k for k in ("callback_data", "url", "pay", "switch_inline_query", "web_app") if k in button]
            if len(kinds) != 1:
                problems.append(f"inline button needs exactly one action, got {kinds}")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode("utf-8")) <= 64:
                problems.append(f"BUTTON_DATA_INVALID: callback_data of {len(str(data).encode())} bytes")
            if "url" in button and not str(button["url"]).strip():
                problems.append("inline button with an empty url")
    elif "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            problems.append("keyboard must be an array of button rows")
            return
        for button in (b for row in rows for b in row):
            text = button.get("text") if isinstance(button, dict) else button
            if not isinstance(text, str) or not text.strip():
                problems.append(f"keyboard button without text: {button!r}")
    elif not {"remove_keyboard", "force_reply"} & markup.keys():
        problems.append(f"unknown reply_markup {sorted(markup)}")


def _check_invoice(params: dict[str, Any], problems: list[str]) -> None:
    title, description, payload = (str(params.get(k, "")) for k in ("title", "description", "payload"))
    if not 1 <= len(title) <= 32:
        problems.append(f"invoice title must be 1-32 characters, got {len(title)}")
    if not 1 <= len(description) <= 255:
        problems.append(f"invoice description must be 1-255 characters, got {len(description)}")
    if not 1 <= len(payload.encode("utf-8")) <= 128:
        problems.append(f"invoice payload must be 1-128 bytes, got {len(payload.encode())}")
    currency = str(params.get("currency", ""))
    if not re.fullmatch(r"[A-Z]{3}", currency):
        problems.append(f"invalid currency {currency!r}")
    prices = params.get("prices")
    if not isinstance(prices, list) or not prices or not all(
            isinstance(p, dict) and str(p.get("label", "")) and isinstance(p.get("amount"), int) for p in prices):
        problems.append("prices must be a non-empty array of {label, amount}")
    if currency == "XTR":
        if params.get("provider_token"):
            problems.append("Telegram Stars invoices take an empty provider_token")
        if isinstance(prices, list) and len(prices) != 1:
            problems.append("Telegram Stars invoices take exactly one price")


def check_call(method: str, params: dict[str, Any]) -> list[str]:
    """What Telegram would refuse in this call (empty when it is fine)."""
    problems: list[str] = []
    name = method.lower()
    if name.startswith("send") and params.get("chat_id") in (None, ""):
        problems.append("chat_id is empty")
    if name == "sendmessage":
        _check_text(params, problems)
    elif name == "sendphoto":
        if not params.get("photo"):
            problems.append("there is no photo in the request")
        _check_caption(params, problems)
    elif name == "sendmediagroup":
        media = params.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            problems.append("media must be an array of 2-10 items")
        for item in media if isinstance(media, list) else []:
            if not isinstance(item, dict) or item.get("type") not in {"photo", "video", "document", "audio"}:
                problems.append(f"bad media item {item!r}")
                continue
            if not item.get("media"):
                problems.append("media item without media")
            _check_caption(item, problems)
        if "reply_markup" in params:
            problems.append("an album takes no reply_markup (no buttons on an album)")
    elif name == "sendinvoice":
        _check_invoice(params, problems)
    elif name == "sendchataction":
        if params.get("action") not in CHAT_ACTIONS:
            problems.append(f"wrong chat action {params.get('action')!r}")
    elif name == "answercallbackquery":
        if not params.get("callback_query_id"):
            problems.append("callback_query_id is empty")
        if len(str(params.get("text") or "")) > 200:
            problems.append("callback answer text is longer than 200 characters")
    elif name == "refundstarpayment":
        if not str(params.get("user_id", "")).isdigit():
            problems.append("user_id must be the payer's numeric id")
        if not params.get("telegram_payment_charge_id"):
            problems.append("telegram_payment_charge_id is empty")
    elif name == "answerprecheckoutquery":
        if not params.get("pre_checkout_query_id"):
            problems.append("pre_checkout_query_id is empty")
        if str(params.get("ok")).lower() not in {"true", "false"}:
            problems.append("ok must be a boolean")
        elif str(params.get("ok")).lower() == "false" and not params.get("error_message"):
            problems.append("error_message is required when ok is false")
    elif name == "setwebhook":
        if not str(params.get("url", "")).startswith(("https://", "http://")):
            problems.append("bad webhook url")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET.match(str(secret)):
            problems.append("secret_token must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
    if "reply_markup" in params and name != "sendmediagroup":
        _check_markup(params["reply_markup"], problems)
    return problems
