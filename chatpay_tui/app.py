"""chatpay-tui: the Textual debugging UI.

Type as a shopper on the left; every turn then shows as Telegram would send it (the
preview, whose buttons really press), why it was answered so (the trace), what it cost
and the cart it left. Turns run in Textual workers, so a slow model never freezes the
screen, and a failing turn shows its error instead of closing the app.

The layout fits any terminal from 80x24 up: from 120 columns every pane is on screen;
below that the preview, trace, costs and cart are tabs beside the chat, switched with
F3, F4, F6 and F7 (shown in the footer) or by clicking a tab.

``chatpay-tui [--business ID] [--catalog FILE [--store FILE]] [--currency CUR]`` runs on
the configured runtime (``chatpay.bootstrap.build``); with nothing configured it opens the
bundled demo store on the embedded stores and the offline engine. It needs a terminal:
started with stdin or stdout redirected it exits at once (2) and points to ``chatpay chat``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Footer, Header, Input, Tab, Tabs

from chatpay.bootstrap import Runtime, build
from chatpay.core.catalog import Catalog
from chatpay.core.errors import ChatPayError, InvalidInput
from chatpay.core.service import TurnResult
from chatpay.core.turns import Turn
from chatpay_tui.cart import CartPane
from chatpay_tui.chat import ChatLogHandler, ChatPane
from chatpay_tui.commands import ChatPayCommands
from chatpay_tui.costs import CostPane
from chatpay_tui.preview import TelegramPreview
from chatpay_tui.screens import HelpScreen, JsonScreen, PromptScreen
from chatpay_tui.session import append_case, conversation_case, result_cart, user_text
from chatpay_tui.trace import TracePane, span_json

log = logging.getLogger(__name__)
Rebuild = Callable[[Runtime, bool], Runtime]

WIDE = 120
"""From this many columns every pane is on screen; below it the panes beside the chat are tabs."""
ROOMY = 100
"""Below this many columns the footer is compact and leaves out New thread and Engine (keys still work)."""
PANES = ("preview", "trace", "costs", "cart")
def new_thread_id() -> str:
    return f"tui-{uuid.uuid4().hex[:8]}"


def short_path(path: Path | str) -> str:
    """``path`` with the home directory written as ``~``."""
    path = Path(path)
    try:
        rest = path.relative_to(Path.home())
    except ValueError:
        return str(path)
    return "~" if rest == Path(".") else f"~/{rest.as_posix()}"


def stores_label(runtime: Runtime) -> str:
    """Where the data lives: the redacted ``MONGODB_URI``, else the embedded data folder.

    ``stores in-memory`` for the in-memory twins (tests), which keep nothing anywhere.
    """
    if runtime.settings.mongodb_uri:
        return f"MongoDB {runtime.settings.describe()['mongo']}"
    if runtime.database is None and type(runtime.stores.catalogs).__name__.startswith("InMemory"):
        return "stores in-memory"
    from chatpay.datadir import data_dir

    return f"embedded data: {short_path(data_dir())}"


def error_text(exc: BaseException, path: Path) -> str:
    """The error of loading ``path``, naming the file once (a catalog error names it already)."""
    message = str(exc) or type(exc).__name__
    if (isinstance(exc, InvalidInput) and exc.source) or str(path) in message:
        return message
    return f"{short_path(path)}: {message}"


def loaded_text(catalog: Catalog, path: Path, store_file: Path | None = None) -> str:
    """``Loaded 20 products from ~/shop/products.json`` (and the store profile, when one was given)."""
    count = len(catalog)
    text = f"Loaded {count} product{'' if count == 1 else 's'} from {short_path(path)}"
    if store_file is not None:
        policies = len(catalog.policies)
        text += (f" with the store profile {short_path(store_file)} ({catalog.store_name}, "
                 f"{policies} polic{'y' if policies == 1 else 'ies'})")
    return text


def rebuild_runtime(runtime: Runtime, offline: bool) -> Runtime:
    """The same settings and stores with the other engine (the default for "switch engine")."""
    fresh = build(runtime.settings, offline=offline, stores=runtime.stores, clock=runtime.clock)
    fresh.database = runtime.database
    return fresh


class ChatPayApp(App[None]):
    """The ChatPay debugging UI around one :class:`Runtime`.

    Args:
        runtime: the wired ChatPay (``bootstrap.build``); the app starts it on mount.
        catalog_file: a catalog to import for the business at start, instead of the demo store.
        store_file: a store profile (``store.json``: name, currency, policies) for ``catalog_file``.
        currency: the currency for a catalog file that carries none.
        demo: load the bundled demo store when the business has no catalog.
        rebuild: ``(runtime, offline) -> runtime`` for "switch engine"; keeps the stores.
        thread_ids: makes thread ids (tests pass a fixed sequence).
        stable: hide timings and random ids, so screenshots are reproducible.
    """

    TITLE = "ChatPay"
    CSS_PATH = Path(__file__).with_name("app.tcss")
    COMMANDS = App.COMMANDS | {ChatPayCommands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE, "-wide")]
    # Wide, F3 focuses the preview's buttons; narrow, the same key first shows the preview tab.
    # F6 and F7 (costs, cart) only exist narrow: wide, those panes are always on screen.
    # Below ROOMY columns Ctrl+N and F5 go through their unlisted twins, so the pane keys fit.
    BINDINGS = [
        Binding("f1", "help", "Help"),
        Binding("f2", "focus_input", "Chat"),
        Binding("f3", "focus_preview", "Buttons"),
        Binding("f3", "show_preview", "Preview"),
        Binding("f4", "focus_trace", "Trace"),
        Binding("f6", "show_pane('costs')", "Costs"),
        Binding("f7", "show_pane('cart')", "Cart"),
        Binding("ctrl+n", "new_thread", "New thread"),
        Binding("f5", "switch_engine", "Engine"),
        Binding("ctrl+n", "unlisted('new_thread')", "New thread", show=False),
        Binding("f5", "unlisted('switch_engine')", "Engine", show=False),
    ]

    def __init__(
        self,
        runtime: Runtime,
        *,
        catalog_file: Path | None = None,
        store_file: Path | None = None,
        currency: str | None = None,
        demo: bool = True,
        rebuild: Rebuild | None = None,
        thread_ids: Callable[[], str] | None = None,
        stable: bool = False,
    ) -> None:
        super().__init__()
        self.runtime = runtime
        self.business_id = runtime.settings.business_id
        self.catalog_file = catalog_file
        self.store_file = store_file
        self.currency = currency
        self.demo = demo
        self.rebuild = rebuild or rebuild_runtime
        self.thread_ids = thread_ids or new_thread_id
        self.thread_id = self.thread_ids()
        self.stable = stable
        self.results: list[TurnResult] = []
        self.thread_results: list[TurnResult] = []
        self.labels: dict[str, str] = {}
        self.store_name = ""
        self.ready = asyncio.Event()
        self._turn_lock = asyncio.Lock()
        self._pending = 0
        self.pane = "preview"
        self._layout: tuple[bool, bool] | None = None
        self._width = 0

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            yield ChatPane(id="chat")
            with Vertical(id="panes", classes=f"-show-{self.pane}"):
                yield Tabs(*(Tab(name.capitalize(), id=f"tab-{name}") for name in PANES), id="pane-tabs")
                with Horizontal(id="pane-body"):
                    yield TelegramPreview(id="preview")
                    with Vertical(id="side"):
                        yield TracePane(stable=self.stable, id="trace")
                        yield CostPane(id="costs")
                        yield CartPane(id="cart")
        yield Footer()

    @property
    def terminal_width(self) -> int:
        """The terminal's width in columns (as of the latest resize)."""
        return self._width or self.size.width

    @property
    def narrow(self) -> bool:
        """Below :data:`WIDE` columns: the panes beside the chat are tabs, one on screen at a time."""
        return self.terminal_width < WIDE

    def on_resize(self, event: events.Resize) -> None:
        # This runs before App's own handler updates self.size, so the new width is kept here.
        self._width = event.size.width
        # Below ROOMY columns the footer drops its spacing so every pane key stays in sight.
        self.query_one(Footer).compact = self.terminal_width < ROOMY
        layout = (self.narrow, self.terminal_width < ROOMY)
        if layout != self._layout:
            self._layout = layout
            self.refresh_bindings()  # the footer shows the keys of this layout

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("show_preview", "show_pane"):
            return self.narrow
        if action == "focus_preview":
            return not self.narrow
        if action in ("new_thread", "switch_engine"):
            return self.terminal_width >= ROOMY
        return True

    async def action_unlisted(self, action: str) -> None:
        """A key left out of a compact footer (its listed binding is off there)."""
        if action == "new_thread":
            await self.action_new_thread()
        elif action == "switch_engine":
            self.action_switch_engine()

    def show_pane(self, name: str) -> None:
        """Put pane ``name`` (preview, trace, costs, cart) on screen; only matters below :data:`WIDE`."""
        if name not in PANES:
            raise ValueError(f"no pane {name!r}")
        panes = self.query_one("#panes")
        for other in PANES:
            panes.set_class(other == name, f"-show-{other}")
        self.pane = name
        tabs = self.query_one("#pane-tabs", Tabs)
        if tabs.active != f"tab-{name}":
            tabs.active = f"tab-{name}"
        focused = self.focused
        if self.narrow and focused is not None and self._pane_of(focused) not in (None, name):
            self.query_one("#chat-input", Input).focus()  # the focused pane went off screen

    def _pane_of(self, widget: Widget) -> str | None:
        """The pane (preview, trace, costs, cart) that holds ``widget``, if any."""
        node: Widget | None = widget
        while node is not None:
            if node.id in PANES:
                return node.id
            parent = node.parent
            node = parent if isinstance(parent, Widget) else None
        return None

    @on(Tabs.TabActivated, "#pane-tabs")
    def on_pane_tab(self, event: Tabs.TabActivated) -> None:
        name = (event.tab.id or "").removeprefix("tab-")
        if name in PANES and name != self.pane:
            self.show_pane(name)

    @property
    def chat(self) -> ChatPane:
        return self.query_one(ChatPane)

    @property
    def preview(self) -> TelegramPreview:
        return self.query_one(TelegramPreview)

    @property
    def trace(self) -> TracePane:
        return self.query_one(TracePane)

    @property
    def costs(self) -> CostPane:
        return self.query_one(CostPane)

    @property
    def cart(self) -> CartPane:
        return self.query_one(CartPane)

    def update_header(self) -> None:
        engine = self.runtime.engine_name
        store = f"{self.store_name} ({self.business_id})" if self.store_name else self.business_id
        self.sub_title = f"{store} · engine {engine} · {stores_label(self.runtime)}"
        self.chat.border_subtitle = f"thread {self.thread_id}"

    def on_mount(self) -> None:
        self._log_handler = ChatLogHandler(self.chat)
        logging.getLogger("chatpay").addHandler(self._log_handler)
        self.update_header()
        # Also in the chat, whole: a narrow header may end in "…" before the data folder.
        self.chat.info(stores_label(self.runtime))
        self.query_one("#chat-input", Input).focus()
        self.start_runtime()

    def on_unmount(self) -> None:
        logging.getLogger("chatpay").removeHandler(self._log_handler)

    @work(exclusive=True, group="start", exit_on_error=False)
    async def start_runtime(self) -> None:
        """Create indexes and load the store (demo, or ``--catalog``) without blocking the screen."""
        self.chat.set_status("loading the store…")
        try:
            if self.catalog_file is not None:
                if self.runtime.database is not None:
                    await self.runtime.start(demo=False)
                catalog = await self.runtime.load_catalog_file(
                    self.catalog_file, business_id=self.business_id, currency=self.currency,
                    store_file=self.store_file)
                self.chat.info(loaded_text(catalog, self.catalog_file, self.store_file) + ".")
            else:
                await self.runtime.start(demo=self.demo)
            await self._describe_store()
        except Exception as exc:  # the UI stays up and says what went wrong
            log.exception("start failed")
            self._error(f"could not load the store: {type(exc).__name__}: {exc}")
        finally:
            self.ready.set()
            self.chat.set_status("")

    async def _describe_store(self) -> None:
        catalog = await self.runtime.catalog(self.business_id)
        if catalog is None:
            self.store_name = ""
            self.chat.info(f"business {self.business_id} has no catalog: load one from the palette (Ctrl+P).")
        else:
            self.store_name = catalog.store_name
            self.chat.info(f"{catalog.store_name or self.business_id}: {len(catalog)} products in "
                           f"{catalog.currency}. Ask away, e.g. \"what do you sell?\"")
        self.update_header()

    def _error(self, message: str) -> None:
        self.chat.error(message)
        self.notify(message, title="Error", severity="error", timeout=8)

    # ------------------------------------------------------------------ turns

    @on(Input.Submitted, "#chat-input")
    def on_chat_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        event.input.clear()
        if text:
            self.send_text(text)

    @on(TelegramPreview.CallbackPressed)
    def on_callback_pressed(self, event: TelegramPreview.CallbackPressed) -> None:
        self.send_callback(event.data, event.label)

    @on(TelegramPreview.ReplyPressed)
    def on_reply_pressed(self, event: TelegramPreview.ReplyPressed) -> None:
        self.send_text(event.text)

    def send_text(self, text: str) -> None:
        """Send a shopper's message as a new turn (in a worker)."""
        self.chat.user(text)
        self.run_turn(self.runtime.turn(text, thread_id=self.thread_id, business_id=self.business_id))

    def send_callback(self, data: str, label: str | None = None) -> None:
        """Press an inline button: its callback data is the next turn."""
        turn = self.runtime.turn(callback_data=data, thread_id=self.thread_id, business_id=self.business_id)
        if label:
            self.labels[turn.turn_id] = label
        self.chat.user(f"[{label or data}]")
        self.run_turn(turn)

    @work(group="turns", exit_on_error=False)
    async def run_turn(self, turn: Turn) -> TurnResult | None:
        """One turn through the service; turns of the session run one at a time, in order."""
        self._pending += 1
        self.chat.set_status("thinking…")
        try:
            await self.ready.wait()
            async with self._turn_lock:
                if turn.thread_id != self.thread_id:
                    return None  # the thread was replaced while this turn waited
                try:
                    result = await self.runtime.service.handle(turn)
                except Exception as exc:  # never crash the UI; show what failed
                    log.exception("turn failed")
                    self._error(f"turn failed: {type(exc).__name__}: {exc}")
                    return None
                try:
                    await self.show_result(result)
                except Exception as exc:  # a reply the panes cannot draw is reported, not fatal
                    log.exception("could not show the turn")
                    self._error(f"could not show the reply: {type(exc).__name__}: {exc}")
                return result
        finally:
            self._pending -= 1
            if not self._pending:
                self.chat.set_status("")

    async def show_result(self, result: TurnResult) -> None:
        """Draw one turn in every pane."""
        self.results.append(result)
        self.thread_results.append(result)
        label = self.labels.get(result.turn.turn_id)
        self.chat.bot(result)
        if result.error:
            self.notify(result.error, title="Turn error", severity="error", timeout=8)
        messages = self.runtime.presenter.render(result.turn.chat_id or result.turn.thread_id, result.reply)
        shown = user_text(result, label) or None
        await self.preview.show(messages, user=shown, callback_answer=result.reply.callback_answer)
        self.trace.add_turn(result, label=label)
        self.costs.add_turn(result)
        self.cart.show(result_cart(result))
        self._count_cart()
        if self.focused is None:  # the pressed button went away with the old preview
            self.query_one("#chat-input", Input).focus()

    # ------------------------------------------------------------------ actions

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_focus_input(self) -> None:
        self.query_one("#chat-input", Input).focus()

    def action_focus_preview(self) -> None:
        self.show_pane("preview")
        if not self.preview.focus_first_button():
            self.notify("The preview has no button to press yet.", severity="warning")

    def action_show_preview(self) -> None:
        """Narrow: the preview tab, its first button focused (when it has one)."""
        self.show_pane("preview")
        self.preview.focus_first_button()

    def action_focus_trace(self) -> None:
        self.show_pane("trace")
        self.trace.focus()

    def action_show_pane(self, name: str) -> None:
        self.show_pane(name)

    async def action_new_thread(self) -> None:
        """A fresh conversation: new thread id, empty chat, preview, trace and cart."""
        self.thread_id = self.thread_ids()
        self.thread_results = []
        self.chat.clear()
        self.chat.info(f"new thread {self.thread_id}")
        await self.preview.clear()
        self.trace.forget_turns()
        catalog = await self.runtime.catalog(self.business_id)
        cart = await self.runtime.stores.carts.get(self.business_id, self.thread_id)
        from chatpay.core.agents.cart import cart_view

        self.cart.show(cart_view(cart, catalog) if catalog is not None else None)
        self._count_cart()
        self.update_header()

    def _count_cart(self) -> None:
        """The cart tab shows how many items the cart holds (the pane may be off screen)."""
        count = self.cart.view.item_count if self.cart.view is not None else 0
        self.query_one("#tab-cart", Tab).label = f"Cart {count}" if count else "Cart"

    def action_switch_business(self) -> None:
        def chosen(values: list[str] | None) -> None:
            if values and values[0]:
                self.switch_business(values[0])

        self.push_screen(PromptScreen("Switch business", [("business id", self.business_id)]), chosen)

    @work(group="admin", exit_on_error=False)
    async def switch_business(self, business_id: str) -> None:
        try:
            catalog = await self.runtime.catalog(business_id)
            if catalog is not None:
                await self.runtime.engine.retriever.prepare(catalog)
        except Exception as exc:
            self._error(f"could not open business {business_id}: {type(exc).__name__}: {exc}")
            return
        self.business_id = business_id
        await self.action_new_thread()
        await self._describe_store()

    def action_load_catalog(self) -> None:
        """The Load catalog dialog: a catalog file, an optional store profile and a currency."""

        def check(values: list[str]) -> str | None:
            catalog, store = values[0], values[1]
            if not catalog:
                return "Enter the catalog file to load."
            for given in (catalog, store):
                if given and not Path(given).expanduser().is_file():
                    return f"{given}: no such file."
            return None

        def chosen(values: list[str] | None) -> None:
            if values and values[0]:
                store = Path(values[1]).expanduser() if values[1] else None
                self.load_catalog(Path(values[0]).expanduser(), values[2].upper() or None, store)

        fields = [("catalog file (Shopify products.json or a ChatPay product list)",
                   str(self.catalog_file or "")),
                  ("store profile, optional (store.json: name, currency, policies)", str(self.store_file or "")),
                  ("currency, when neither file gives one (e.g. EUR)", self.currency or "")]
        self.push_screen(PromptScreen(f"Load a catalog for {self.business_id}", fields, confirm="load",
                                      check=check), chosen)

    @work(group="admin", exit_on_error=False)
    async def load_catalog(self, path: Path, currency: str | None, store_file: Path | None = None) -> None:
        """Import ``path`` (with the store profile ``store_file``) for the business; says how many products."""
        self.chat.set_status(f"importing {short_path(path)}…")
        try:
            catalog = await self.runtime.load_catalog_file(path, business_id=self.business_id, currency=currency,
                                                           store_file=store_file)
        except (ChatPayError, OSError, ValueError) as exc:
            self._error(f"could not load the catalog: {error_text(exc, path)}")
            return
        finally:
            self.chat.set_status("")
        self.catalog_file, self.store_file = path, store_file
        message = loaded_text(catalog, path, store_file)
        self.notify(message + ".", title="Catalog")
        await self.action_new_thread()  # the old thread's cart and trace were about the old catalog
        self.chat.info(message + ".")
        await self._describe_store()

    def action_switch_engine(self) -> None:
        self.switch_engine()

    @work(group="admin", exclusive=True, exit_on_error=False)
    async def switch_engine(self) -> None:
        """Rebuild with the other engine (offline ↔ the configured model), keeping the stores."""
        to_offline = self.runtime.engine_name != "offline"
        if not to_offline and not self.runtime.settings.openai_api_key and self.rebuild is rebuild_runtime:
            self._error("no model is configured: set OPENAI_API_KEY (and CHATPAY_MODEL, OPENAI_BASE_URL).")
            return
        self.chat.set_status("switching engine…")
        try:
            fresh = await asyncio.to_thread(self.rebuild, self.runtime, to_offline)
            await fresh.start(demo=False)
            catalog = await fresh.catalog(self.business_id)
            if catalog is not None and self.business_id != fresh.settings.business_id:
                await fresh.engine.retriever.prepare(catalog)
        except Exception as exc:
            self._error(f"could not switch engine: {type(exc).__name__}: {exc}")
            return
        finally:
            self.chat.set_status("")
        async with self._turn_lock:
            self.runtime = fresh
        self.update_header()
        self.chat.info(f"engine: {fresh.engine_name}")
        self.notify(f"Engine: {fresh.engine_name}", title="Engine")

    def action_export_case(self) -> None:
        if not self.thread_results:
            self.notify("Nothing to export yet: this thread has no turns.", severity="warning")
            return

        def chosen(values: list[str] | None) -> None:
            if values and values[0]:
                self.export_case(Path(values[0]).expanduser(), values[1] or f"tui {self.thread_id}")

        fields = [("cases file (JSON Lines; the case is appended)", f"chatpay-{self.thread_id}.jsonl"),
                  ("case name", f"tui {self.thread_id}")]
        self.push_screen(PromptScreen("Export this thread as a conversations case", fields), chosen)

    def export_case(self, path: Path, name: str) -> dict[str, Any] | None:
        """Append the current thread as a ``conversations`` case to ``path``."""
        case = conversation_case(name, self.thread_results)
        try:
            append_case(path, case)
        except OSError as exc:
            self._error(f"could not write {path}: {exc}")
            return None
        self.notify(f"Wrote case {name!r} ({len(case['turns'])} turns) to {path}.", title="Export")
        return case

    def action_copy_span(self) -> None:
        self.trace.action_copy_span()

    @on(TracePane.CopySpan)
    def on_copy_span(self, event: TracePane.CopySpan) -> None:
        text = span_json(event.span, timings=not self.stable)
        self.copy_to_clipboard(text)
        self.push_screen(JsonScreen(f"span {event.span.name} (copied)", text))
