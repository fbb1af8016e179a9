"""Modal screens: a small form for palette commands, the help page and a JSON viewer."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Markdown, Static

HELP = """\
# ChatPay TUI

Talk to the shop on the left; every turn shows up four ways: the **Telegram preview**
(what the bot would send), the **trace** (why it answered so), the **costs** and the **cart**.
From 120 columns all of them are on screen; in a smaller terminal they are tabs beside
the chat (`F3` preview, `F4` trace, `F6` costs, `F7` cart, or click a tab).

| key | does |
| --- | --- |
| `Enter` | send the message in the input |
| `F2` | focus the message input |
| `F3` | show the preview and focus its first button (then `Tab` / `Enter`) |
| `F4` | show and focus the trace (`Enter` folds, `c` copies the span as JSON) |
| `F6` / `F7` | show the costs / the cart (below 120 columns) |
| `Ctrl+N` | new thread (fresh conversation and cart) |
| `F5` | switch engine: offline ↔ the configured model |
| `Ctrl+P` | command palette |
| `F1` | this help · `Ctrl+Q` quit |

**Palette commands**: new thread · switch business · load a catalog file (and a store.json
with the store's name, currency and policies) · switch engine · export the session as a
conversations eval case · copy a span as JSON · help.

The header names the store, the engine and where the data lives: the embedded store's
folder (`CHATPAY_DATA_DIR`) or, with `MONGODB_URI` set, the MongoDB server.

Preview buttons are real: an inline button sends its callback data as a new turn, a
reply-keyboard button sends its text. Model calls run in the background; errors appear
in the chat and as notifications and never close the app.

Press `Escape` to close this page.
"""


Check = Callable[[list[str]], str | None]


class PromptScreen(ModalScreen[list[str] | None]):
    """Asks for one or more values; dismisses with them, or None on Escape.

    Enter in any field confirms the whole form (Tab moves between fields). ``check``, when
    given, looks at the values first: a message it returns is shown in the dialog, which
    stays open so the values can be corrected.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, fields: Sequence[tuple[str, str]], *, confirm: str = "confirm",
                 check: Check | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.fields = list(fields)
        self.confirm = confirm
        self.check = check

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-box"):
            yield Label(self.title_text, id="prompt-title")
            for i, (label, default) in enumerate(self.fields):
                yield Label(label, classes="prompt-label")
                yield Input(value=default, id=f"prompt-{i}", classes="prompt-input")
            yield Static("", id="prompt-error")
            more = " · Tab for the next field" if len(self.fields) > 1 else ""
            yield Static(f"Enter to {self.confirm}{more} · Escape to cancel", classes="prompt-hint")

    def on_mount(self) -> None:
        self.query_one("#prompt-0", Input).focus()

    @property
    def values(self) -> list[str]:
        return [i.value.strip() for i in self.query(".prompt-input").results(Input)]

    def show_error(self, message: str) -> None:
        error = self.query_one("#prompt-error", Static)
        error.update(Text(message))
        error.set_class(bool(message), "-shown")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        values = self.values
        problem = self.check(values) if self.check is not None else None
        if problem:
            self.show_error(problem)
            return
        self.dismiss(values)

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
