"""Renders a channel-neutral :class:`Reply` as Telegram Bot API calls.

Telegram's limits are kept here, once: text up to 4096 characters (longer text is
split at paragraph, line or word boundaries), captions up to 1024, callback data of
1 to 64 bytes, albums of 2 to 10 photos without buttons. Text is HTML with every
shopper- or catalog-supplied character escaped. Lengths are counted in UTF-16 code
units (an emoji counts twice), the stricter of the readings Telegram is known by.
"""

from __future__ import annotations

import base64
import html
import re
from typing import Any

from chatpay.core.ports import OutgoingMessage
from chatpay.core.turns import Button, ProductCard, Reply

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_BYTES = 64
MAX_ALBUM = 10
CARDS_AS_PHOTOS = 3  # up to this many cards go out as photos with their own buttons

MAX_LIST_TITLE = 120  # characters of a product title in the list under an album
_BOLD = re.compile(r"\*\*(.+?)\*\*", re.DOTALL)


def tg_len(text: str) -> int:
    """Length as Telegram's limits count it: UTF-16 code units."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _prefix(text: str, limit: int) -> str:
    """The longest prefix of ``text`` within ``limit`` UTF-16 code units."""
    used = 0
    for i, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit:
            return text[:i]
    return text


def fit_bytes(text: str, limit: int) -> str:
    """The longest prefix of ``text`` within ``limit`` UTF-8 bytes (never half a character)."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def to_html(text: str) -> str:
    """Escape ``text`` for Telegram's HTML parse mode, turning ``**x**`` into ``<b>x</b>``."""
    out: list[str] = []
    pos = 0
    for m in _BOLD.finditer(text):
        out.append(html.escape(text[pos : m.start()], quote=False))
        out.append(f"<b>{html.escape(m.group(1), quote=False)}</b>")
        pos = m.end()
    out.append(html.escape(text[pos:], quote=False))
    return "".join(out)


def to_plain(text: str) -> str:
    """The text without markup, for the plain-text retry when Telegram rejects entities."""
    return _BOLD.sub(r"\1", text)


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split plain text into chunks of at most ``limit`` characters at natural boundaries."""
    chunks: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"))
        if cut < limit // 2:
            cut = window.rfind(" ")
        if cut < limit // 2:
            cut = limit
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not chunks:
        chunks.append(rest)
    return [c for c in chunks if c] or [""]


def _fit_html(text: str, limit: int, size: int | None = None) -> list[str]:
    """Split so that each chunk is within ``limit`` after parsing and as HTML source.

    Telegram counts characters after entity parsing; escaping only lengthens the
    source, so splitting the plain text and re-checking the HTML keeps both within
    bounds. A chunk that escaping (or astral characters) pushed over is split again,
    smaller by the factor it grew, so ``&&&…`` does not turn into dozens of messages.
    Blank chunks are dropped: Telegram refuses an empty message.
    """
    pieces: list[str] = []
    for chunk in split_text(text, size or limit):
        if not to_plain(chunk).strip():
            continue
        rendered = to_html(chunk)
        used = tg_len(rendered)
        if used <= limit or len(chunk) <= 1:
            pieces.append(rendered)
        else:
            pieces.extend(_fit_html(chunk, limit, max(1, min(len(chunk) - 1, len(chunk) * limit // used))))
    return pieces


def truncate(text: str, limit: int) -> str:
    """``text`` within ``limit`` UTF-16 code units, ending in "…" when it was cut."""
    if tg_len(text) <= limit:
        return text
    if limit <= 1:
        return "…"[:limit]
    return _prefix(text, limit - 1).rstrip() + "…"


def check_callback_data(data: str) -> str:
    size = len(data.encode("utf-8"))
    if not 1 <= size <= MAX_CALLBACK_BYTES:
        raise ValueError(f"callback data must be 1..64 bytes, got {size}: {data!r}")
    return data


def _button(b: Button) -> dict[str, str]:
    label = b.label if b.label.strip() else "·"  # Telegram refuses a button without text
    if b.url:
        return {"text": label, "url": b.url}
    return {"text": label, "callback_data": check_callback_data(b.data or fit_bytes(b.label, 32) or "noop")}


def inline_keyboard(rows: tuple[tuple[Button, ...], ...]) -> dict[str, Any] | None:
    rows_json = [[_button(b) for b in row] for row in rows if row]
    return {"inline_keyboard": rows_json} if rows_json else None


def _card_head(card: ProductCard, title_limit: int) -> tuple[str, str]:
    """The card's first line as (plain text, HTML)."""
    title = truncate(card.title, title_limit)
    price = card.price.format()
    stock = "" if card.available else " (out of stock)"
    rendered = f"<b>{html.escape(title, quote=False)}</b> — {html.escape(price, quote=False)}{stock}"
    return f"{title} — {price}{stock}", rendered


