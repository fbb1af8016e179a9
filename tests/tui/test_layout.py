"""The layout at every terminal size from 80x24: what is on screen, how to reach the rest, what is cut."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.cells import cell_len
from textual.widgets import Input, Tabs
from textual.widgets._footer import FooterKey

from chatpay.adapters.memory import FixedClock, ScriptedChatModel, in_memory_stores
from chatpay.bootstrap import build
from chatpay.config import Settings
from chatpay_tui.app import ChatPayApp, stores_label
from chatpay_tui.chat import PLACEHOLDERS

from .conftest import bare_runtime, embedded_runtime, load_shops, make_app, screen_text, settle

PANES = ("preview", "trace", "costs", "cart")


async def add_to_cart(pilot) -> None:
    """Ask about the light roast by its button, then press the preview's "Add to cart"."""
    await settle(pilot)
    pilot.app.send_callback("i|sunrise-light-roast", "ℹ Sunrise Light Roast")
    await settle(pilot)
    pilot.app.send_callback("a|sunrise-light-roast|sl-250", "🛒 Add to cart")
    await settle(pilot)


def on_screen(app: ChatPayApp, pane: str) -> bool:
    """Whether the pane takes up any of the terminal."""
    widget = app.query_one(f"#{pane}")
    return widget.display and widget.region.area > 0 and app.screen.find_widget(widget) is not None


def shown_panes(app: ChatPayApp) -> set[str]:
    visible = set()
    for pane in PANES:
        try:
            if on_screen(app, pane):
                visible.add(pane)
        except Exception:  # NoWidget: not in the screen's map
            pass
    return visible


def footer_keys(app: ChatPayApp) -> dict[str, str]:
    """The footer's keys that are fully in sight, as ``{key: description}``."""
    width = app.size.width
    keys = {}
    for key in app.screen.query(FooterKey):
        region = key.region
        if region.area and region.right <= width:
            keys[key.key_display] = key.description
    return keys


def assert_text_fits(app: ChatPayApp, cut: bool) -> None:
    """The input's placeholder is whole; a trace line too wide for the pane ends in "…"."""
    box = app.query_one("#chat-input", Input)
    assert box.placeholder in PLACEHOLDERS, "a whole placeholder, not a cut one"
    assert cell_len(box.placeholder) < box.scrollable_content_region.width
    rows = [line for line in screen_text(app).splitlines() if "#1 [ℹ Sunrise" in line]
    assert rows, "the first turn is in the trace"
    trace_row = rows[0].split("│▶ ")[-1]
    if cut:  # "#1 [ℹ Sunrise Light Roast] → enquiry 1.00" is wider than the trace at this size
        assert trace_row.rstrip(" │").endswith("…") and "enquiry 1.00" not in trace_row
    else:
        assert "→ enquiry 1.00" in trace_row
    trace = app.trace  # no line runs under the border
    for y in range(len(trace._tree_lines)):
        assert trace.render_line(y).cell_length <= trace.size.width


@pytest.mark.parametrize(("size", "cut"), [((80, 24), True), ((100, 30), False)])
async def test_below_120_columns_every_pane_is_a_tab_the_footer_names(size: tuple[int, int], cut: bool) -> None:
    app = make_app(await load_shops(bare_runtime()))
    async with app.run_test(size=size) as pilot:
        await add_to_cart(pilot)
        keys = footer_keys(app)
        assert {k: keys.get(k) for k in ("f3", "f4", "f6", "f7")} == {
            "f3": "Preview", "f4": "Trace", "f6": "Costs", "f7": "Cart"}, keys
        assert app.query_one("#pane-tabs", Tabs).display
        text = screen_text(app)
        assert "Preview" in text and "Trace" in text and "Costs" in text and "Cart 1" in text, "the tabs"
        assert shown_panes(app) == {"preview"} and "Added 1 × Sunrise Light Roast" in text
        await pilot.press("f4")
        assert shown_panes(app) == {"trace"} and app.focused is app.trace
        assert "router cart_add" in screen_text(app)
        assert_text_fits(app, cut)
        await pilot.press("f6")
        assert shown_panes(app) == {"costs"}
        assert "session 2 turns" in screen_text(app)
        assert app.focused is app.query_one("#chat-input"), "focus left the hidden trace for the input"
        await pilot.press("f7")
        assert shown_panes(app) == {"cart"}
        assert "Subtotal (1 item)" in screen_text(app)
        await pilot.press("f3")
        assert shown_panes(app) == {"preview"}
        assert app.preview.buttons()[0] is app.focused, "F3 also focuses the first button"
        await pilot.click("#tab-cart")
        assert shown_panes(app) == {"cart"}, "a tab can be clicked too"
        # The chat stays on screen beside the tabs, and typing works whatever tab is shown.
        assert on_screen(app, "chat")
        await pilot.press("f2", *"hello", "enter")
        await settle(pilot)
        assert "you › hello" in app.chat.lines


