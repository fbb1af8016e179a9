"""SVG snapshots of the main screen at 80x24, 100x30, 120x40 and 160x50, of the Load catalog
dialog, and of the Telegram preview (product card, cart, album).

Deterministic by construction: a fixed terminal size, fixed thread ids, in-memory stores
(the embedded kind for the main screen, whose header names the data folder, fixed here by
``CHATPAY_DATA_DIR``), a fixed clock, button turns (routed by rule, no classifier or
retrieval scores) and ``stable=True``, which leaves timings and random turn ids out of the trace.
Update with ``pytest tests/tui --snapshot-update`` and look at the report before committing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App, ComposeResult

from chatpay.core.agents import checkout_button, clear_cart_button, view_cart_button
from chatpay.core.agents.cart import cart_text, cart_view
from chatpay.core.agents.enquiry import card
from chatpay.core.cart import Cart
from chatpay.core.ports import OutgoingMessage
from chatpay.core.presenter import TelegramPresenter
from chatpay.core.turns import Reply
from chatpay_tui.preview import TelegramPreview

from .conftest import make_app, settle, shop_runtime, small_shop

APP_CSS = Path(__file__).resolve().parents[2] / "chatpay_tui" / "app.tcss"
DATA_DIR = "/tmp/chatpay-snap"  # shown in the header; nothing is written there


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CHATPAY_DATA_DIR", DATA_DIR)
    return DATA_DIR


class PreviewApp(App[None]):
    """Only the preview pane, showing one turn."""

    CSS_PATH = str(APP_CSS)
    CSS = "#preview { width: 100%; }"

    def __init__(self, messages: list[OutgoingMessage], user: str | None = None) -> None:
        super().__init__()
        self.messages = messages
        self.user = user

    def compose(self) -> ComposeResult:
        yield TelegramPreview(id="preview")

    async def on_mount(self) -> None:
        await self.query_one(TelegramPreview).show(self.messages, user=self.user)


def render(reply: Reply) -> list[OutgoingMessage]:
    return TelegramPresenter().render("thread-1", reply)


async def ask_then_add_to_cart(pilot, *keys: str) -> None:
    """Ask about a product by button, press its "Add to cart" in the preview (F3, Enter), then ``keys``."""
    await settle(pilot)
    pilot.app.send_callback("i|sunrise-light-roast", "ℹ Sunrise Light Roast")
    await settle(pilot)
    await pilot.press("f3", "enter")
    await settle(pilot)
    if keys:
        await pilot.press(*keys)
        await settle(pilot)


def test_main_screen_after_adding_to_cart(snap_compare, data_dir: str) -> None:
    """120x40: chat, preview, trace, costs and cart side by side; long trace lines end in "…"."""
    app = make_app(shop_runtime(embedded=True))
    assert snap_compare(app, terminal_size=(120, 40), run_before=ask_then_add_to_cart)


def test_main_screen_at_160x50(snap_compare, data_dir: str) -> None:
    """160x50: every pane, nothing cut."""
    app = make_app(shop_runtime(embedded=True))
    assert snap_compare(app, terminal_size=(160, 50), run_before=ask_then_add_to_cart)


def test_main_screen_at_80x24(snap_compare, data_dir: str) -> None:
    """80x24: the chat beside the preview tab; the tabs and the footer name F3, F4, F6, F7."""
    app = make_app(shop_runtime(embedded=True))
    assert snap_compare(app, terminal_size=(80, 24), run_before=ask_then_add_to_cart)


def test_main_screen_at_80x24_on_the_trace_tab(snap_compare, data_dir: str) -> None:
    """80x24 after F4: the trace, its long lines ending in "…"."""
    app = make_app(shop_runtime(embedded=True))

    async def run_before(pilot) -> None:
        await ask_then_add_to_cart(pilot, "f4")

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_main_screen_at_100x30_on_the_cart_tab(snap_compare, data_dir: str) -> None:
    """100x30 after F7: the cart, and the whole header."""
    app = make_app(shop_runtime(embedded=True))

    async def run_before(pilot) -> None:
        await ask_then_add_to_cart(pilot, "f7")

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


def test_load_catalog_dialog_at_80x24(snap_compare, data_dir: str) -> None:
    """The Load catalog dialog fits 80x24: catalog, store profile and currency, and its keys."""
    app = make_app(shop_runtime(embedded=True))

    async def run_before(pilot) -> None:
        await settle(pilot)
        pilot.app.action_load_catalog()
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_preview_of_a_product_card(snap_compare) -> None:
    product = small_shop().get("sunrise-light-roast")
    assert product is not None
    reply = Reply("**Sunrise Light Roast** — €12.50, in stock.\nWould you like me to add it to your cart?",
                  cards=(card(product),))
    assert snap_compare(PreviewApp(render(reply), user="do you have a light roast?"), terminal_size=(50, 30))


def test_preview_of_a_cart(snap_compare) -> None:
    catalog = small_shop()
    light, dark = catalog.get("sunrise-light-roast"), catalog.get("midnight-dark-roast")
    assert light is not None and dark is not None
    cart = Cart("demo", "thread-1").add(light, "sl-1k", 1).add(dark, None, 2)
    view = cart_view(cart, catalog)
    reply = Reply(cart_text(view), buttons=((checkout_button(), clear_cart_button()),), cart=view)
    assert snap_compare(PreviewApp(render(reply), user="what's in my cart?"), terminal_size=(50, 16))


def test_preview_of_an_album(snap_compare) -> None:
    catalog = small_shop()
    cards = tuple(card(p) for p in catalog)
    reply = Reply("We sell 4 products in 1 category: Coffee Beans (4). A few favourites:", cards=cards,
                  buttons=((view_cart_button(),),))
    messages = render(reply)
    assert [m.method for m in messages] == ["sendMessage", "sendMediaGroup", "sendMessage"]
    assert snap_compare(PreviewApp(messages, user="what do you sell?"), terminal_size=(50, 40))
