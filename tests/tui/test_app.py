"""Pilot tests: what a developer sees and can do in chatpay-tui."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

from textual.widgets import Input

from chatpay.adapters.memory import InMemoryCartStore, ScriptedChatModel, in_memory_stores
from chatpay.bootstrap import Runtime, build
from chatpay.core.agents.cart import cart_view
from chatpay.core.errors import ModelError, StorageError
from chatpay.core.ports import ChatRequest, ChatResponse
from chatpay.core.telemetry import Usage
from chatpay.core.turns import INTENTS
from chatpay.evaluation.cases import load_cases
from chatpay.resources import demo_store
from chatpay_tui.app import ChatPayApp
from chatpay_tui.cli import main
from chatpay_tui.preview import KeyboardButton
from chatpay_tui.screens import HelpScreen, JsonScreen, PromptScreen

from .conftest import IMG, bare_runtime, eur, load_shops, make_app, settle, small_shop


async def type_message(pilot, text: str, *, keys: bool = False) -> None:
    """Enter ``text`` in the chat input (key by key when ``keys``) and wait for the reply."""
    if keys:
        await pilot.press(*text)
    else:
        pilot.app.query_one("#chat-input").value = text
    await pilot.press("enter")
    await settle(pilot)


async def palette(pilot, command: str) -> None:
    await pilot.press("ctrl+p")
    await pilot.pause()
    await pilot.press(*command)
    await pilot.pause(0.1)
    await pilot.press("enter")
    await settle(pilot)


async def answer_prompt(pilot, *values: str | None) -> None:
    """Fill the dialog's fields (None leaves one as it is) and press Enter once, as a user would."""
    screen = pilot.app.screen
    assert isinstance(screen, PromptScreen)
    for i, value in enumerate(values):
        if value is not None:
            screen.query_one(f"#prompt-{i}").value = value
    await pilot.press("enter")
    await settle(pilot)


def tree_text(app: ChatPayApp) -> str:
    lines = []
    todo = list(app.trace.root.children)
    while todo:
        node = todo.pop(0)
        lines.append(str(node.label))
        todo[:0] = list(node.children)
    return "\n".join(lines)


