"""Modal screens: a small form for palette commands, the help page and a JSON viewer."""

from __future__ import annotations

from collections.abc import Sequence

from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Markdown, Static

HELP = """\
# ChatPay TUI

Talk to the shop on the left; every turn shows up four ways: the **Telegram preview**
(what the bot would send), the **trace** (why it answered so), the **costs** and the **cart**.

| key | does |
| --- | --- |
| `Enter` | send the message in the input |
| `F2` | focus the message input |
| `F3` | focus the preview's first button (then `Tab` / `Enter`) |
| `F4` | focus the trace (`Enter` folds, `c` copies the span as JSON) |
| `Ctrl+N` | new thread (fresh conversation and cart) |
| `F5` | switch engine: offline ↔ the configured model |
| `Ctrl+P` | command palette |
| `F1` | this help · `Ctrl+Q` quit |

**Palette commands**: new thread · switch business · load a catalog file · switch engine ·
export the session as a conversations eval case · copy a span as JSON · help.

Preview buttons are real: an inline button sends its callback data as a new turn, a
reply-keyboard button sends its text. Model calls run in the background; errors appear
in the chat and as notifications and never close the app.

Press `Escape` to close this page.
"""


class PromptScreen(ModalScreen[list[str] | None]):
    """Asks for one or more values; dismisses with them, or None on Escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, fields: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.fields = list(fields)

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-box"):
            yield Label(self.title_text, id="prompt-title")
            for i, (label, default) in enumerate(self.fields):
                yield Label(label, classes="prompt-label")
                yield Input(value=default, id=f"prompt-{i}", classes="prompt-input")
            yield Static("Enter to confirm · Escape to cancel", classes="prompt-hint")

    def on_mount(self) -> None:
        self.query_one("#prompt-0", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        inputs = list(self.query(".prompt-input").results(Input))
        index = inputs.index(event.input)
        if index + 1 < len(inputs):
            inputs[index + 1].focus()
            return
        self.dismiss([i.value.strip() for i in inputs])

    def action_cancel(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Markdown(HELP)

    def action_close(self) -> None:
        self.dismiss(None)


class JsonScreen(ModalScreen[None]):
    """Shows a JSON document (a span that was just copied)."""

    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="json-box") as box:
            box.border_title = self.title_text
            box.border_subtitle = "Escape to close"
            yield Static(Syntax(self.text, "json", theme="ansi_dark", word_wrap=True), id="json-text")

    def action_close(self) -> None:
        self.dismiss(None)
