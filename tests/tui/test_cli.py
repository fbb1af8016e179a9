"""``chatpay-tui`` on the command line: its options, its help, and refusing to run without a terminal."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from chatpay.adapters.memory import in_memory_stores
from chatpay.bootstrap import build
from chatpay.resources import demo_store
from chatpay_tui import cli as tui_app
from chatpay_tui.app import ChatPayApp
from chatpay_tui.cli import main

from .conftest import bare_runtime, make_app, settle

OPTIONS = ("--business", "--catalog", "--store", "--currency")


def command() -> list[str]:
    """The installed console script, else the module (a checkout that was not installed)."""
    script = Path(sys.executable).with_name("chatpay-tui")
    return [str(script)] if script.exists() else [sys.executable, "-m", "chatpay_tui.cli"]


def test_help_describes_every_option_and_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal's width
    for option in OPTIONS:
        found = re.search(rf"{option} [A-Z]+ (.*?)(?= --[a-z]+ [A-Z]+ |$)", text)
        assert found, f"{option} is listed"
        described = found.group(1)
        assert "(default:" in described and len(described.split()) >= 6, f"{option}: {described}"
    assert "chatpay chat" in text, "the help points to the piped alternative"


def test_without_a_terminal_it_refuses_at_once_with_one_line(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    with open(out, "w") as stdout:
        done = subprocess.run(command(), stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE,
                              text=True, timeout=60)
    assert done.returncode == 2
    assert out.read_text() == "", "no escape codes written"
    [line] = done.stderr.splitlines()
    assert "needs a terminal" in line and "chatpay chat" in line


def test_help_works_without_a_terminal() -> None:
    done = subprocess.run([*command(), "--help"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "--store FILE" in done.stdout


def test_a_store_file_needs_its_catalog_and_must_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, store = demo_store()
    assert main(["--store", str(store)]) == 2
    assert "--catalog" in capsys.readouterr().err
    assert main(["--catalog", str(demo_store()[0]), "--store", str(tmp_path / "nope.json")]) == 2
    assert f"--store {tmp_path / 'nope.json'}: no such file" in capsys.readouterr().err


def test_the_options_reach_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--catalog``, ``--store`` and ``--currency`` are what the app loads at start."""
    products, store = demo_store()
    started: list[ChatPayApp] = []
    monkeypatch.setattr(tui_app, "has_terminal", lambda: True)
    monkeypatch.setattr(tui_app, "build", lambda settings: build(settings, no_embedder=True, stores=in_memory_stores()))
    monkeypatch.setattr(ChatPayApp, "run", lambda self: started.append(self))
    assert main(["--business", "beans", "--catalog", str(products), "--store", str(store),
                 "--currency", "eur"]) == 0
    [app] = started
    assert (app.business_id, app.catalog_file, app.store_file, app.currency) == ("beans", products, store, "EUR")


async def test_a_store_file_given_at_start_answers_policies_from_the_first_message() -> None:
    products, store = demo_store()
    app = make_app(bare_runtime(), catalog_file=products, store_file=store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        catalog = await app.runtime.catalog()
        assert catalog is not None and catalog.policies
        loaded = (f"· Loaded {len(catalog)} products from {products} with the store profile {store} "
                  f"(Bean & Leaf Co., {len(catalog.policies)} policies).")
        assert loaded in app.chat.lines
        app.query_one("#chat-input").value = "do you ship to the UK?"
        await pilot.press("enter")
        await settle(pilot)
        assert "We do not currently ship outside the EU" in app.results[-1].reply.text