def card_caption(card: ProductCard) -> str:
    """A product card's caption in HTML, within Telegram's 1024-character limit.

    The limit counts the caption after entity parsing, so the room left for the
    description is measured on the plain text; the title is cut first when it alone
    would not leave room.
    """
    plain_head, head = _card_head(card, MAX_CAPTION // 4)
    room = MAX_CAPTION - tg_len(plain_head) - 2
    body = truncate(card.description, room).strip()
    return f"{head}\n\n{html.escape(body, quote=False)}" if body else head


UPLOAD = "png_base64"  # a photo parameter holding image bytes rather than a URL


class TelegramPresenter:
    """Turns replies into Bot API calls (``sendMessage``, ``sendPhoto``, ``sendMediaGroup``, ``sendInvoice``)."""

    def render(self, chat_id: str, reply: Reply) -> list[OutgoingMessage]:
        out: list[OutgoingMessage] = []
        cards = list(reply.cards)
        texts = _fit_html(reply.text, MAX_TEXT) if reply.text else []
        for i, chunk in enumerate(texts):
            params: dict[str, Any] = {"chat_id": chat_id, "text": chunk, "parse_mode": "HTML"}
            last_message = i == len(texts) - 1 and not cards and not reply.invoice
            if last_message:
                self._attach_markup(params, reply)
            out.append(OutgoingMessage("sendMessage", params))
        if cards:
            out.extend(self._cards(chat_id, cards, reply))
        if reply.image_png:  # uploaded, not linked: the Bot API adapter sends it as a file
            out.append(OutgoingMessage("sendPhoto", {
                "chat_id": chat_id, "photo": {UPLOAD: base64.b64encode(reply.image_png).decode("ascii")},
                "caption": "Scan to pay with a Solana wallet."}))
        if reply.invoice:
            inv = reply.invoice
            params = {
                "chat_id": chat_id,
                "title": truncate(inv.title, 32),
                "description": truncate(inv.description, 255),
                "payload": fit_bytes(inv.payload, 128),
                "provider_token": inv.provider_token,
                "currency": inv.currency,
                "prices": [{"label": truncate(label, 32), "amount": amount} for label, amount in inv.prices],
            }
            out.append(OutgoingMessage("sendInvoice", params))
        return out

    def _attach_markup(self, params: dict[str, Any], reply: Reply) -> None:
        keyboard = inline_keyboard(reply.buttons)
        if keyboard:
            params["reply_markup"] = keyboard
        elif any(q.strip() for q in reply.quick_replies):
            quick = [q for q in reply.quick_replies if q.strip()]
            params["reply_markup"] = {
                "keyboard": [[{"text": q} for q in quick[i : i + 2]] for i in range(0, len(quick), 2)],
                "resize_keyboard": True,
                "one_time_keyboard": True,
            }

    def _cards(self, chat_id: str, cards: list[ProductCard], reply: Reply) -> list[OutgoingMessage]:
        out: list[OutgoingMessage] = []
        with_images = [c for c in cards if c.image_url]
        if len(cards) <= CARDS_AS_PHOTOS or len(with_images) < 2:
            for i, card in enumerate(cards):
                rows: tuple[tuple[Button, ...], ...] = (card.buttons,) if card.buttons else ()
                if i == len(cards) - 1:
                    rows = rows + tuple(reply.buttons)
                markup = inline_keyboard(rows)
                if card.image_url:
                    params: dict[str, Any] = {"chat_id": chat_id, "photo": card.image_url,
                                              "caption": card_caption(card), "parse_mode": "HTML"}
                else:
                    params = {"chat_id": chat_id, "text": card_caption(card), "parse_mode": "HTML"}
                if markup:
                    params["reply_markup"] = markup
                out.append(OutgoingMessage("sendPhoto" if card.image_url else "sendMessage", params))
            return out
        # An album carries no buttons, so a list message with one button row per product follows it.
        album = with_images[:MAX_ALBUM]
        media = [
            {"type": "photo", "media": c.image_url, "caption": card_caption(c), "parse_mode": "HTML"} for c in album
        ]
        out.append(OutgoingMessage("sendMediaGroup", {"chat_id": chat_id, "media": media}))
        params = {"chat_id": chat_id, "text": _card_list(cards), "parse_mode": "HTML"}
        # One button per product in stock (its first, the add button), named after its place in the
        # list ("🛒 2. Kenyan AA"), so the shopper can tell them apart under the album.
        rows = tuple(
            (Button(f"🛒 {i}. {truncate(c.title, 30)}", c.buttons[0].data, c.buttons[0].url),)
            for i, c in enumerate(cards, 1)
            if c.buttons and c.available
        ) + tuple(reply.buttons)
        markup = inline_keyboard(rows)
        if markup:
            params["reply_markup"] = markup
        out.append(OutgoingMessage("sendMessage", params))
        return out


def _card_list(cards: list[ProductCard]) -> str:
    """One numbered line per card, whole lines only, within the text limit (as source and parsed)."""
    lines: list[str] = []
    used = 0
    for i, card in enumerate(cards, 1):
        _plain, head = _card_head(card, MAX_LIST_TITLE)
        line = f"{i}. {head}"
        more = f"… and {len(cards) - i + 1} more"
        if used + tg_len(line) + 1 > MAX_TEXT - len(more) - 1:
            lines.append(more)
            break
        lines.append(line)
        used += tg_len(line) + 1
    return "\n".join(lines)