async def test_a_narrow_footer_keeps_new_thread_and_engine_on_their_keys() -> None:
    app = make_app(await load_shops(bare_runtime()))
    async with app.run_test(size=(80, 24)) as pilot:
        await add_to_cart(pilot)
        keys = footer_keys(app)
        assert "^n" not in keys and "f5" not in keys, "left out so the pane keys fit"
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert app.thread_id == "thread-2" and app.cart.lines_text() == []
        await pilot.press("f5")
        await settle(pilot)
        assert any("OPENAI_API_KEY" in line for line in app.chat.lines), "F5 still asks to switch engine"


@pytest.mark.parametrize(("size", "cut"), [((120, 40), True), ((160, 50), False)])
async def test_from_120_columns_every_pane_is_on_screen(size: tuple[int, int], cut: bool) -> None:
    app = make_app(await load_shops(bare_runtime()))
    async with app.run_test(size=size) as pilot:
        await add_to_cart(pilot)
        assert shown_panes(app) == set(PANES)
        assert not app.query_one("#pane-tabs", Tabs).display
        keys = footer_keys(app)
        assert keys.get("f3") == "Buttons" and keys.get("f4") == "Trace"
        assert keys.get("^n") == "New thread" and keys.get("f5") == "Engine"
        assert "f6" not in keys and "f7" not in keys, "no tab keys when there are no tabs"
        text = screen_text(app)
        for seen in ("Added 1 × Sunrise Light Roast", "router cart_add", "session 2 turns", "Subtotal (1 item)"):
            assert seen in text
        assert_text_fits(app, cut)


async def test_resizing_moves_between_the_layouts_and_rewraps_the_chat() -> None:
    app = make_app(await load_shops(bare_runtime()))
    async with app.run_test(size=(160, 50)) as pilot:
        await add_to_cart(pilot)
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        assert shown_panes(app) == {"preview"}
        assert footer_keys(app).get("f7") == "Cart", "the footer follows the layout"
        log = app.chat.log_widget
        assert max(line.cell_length for line in log.lines) <= log.size.width, "chat lines wrap to the new width"
        await pilot.press("f7")
        await pilot.resize_terminal(130, 40)
        await settle(pilot)
        assert shown_panes(app) == set(PANES)
        assert "f7" not in footer_keys(app)
        assert app.query_one("#chat-input", Input).placeholder in PLACEHOLDERS


async def test_a_long_model_name_is_cut_in_the_costs_table() -> None:
    name = "meta-llama/Llama-3.3-70B-Instruct-Turbo-with-a-very-long-name"
    model = ScriptedChatModel([lambda request: "Our Sunrise Light Roast is bright."] * 5, name=name)
    app = make_app(await load_shops(bare_runtime(llm=model)))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        pilot.app.query_one("#chat-input", Input).value = "do you have a light roast?"
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("f6")
        await settle(pilot)
        text = screen_text(app)
        assert "meta-llama/" in text and name not in text and "…" in text
        assert max(len(line) for line in text.splitlines()) <= 80


async def test_the_header_shows_where_the_embedded_data_lives(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CHATPAY_DATA_DIR", str(tmp_path / "shop-data"))
    app = make_app(await load_shops(embedded_runtime()))
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        assert app.sub_title.endswith("embedded data: ~/shop-data")
        assert "embedded data: ~/shop-data" in screen_text(app).splitlines()[0]
        assert "· embedded data: ~/shop-data" in app.chat.lines, "said in the chat too, for narrow headers"
    monkeypatch.setenv("CHATPAY_DATA_DIR", "/srv/chatpay")
    assert stores_label(embedded_runtime()) == "embedded data: /srv/chatpay"


async def test_with_mongodb_uri_the_header_shows_the_server_without_its_password() -> None:
    settings = Settings(mongodb_uri="mongodb://shop:s3cret@db.example:27017/chatpay")
    # The settings name a server; the stores stay in memory, so the test reaches no network.
    runtime = build(settings, no_embedder=True, stores=in_memory_stores(), clock=FixedClock())
    app = make_app(await load_shops(runtime))
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        assert "MongoDB mongodb://shop:***@db.example:27017/chatpay" in app.sub_title
        assert "mongodb://shop:***@db.example" in screen_text(app).splitlines()[0]
        assert "s3cret" not in screen_text(app)
