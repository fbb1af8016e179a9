"""The Telegram preview: a turn's Bot API calls drawn the way a Telegram client shows them.

It renders the presenter's :class:`OutgoingMessage` list, so what you see is exactly what
the worker would send: HTML text (bold, italic, links), photos as framed placeholders with
their URL and caption, albums as a grid, invoices, inline keyboards whose buttons are real
buttons (pressing one posts :class:`TelegramPreview.CallbackPressed`, which the app sends
as a new turn) and reply keyboards (pressing one posts :class:`TelegramPreview.ReplyPressed`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Button, Static

from chatpay.core.ports import OutgoingMessage
from chatpay_tui.telegram_html import telegram_html

CURRENCY_EXPONENTS = {"JPY": 0, "KRW": 0, "XTR": 0, "CLP": 0, "VND": 0, "ISK": 0}


def _amount(minor: int, currency: str) -> str:
    exponent = CURRENCY_EXPONENTS.get(currency.upper(), 2)
    if exponent == 0:
        return f"{minor} {currency}"
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 10**exponent)
    return f"{sign}{whole}.{cents:0{exponent}d} {currency}"


class KeyboardButton(Button):
    """A button of an inline keyboard (callback or URL) or of a reply keyboard."""

    def __init__(self, label: str, *, callback_data: str | None = None, url: str | None = None,
                 reply_text: str | None = None, classes: str = "") -> None:
        shown = f"{label} ↗" if url else label
        super().__init__(shown, compact=True, classes=f"kb-button {classes}".strip())
        self.callback_data = callback_data
        self.url = url
        self.reply_text = reply_text
        self.button_label = label


class InlineKeyboard(Vertical):
    """Rows of inline buttons under a message (``reply_markup.inline_keyboard``)."""

    def __init__(self, rows: Sequence[Sequence[dict[str, Any]]]) -> None:
        super().__init__(classes="inline-keyboard")
        self.rows = rows

    def compose(self) -> ComposeResult:
        for row in self.rows:
            with Horizontal(classes="kb-row"):
                for b in row:
                    yield KeyboardButton(str(b.get("text", "")), callback_data=b.get("callback_data"),
                                         url=b.get("url"))


class ReplyKeyboard(Vertical):
    """A reply keyboard (``reply_markup.keyboard``): buttons that send their text."""

    def __init__(self, rows: Sequence[Sequence[dict[str, Any]]]) -> None:
        super().__init__(classes="reply-keyboard")
        self.rows = rows

    def compose(self) -> ComposeResult:
        for row in self.rows:
            with Horizontal(classes="kb-row"):
                for b in row:
                    text = str(b.get("text", ""))
                    yield KeyboardButton(text, reply_text=text, classes="reply-button")


class PhotoPlaceholder(Vertical):
    """A photo as a framed placeholder: its URL on one line, then an optional caption."""

    def __init__(self, url: str, *, title: str = "🖼 photo", caption: Text | None = None,
                 short: bool = False, classes: str = "photo") -> None:
        super().__init__(classes=classes)
        self.url = url
        self.caption = caption
        self.short = short
        self.border_title = title

    def compose(self) -> ComposeResult:
        shown = self.url.rstrip("/").rsplit("/", 1)[-1] if self.short and "/" in self.url else self.url
        yield Static(Text(shown, style="dim"), classes="photo-url")
        if self.caption is not None:
            yield Static(self.caption, classes="photo-caption")


class Bubble(Vertical):
    """One bot message, labelled with the Bot API method that sends it."""

    def __init__(self, message: OutgoingMessage) -> None:
        super().__init__(classes=f"bubble {message.method}")
        self.message = message
        self.border_subtitle = message.method

    def compose(self) -> ComposeResult:
        params = self.message.params
        method = self.message.method
        if method == "sendMessage":
            yield Static(telegram_html(str(params.get("text", ""))), classes="text")
        elif method == "sendPhoto":
            photo = params.get("photo", "")
            yield PhotoPlaceholder("an uploaded image (QR code)" if isinstance(photo, dict) else str(photo))
            if params.get("caption"):
                yield Static(telegram_html(str(params["caption"])), classes="caption")
        elif method == "sendMediaGroup":
            media = list(params.get("media") or [])
            with Vertical(classes="album"):
                for start in range(0, len(media), 2):
                    with Horizontal(classes="album-row"):
                        for i, item in enumerate(media[start : start + 2], start + 1):
                            caption = telegram_html(str(item.get("caption") or ""))
                            first = caption.split("\n")[0] if caption.plain else None
                            yield PhotoPlaceholder(str(item.get("media", "")), title=f"🖼 {i}/{len(media)}",
                                                   caption=first, short=True, classes="photo album-photo")
        elif method == "sendInvoice":
            yield from self._invoice(params)
        else:
            yield Static(Text(f"{method}: {params}", style="dim"), classes="text")
        markup = params.get("reply_markup") or {}
        if markup.get("inline_keyboard"):
            yield InlineKeyboard(markup["inline_keyboard"])

    def _invoice(self, params: Mapping[str, Any]) -> ComposeResult:
        currency = str(params.get("currency", ""))
        prices = list(params.get("prices") or [])
        lines = Text.assemble(
            ("🧾 " + str(params.get("title", "")), "bold"), "\n", str(params.get("description", "")), "\n",
        )
        for p in prices:
            lines.append(f"\n{p.get('label', '')}: {_amount(int(p.get('amount', 0)), currency)}")
        total = sum(int(p.get("amount", 0)) for p in prices)
        yield Static(lines, classes="text")
        yield KeyboardButton(f"Pay {_amount(total, currency)}", callback_data=None, classes="pay-button")


class TelegramPreview(VerticalScroll):
    """The latest turn as Telegram would show it: the shopper's line, then the bot's messages."""

    BORDER_TITLE = "Telegram preview"

    class CallbackPressed(Message):
        """An inline button with callback data was pressed."""

        def __init__(self, data: str, label: str) -> None:
            super().__init__()
            self.data = data
            self.label = label

    class ReplyPressed(Message):
        """A reply-keyboard button was pressed: its text is the shopper's next message."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.messages: list[OutgoingMessage] = []

    def compose(self) -> ComposeResult:
        yield Static(Text("Replies appear here as Telegram shows them.", style="dim"), classes="placeholder")

    async def show(self, messages: Sequence[OutgoingMessage], *, user: str | None = None,
                   callback_answer: str | None = None) -> None:
        """Replace the preview with one turn: ``user`` said something, the bot sent ``messages``."""
        self.messages = list(messages)
        await self.remove_children()
        widgets: list[Widget] = []
        if user:
            widgets.append(Horizontal(Static(Text(user), classes="user-bubble"), classes="user-row"))
        if callback_answer:
            widgets.append(Static(Text(f"⟨ {callback_answer} ⟩", style="italic"), classes="callback-answer"))
        reply_keyboard = None
        for message in messages:
            widgets.append(Bubble(message))
            markup = message.params.get("reply_markup") or {}
            if markup.get("keyboard"):
                reply_keyboard = markup["keyboard"]
        if reply_keyboard:
            widgets.append(ReplyKeyboard(reply_keyboard))
        await self.mount_all(widgets)
        self.scroll_home(animate=False)

    async def clear(self) -> None:
        self.messages = []
        await self.remove_children()
        await self.mount(Static(Text("New thread: say hello.", style="dim"), classes="placeholder"))

    def buttons(self) -> list[KeyboardButton]:
        """Every pressable button in the preview, in screen order."""
        return list(self.query(KeyboardButton))

    def focus_first_button(self) -> bool:
        buttons = [b for b in self.buttons() if not b.disabled]
        if not buttons:
            return False
        buttons[0].focus()
        return True

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button = event.button
        if not isinstance(button, KeyboardButton):
            return
        event.stop()
        if button.callback_data:
            self.post_message(self.CallbackPressed(button.callback_data, button.button_label))
        elif button.reply_text is not None:
            self.post_message(self.ReplyPressed(button.reply_text))
        elif button.url:
            self.app.copy_to_clipboard(button.url)
            self.notify(f"Link button: {button.url} (copied)", title="URL")
        else:
            self.notify("Payments are not simulated in the preview.", title="Invoice")
