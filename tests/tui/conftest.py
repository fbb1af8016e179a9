"""Fixtures for the TUI tests: a small shop on the in-memory stores, fixed ids, no timings."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable
from typing import Any

import pytest
from textual.widgets import Input

from chatpay.adapters.memory import FixedClock, in_memory_stores
from chatpay.adapters.mongo import embedded_database, mongo_stores
from chatpay.bootstrap import Runtime, build
from chatpay.config import Settings
from chatpay.core.catalog import Catalog, PolicyDoc, Product, Variant
from chatpay.core.money import Money
from chatpay_tui.app import ChatPayApp

IMG = "https://shop.example/img"


@pytest.fixture(scope="session")
def _snapshot_tempdir() -> str | None:
    """pytest-textual-snapshot's report folder, read before any test clears the environment."""
    return os.environ.get("TEXTUAL_SNAPSHOT_TEMPDIR")


@pytest.fixture(autouse=True)
def _keep_snapshot_tempdir(monkeypatch: pytest.MonkeyPatch, _snapshot_tempdir: str | None) -> None:
    # The root conftest clears the environment for every test; snap_compare needs this one variable.
    if _snapshot_tempdir:
        monkeypatch.setenv("TEXTUAL_SNAPSHOT_TEMPDIR", _snapshot_tempdir)


def eur(amount: str) -> Money:
    whole, _, cents = amount.partition(".")
    return Money(int(whole) * 100 + int((cents or "0").ljust(2, "0")), "EUR")


def small_shop(business_id: str = "demo", name: str = "Test Roasters") -> Catalog:
    """Four coffees: one with size variants, one out of stock, all with photos."""
    products = [
        Product("sunrise-light-roast", "Sunrise Light Roast",
                "A light roast from Ethiopia: jasmine, lemon and peach.",
                (Variant("sl-250", "250g", eur("12.50")), Variant("sl-1k", "1kg", eur("42.00"))),
                product_type="Coffee Beans", tags=("light roast", "ethiopia"), images=(f"{IMG}/sunrise.jpg",)),
        Product("midnight-dark-roast", "Midnight Dark Roast", "A dark roast with cocoa and smoke.",
                (Variant("md", "Default Title", eur("11.00")),), product_type="Coffee Beans",
                tags=("dark roast",), images=(f"{IMG}/midnight.jpg",)),
        Product("house-espresso", "House Espresso Blend", "Our espresso blend: caramel and hazelnut.",
                (Variant("he", "Default Title", eur("10.00")),), product_type="Coffee Beans",
                tags=("espresso",), images=(f"{IMG}/espresso.jpg",)),
        Product("swiss-water-decaf", "Swiss Water Decaf", "Decaffeinated without chemicals.",
                (Variant("sd", "Default Title", eur("13.00"), available=False),), product_type="Coffee Beans",
                tags=("decaf",), images=(f"{IMG}/decaf.jpg",)),
    ]
    policies = [PolicyDoc("shipping", "Shipping", "We ship across the EU for €4.90.", ("shipping",))]
    return Catalog.of(business_id, "EUR", products, policies=policies, store_name=name)


def bare_runtime(**overrides: Any) -> Runtime:
    """A runtime on the in-memory twins, lexical retrieval only, a fixed clock."""
    overrides.setdefault("stores", in_memory_stores())
    overrides.setdefault("clock", FixedClock())
    return build(Settings(), no_embedder=True, **overrides)


def embedded_runtime(**overrides: Any) -> Runtime:
    """``bare_runtime`` on the embedded (mongomock) stores, which the header reports as the data folder.

    The stores are made here, in memory, so nothing is written to ``CHATPAY_DATA_DIR``.
    """
    return bare_runtime(stores=mongo_stores(embedded_database()), **overrides)


async def load_shops(runtime: Runtime, *catalogs: Catalog) -> Runtime:
    for catalog in catalogs or (small_shop(),):
        await runtime.import_catalog(catalog)
    return runtime


def shop_runtime(*catalogs: Catalog, embedded: bool = False, **overrides: Any) -> Runtime:
    """``bare_runtime`` (``embedded_runtime`` when ``embedded``) with ``catalogs`` imported, for snapshot tests."""
    runtime = embedded_runtime(**overrides) if embedded else bare_runtime(**overrides)
    return asyncio.run(load_shops(runtime, *catalogs))


def screen_text(app: Any) -> str:
    """What the terminal shows now, as plain text (one line per row)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def thread_counter() -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"thread-{next(numbers)}"


def make_app(runtime: Runtime, **kwargs: Any) -> ChatPayApp:
    kwargs.setdefault("demo", False)
    kwargs.setdefault("stable", True)
    kwargs.setdefault("thread_ids", thread_counter())
    return ChatPayApp(runtime, **kwargs)


async def settle(pilot: Any) -> None:
    """Wait until every worker (turns, imports) is done and the screen has caught up.

    Inputs stop blinking: a focused input then always shows its cursor, as the snapshots do (a
    loaded machine took one while the cursor was blinked off)."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    for field in pilot.app.query(Input):
        field.cursor_blink = False
    await pilot.pause()


@pytest.fixture
async def app() -> ChatPayApp:
    return make_app(await load_shops(bare_runtime()))
