"""The chat pane: the conversation so far, a status line and the input."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, RichLog, Static

from chatpay.core.presenter import to_plain
from chatpay.core.service import TurnResult
from chatpay_tui.fit import first_fitting

MAX_REPLY = 280
PLACEHOLDERS = ("Message the shop… (Enter to send)", "Message the shop (Enter sends)",
                "Message… (Enter sends)", "Message the shop…")


class ChatLog(RichLog):
    """A log that wraps its lines again when its width changes (a plain RichLog keeps the old wrap)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, wrap=True, markup=False, highlight=False, auto_scroll=True, min_width=10)
        self.entries: list[Text] = []
        self._wrapped_at = 0

    def add(self, text: Text) -> None:
        self.entries.append(text)
        self.write(text)

    def forget(self) -> None:
        self.entries = []
        self.clear()

    def on_resize(self, event: events.Resize) -> None:
        width = event.size.width
        if width != self._wrapped_at and self.entries:
            self.clear()
            for text in self.entries:
                self.write(text)
        self._wrapped_at = width


class ChatInput(Input):
    """The message input; its placeholder is the longest of ``placeholders`` that fits, or ends in "…"."""

    def __init__(self, placeholders: Sequence[str] = PLACEHOLDERS, *, id: str | None = None) -> None:
        super().__init__(placeholder=placeholders[0], id=id)
        self.placeholders = tuple(placeholders)

    def on_resize(self, event: events.Resize) -> None:
        # One cell stays free for the cursor after the text.
        self.placeholder = first_fitting(self.placeholders, self.scrollable_content_region.width - 1)


class ChatPane(Vertical):
    """History (shopper, bot, the route taken, errors) above a status line and the input."""

    BORDER_TITLE = "Chat"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: list[str] = []

    def compose(self) -> ComposeResult:
        yield ChatLog(id="chat-log")
        yield Static("", id="chat-status")
        yield ChatInput(id="chat-input")

    @property
    def log_widget(self) -> ChatLog:
        return self.query_one("#chat-log", ChatLog)

    def _write(self, text: Text) -> None:
        self.lines.append(text.plain)
        self.log_widget.add(text)

    def user(self, said: str) -> None:
        self._write(Text.assemble(("you › ", "bold cyan"), said))

    def bot(self, result: TurnResult) -> None:
        reply = result.reply
        body = to_plain(reply.text) if reply.text else ""
        if len(body) > MAX_REPLY:  # the preview shows it whole
            body = body[: MAX_REPLY - 1].rstrip() + "…"
        if reply.cards:
            shown = "; ".join(f"{c.title} ({c.price.format()})" for c in reply.cards)
            body = f"{body}\n[cards] {shown}".strip()
        if reply.invoice:
            body = f"{body}\n[invoice] {reply.invoice.title}".strip()
        self._write(Text.assemble(("bot › ", "bold green"), body or "(no text)"))
        d = result.decision
        meta = f"   {d.intent} {d.confidence:.2f} · {d.layer} · {result.engine}"
        self._write(Text(meta, style="dim"))
        if result.error:
            self.error(f"turn error: {result.error}")

    def error(self, message: str) -> None:
        self._write(Text(f"⚠ {message}", style="bold red"))

    def warn(self, message: str) -> None:
        self._write(Text(f"! {message}", style="yellow"))

    def info(self, message: str) -> None:
        self._write(Text(f"· {message}", style="dim italic"))

    def set_status(self, text: str) -> None:
        self.query_one("#chat-status", Static).update(Text(text, style="italic yellow") if text else "")

    def clear(self) -> None:
        self.lines = []
        self.log_widget.forget()


class ChatLogHandler(logging.Handler):
    """Shows ChatPay's warnings (a failed model call, a fallback) as dim lines in the chat.

    The turn service recovers from such failures by design, so without this a developer
    would see a good answer and never learn that the model was not reached.
    """

    def __init__(self, pane: ChatPane) -> None:
        super().__init__(logging.WARNING)
        self.pane = pane
        self.thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            error = getattr(record, "error", None)
            line = f"{record.name}: {message}" + (f" ({error})" if error else "")
            if threading.get_ident() == self.thread:
                self.pane.warn(line)
            else:
                self.pane.app.call_from_thread(self.pane.warn, line)
        except Exception:  # a log line must never break a turn
            self.handleError(record)
