"""The chat pane: the conversation so far, a status line and the input."""

from __future__ import annotations

import logging
import threading

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, RichLog, Static

from chatpay.core.presenter import to_plain
from chatpay.core.service import TurnResult

MAX_REPLY = 280


class ChatPane(Vertical):
    """History (shopper, bot, the route taken, errors) above a status line and the input."""

    BORDER_TITLE = "Chat"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: list[str] = []

    def compose(self) -> ComposeResult:
        yield RichLog(id="chat-log", wrap=True, markup=False, highlight=False, auto_scroll=True, min_width=10)
        yield Static("", id="chat-status")
        yield Input(placeholder="Message the shop… (Enter to send)", id="chat-input")

    @property
    def log_widget(self) -> RichLog:
        return self.query_one("#chat-log", RichLog)

    def _write(self, text: Text) -> None:
        self.lines.append(text.plain)
        self.log_widget.write(text)

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
        self.log_widget.clear()


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
