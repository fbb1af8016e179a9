"""The chat pane: the conversation so far, a status line and the input."""

from __future__ import annotations

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

    def info(self, message: str) -> None:
        self._write(Text(f"· {message}", style="dim italic"))

    def set_status(self, text: str) -> None:
        self.query_one("#chat-status", Static).update(Text(text, style="italic yellow") if text else "")

    def clear(self) -> None:
        self.lines = []
        self.log_widget.clear()