async def test_typing_a_question_shows_a_reply_a_preview_and_a_trace(app: ChatPayApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await type_message(pilot, "do you have a light roast?", keys=True)
        assert "you › do you have a light roast?" in app.chat.lines
        assert any(line.startswith("bot › ") for line in app.chat.lines)
        assert app.preview.messages, "the preview shows the bot's Telegram messages"
        assert len(app.trace.turns) == 1
        text = tree_text(app)
        assert "router enquiry" in text
        assert "runner-up:" in text and "model not called" in text
        assert "sunrise-light-roast" in text, "retrieved products are listed with their scores"
        assert app.costs.costs[0].engine == "offline" and app.costs.costs[0].cost_usd == 0


async def test_pressing_add_to_cart_in_the_preview_fills_the_cart_pane(app: ChatPayApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await type_message(pilot, "do you have a light roast?")
        await pilot.press("f3")
        focused = app.focused
        assert isinstance(focused, KeyboardButton) and focused.button_label == "🛒 Add to cart"
        await pilot.press("enter")
        await settle(pilot)
        assert app.cart.lines_text() == ["1 × Sunrise Light Roast"]
        assert app.cart.view is not None and app.cart.view.subtotal == eur("12.50")
        assert [r.decision.intent for r in app.results] == ["enquiry", "cart_add"]
        assert len(app.trace.turns) == 2
        assert "[🛒 Add to cart]" in str(app.trace.turns[1].label)
        assert [c.cost_usd for c in app.costs.costs] == [0, 0]


async def test_a_reply_keyboard_button_sends_its_text(app: ChatPayApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.send_callback("v", "🧺 View cart")  # an empty cart offers "What do you sell?"
        await settle(pilot)
        buttons = [b for b in app.preview.buttons() if b.reply_text]
        assert [b.reply_text for b in buttons] == ["What do you sell?"]
        buttons[0].focus()
        await pilot.press("enter")
        await settle(pilot)
        assert app.results[-1].turn.text == "What do you sell?"
        assert "you › What do you sell?" in app.chat.lines


async def test_new_thread_from_the_palette_empties_the_cart_view(app: ChatPayApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.send_callback("a|midnight-dark-roast", "🛒 Add to cart")
        await settle(pilot)
        assert app.cart.lines_text() == ["1 × Midnight Dark Roast"]
        await palette(pilot, "new")
        assert app.thread_id == "thread-2"
        assert app.cart.lines_text() == []
        assert app.trace.turns == [] and app.preview.messages == []
        app.send_callback("v", "🧺 View cart")
        await settle(pilot)
        assert app.results[-1].reply.text.startswith("Your cart is empty")


async def test_export_writes_a_conversations_case_that_replays(app: ChatPayApp, tmp_path: Path) -> None:
    target = tmp_path / "cases.jsonl"
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await type_message(pilot, "do you have a light roast?")
        app.send_callback("a|sunrise-light-roast|sl-1k", "🛒 Add to cart")
        await settle(pilot)
        await palette(pilot, "export")
        await answer_prompt(pilot, str(target), "light roast then add")
    lines = target.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    case = json.loads(lines[0])
    assert case["name"] == "light roast then add"
    first, second = case["turns"]
    assert first == {"user": "do you have a light roast?", "intent": "enquiry", "cart": {}, "subtotal": "0.00"}
    assert second == {"user": "add Sunrise Light Roast 1kg to my cart", "intent": "cart_add",
                      "cart": {"sunrise-light-roast": 1}, "subtotal": "42.00"}
    assert all(t["intent"] in INTENTS for t in case["turns"])
    [conversation] = load_cases("conversations", target)  # the eval harness accepts the file
    # Replayed as text on a fresh runtime, the case gets the same intents, carts and subtotals.
    runtime = await load_shops(bare_runtime())
    for expected in conversation.turns:
        result = await runtime.service.handle(runtime.turn(expected.user, thread_id="replay"))
        view = cart_view(result.cart, small_shop())
        assert result.decision.intent == expected.intent
        assert {ln.handle: ln.quantity for ln in view.lines} == expected.cart
        assert view.subtotal.amount_str() == expected.subtotal


async def test_switch_business_talks_to_the_other_shop() -> None:
    from chatpay.core.catalog import Catalog, Product, Variant

    bikes = Catalog.of("bikes", "EUR", [
        Product("city-bike", "City Bike", "A bike for town.", (Variant("cb", "Default Title", eur("399.00")),),
                images=(f"{IMG}/bike.jpg",)),
    ], store_name="Spokes")
    app = make_app(await load_shops(bare_runtime(), small_shop(), bikes))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await palette(pilot, "busi")
        await answer_prompt(pilot, "bikes")
        assert app.business_id == "bikes"
        assert "Spokes (bikes)" in app.sub_title
        app.send_callback("a|city-bike", "🛒 Add to cart")
        await settle(pilot)
        assert app.results[-1].turn.business_id == "bikes"
        assert app.cart.lines_text() == ["1 × City Bike"]


def _with_model(name: str) -> tuple[Runtime, ScriptedChatModel]:
    model = ScriptedChatModel([lambda request: "Our Sunrise Light Roast is bright and floral."] * 20, name=name)

    def rebuild(runtime: Runtime, offline: bool) -> Runtime:
        return build(runtime.settings, offline=offline, llm=model, stores=runtime.stores, no_embedder=True,
                     clock=runtime.clock)

    return rebuild, model  # type: ignore[return-value]


async def test_switch_engine_uses_the_model_then_goes_back_offline() -> None:
    rebuild, model = _with_model("gpt-4o-mini")
    app = make_app(await load_shops(bare_runtime()), rebuild=rebuild)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert "engine offline" in app.sub_title
        await pilot.press("f5")
        await settle(pilot)
        assert "engine gpt-4o-mini" in app.sub_title
        await type_message(pilot, "do you have a light roast?")
        cost = app.costs.costs[-1]
        assert model.requests, "the model answered the enquiry"
        assert cost.models == ("gpt-4o-mini",) and cost.prompt_tokens >= 10 and cost.completion_tokens >= 5
        assert cost.cost_usd is not None and cost.cost_usd > 0
        await palette(pilot, "engine")
        assert "engine offline" in app.sub_title


async def test_an_unpriced_model_shows_its_cost_as_unknown() -> None:
    rebuild, _ = _with_model("my-local-llama")
    app = make_app(await load_shops(bare_runtime()), rebuild=rebuild)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("f5")
        await settle(pilot)
        await type_message(pilot, "do you have a light roast?")
        assert app.costs.costs[-1].cost_usd is None
        summary = str(app.costs.query_one("#cost-summary").render())
        assert "unknown" in summary


async def test_switching_to_a_model_without_one_configured_says_why(app: ChatPayApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("f5")
        await settle(pilot)
        assert "engine offline" in app.sub_title
        assert any("OPENAI_API_KEY" in line for line in app.chat.lines)


class BrokenCartStore(InMemoryCartStore):
    async def get(self, business_id: str, thread_id: str):  # type: ignore[override]
        raise StorageError("carts", "the database is unreachable")


async def test_a_failing_turn_shows_an_error_and_the_app_keeps_running() -> None:
    runtime = bare_runtime(stores=replace(in_memory_stores(), carts=BrokenCartStore()))
    app = make_app(await load_shops(runtime))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await type_message(pilot, "hello")
        assert any(line.startswith("⚠ turn failed: StorageError") for line in app.chat.lines)
        assert app.is_running
        await type_message(pilot, "still there?")
        assert "you › still there?" in app.chat.lines


async def test_copy_span_puts_the_latest_turns_span_json_on_the_clipboard(app: ChatPayApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.send_callback("v", "🧺 View cart")
        await settle(pilot)
        app.send_callback("a|house-espresso", "🛒 Add to cart")
        await settle(pilot)
        await pilot.press("f4")
        await pilot.press("c")
        await pilot.pause()
        span = json.loads(app.clipboard)
        assert span["name"] == "turn"
        assert [c["name"] for c in span["children"]] == ["load", "route", "agent:cart_add", "save"]
        assert "ms" not in span, "stable mode leaves timings out"
        assert isinstance(app.screen, JsonScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, JsonScreen)


async def test_help_opens_and_closes(app: ChatPayApp) -> None:
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


def test_main_rejects_a_missing_catalog_file(tmp_path: Path, capsys) -> None:
    assert main(["--catalog", str(tmp_path / "nope.json")]) == 2
    assert "nope.json: no such file" in capsys.readouterr().err


class GatedChatModel:
    """A chat model that answers only when the test opens the gate."""

    name = "gpt-4o-mini"

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.asked = 0

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.asked += 1
        await self.gate.wait()
        return ChatResponse("Sunrise Light Roast is bright and floral.", Usage(12, 6), self.name)


async def test_a_slow_model_turn_runs_in_the_background() -> None:
    model = GatedChatModel()
    app = make_app(await load_shops(bare_runtime(llm=model)))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.query_one("#chat-input").value = "do you have a light roast?"
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert model.asked == 1 and app.results == []
        assert "thinking" in str(app.chat.query_one("#chat-status").render())
        await pilot.press("f1")  # the screen still answers while the model is busy
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        model.gate.set()
        await settle(pilot)
        assert len(app.results) == 1 and app.costs.costs[0].models == ("gpt-4o-mini",)
        assert str(app.chat.query_one("#chat-status").render()) == ""


async def test_loading_a_catalog_file_from_the_palette(app: ChatPayApp, tmp_path: Path) -> None:
    good = tmp_path / "teas.json"
    good.write_text(json.dumps([
        {"handle": "green-tea", "name": "Green Tea", "description": "Sencha.", "price": 8.5, "currency": None,
         "images": [], "available": True},
    ]), encoding="utf-8")
    bad = tmp_path / "broken.json"
    bad.write_text('[{"handle": "x", "name": "X", "price": "lots"}]', encoding="utf-8")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await palette(pilot, "load")
        await answer_prompt(pilot, str(bad), "", "EUR")
        [error] = [line for line in app.chat.lines if line.startswith("⚠")]
        assert error.count("broken.json") == 1, f"the file is named once: {error}"
        assert len(await app.runtime.catalog()) == 4, "a bad file changes nothing"
        await palette(pilot, "load")
        await answer_prompt(pilot, str(good), "", "EUR")
        catalog = await app.runtime.catalog()
        assert [p.handle for p in catalog] == ["green-tea"]
        assert f"· Loaded 1 product from {good}." in app.chat.lines
        app.send_callback("a|green-tea", "🛒 Add to cart")
        await settle(pilot)
        assert app.cart.lines_text() == ["1 × Green Tea"]


async def test_the_load_dialog_loads_on_the_first_enter_with_a_store_profile(app: ChatPayApp) -> None:
    """One Enter loads the catalog and the store.json; the first question about a policy is answered."""
    products, store = demo_store()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await palette(pilot, "load")
        screen = app.screen
        assert isinstance(screen, PromptScreen)
        screen.query_one("#prompt-0", Input).value = str(products)
        screen.query_one("#prompt-1", Input).value = str(store)
        await pilot.press("enter")  # in the first field
        await settle(pilot)
        assert not isinstance(app.screen, PromptScreen), "the first Enter confirms"
        catalog = await app.runtime.catalog()
        assert catalog is not None and catalog.store_name == "Bean & Leaf Co." and catalog.policies
        loaded = f"Loaded {len(catalog)} products from {products} with the store profile {store}"
        assert any(line.startswith(f"· {loaded}") for line in app.chat.lines), app.chat.lines
        assert "Bean & Leaf Co. (demo)" in app.sub_title
        await type_message(pilot, "what is your returns policy?")
        assert "within 30 days" in app.results[-1].reply.text


async def test_the_load_dialog_keeps_a_missing_file_open_to_correct(app: ChatPayApp, tmp_path: Path) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await palette(pilot, "load")
        await answer_prompt(pilot, str(tmp_path / "nope.json"))
        screen = app.screen
        assert isinstance(screen, PromptScreen), "the dialog stays open"
        assert str(screen.query_one("#prompt-error").render()) == f"{tmp_path / 'nope.json'}: no such file."
        assert len(await app.runtime.catalog()) == 4
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, PromptScreen)


async def test_a_model_failure_the_engine_recovers_from_is_still_shown() -> None:
    model = ScriptedChatModel([ModelError("the model server is down")] * 5, name="gpt-4o-mini")
    app = make_app(await load_shops(bare_runtime(llm=model)))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await type_message(pilot, "do you have a light roast?")
        assert model.requests, "the engine asked the model"
        warnings = [line for line in app.chat.lines if line.startswith("! ")]
        assert any("the model server is down" in line for line in warnings)
        assert app.results[-1].error is None, "the shopper still got the composed answer"
