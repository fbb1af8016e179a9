"""The command palette's ChatPay commands (Ctrl+P)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from chatpay_tui.app import ChatPayApp

COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("New thread", "Start a fresh conversation with an empty cart", "new_thread"),
    ("Switch business", "Talk to another business id in the same stores", "switch_business"),
    ("Load catalog file", "Import a Shopify products.json or a ChatPay list for this business", "load_catalog"),
    ("Switch engine", "Offline ↔ the configured OpenAI-compatible model", "switch_engine"),
    ("Export session as eval case", "Append this thread as a conversations case (JSON Lines)", "export_case"),
    ("Copy span as JSON", "Copy the trace span under the cursor to the clipboard and show it", "copy_span"),
    ("Help", "Keys, panes and commands", "help"),
)


class ChatPayCommands(Provider):
    """Offers the ChatPay actions by name; each runs the app's ``action_<name>``."""

    def _commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        app: ChatPayApp = self.app  # type: ignore[assignment]
        return [(name, help_text, getattr(app, f"action_{action}")) for name, help_text, action in COMMANDS]

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
