"""The chatpay command as a user runs it: real processes, piped input, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def chatpay(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chatpay.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=180)


def test_piped_chat_prints_one_json_object_per_reply_with_the_cart() -> None:
    run = chatpay("chat", "--json", stdin="hi\nadd 2 of the ethiopian yirgacheffe\nwhat is in my cart\n")
    assert run.returncode == 0, run.stderr
    replies = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["intent"] for r in replies] == ["chitchat", "cart_add", "cart_view"]
    cart = replies[-1]["cart"]
    assert [(ln["handle"], ln["quantity"]) for ln in cart["lines"]] == [("ethiopian-yirgacheffe", 2)]
    assert (cart["subtotal"], cart["currency"]) == ("27.80", "EUR")
    assert replies[-1]["engine"] == "offline" and replies[-1]["usage"]["prompt_tokens"] == 0


def test_importing_a_shopify_export_reports_its_products() -> None:
    run = chatpay("catalog", "import", str(FIXTURES / "samples" / "shopify_20.json"), "--business", "outdoor",
                  "--currency", "USD")
    assert run.returncode == 0, run.stderr
    assert "imported 20 products" in run.stdout


def test_a_bad_price_exits_2_naming_the_product_and_field() -> None:
    run = chatpay("catalog", "import", str(FIXTURES / "samples" / "bad_price.json"), "--business", "outdoor",
                  "--currency", "USD")
    assert run.returncode == 2
    [line] = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert "bad_price.json" in line and "Cascade Waterproof Hiking Boots" in line and "variants[2].price" in line


def test_bad_invocations_exit_2_with_one_line() -> None:
    missing = chatpay("catalog", "import", "/nonexistent/products.json", "--business", "x", "--currency", "EUR")
    assert missing.returncode == 2 and "/nonexistent/products.json" in missing.stderr
    assert chatpay("bogus").returncode == 2
    no_currency = chatpay("catalog", "import", str(FIXTURES / "samples" / "shopify_20.json"), "--business", "x")
    assert no_currency.returncode == 2 and "--currency" in no_currency.stderr


def test_chat_on_another_catalog_file(tmp_path: Path) -> None:
    run = chatpay("chat", "--json", "--catalog", str(FIXTURES / "bikes" / "catalog.json"), "--currency", "GBP",
                  "--business", "bikes", stdin="do you sell helmets?\n")
    assert run.returncode == 0, run.stderr
    [reply] = [json.loads(line) for line in run.stdout.splitlines()]
    assert reply["intent"] == "enquiry" and reply["reply"]["cards"]
    assert all(c["price"]["currency"] == "GBP" for c in reply["reply"]["cards"])


def test_a_whole_purchase_in_a_terminal_ends_in_a_confirmed_test_order() -> None:
    shop = FIXTURES / "hearth"
    run = chatpay("chat", "--catalog", str(shop / "catalog.json"), "--store", str(shop / "store.json"),
                  stdin="add 2 of the bakewell muffin tins\ncheckout\n#1\nwhat's in my cart\n")
    assert run.returncode == 0, run.stderr
    assert "[#1] 💳 Checkout" in run.stdout
    assert "Test order" in run.stdout and "no money moved" in run.stdout and "$44.00" in run.stdout
    assert run.stdout.rstrip().endswith("Your cart is empty. Ask me about our products to get started!")


def test_a_purchase_with_options_quantities_and_a_removal_on_a_shop_never_tuned_on() -> None:
    """fixtures/wren, a yarn shop written blind for this transcript and in no eval: browse, ask,
    pick an option by its place in the list, change the quantity, ask about a sold-out size, take a
    line out, check out, and the test order is confirmed with catalog prices."""
    shop = FIXTURES / "wren"
    said = ["what do you sell?", "do you have a merino dk?", "what colours does it come in?",
            "add 5 balls in the second colour", "make it 6 balls", "and some 4mm straight needles",
            "what about 4.5mm?", "ok the 5mm then", "remove the 4mm needles", "checkout", "#1"]
    run = chatpay("chat", "--catalog", str(shop / "catalog.json"), "--store", str(shop / "store.json"),
                  stdin="\n".join(said) + "\n")
    assert run.returncode == 0, run.stderr
    assert "Updated: 6 × Wren Merino DK (Heather / Single ball)" in run.stdout
    assert "It comes in 4.5mm for £7.25 (out of stock)." in run.stdout
    confirmed = run.stdout[run.stdout.index("Test order"):]
    assert "6 × Wren Merino DK (Heather / Single ball) — £40.50" in confirmed
    assert "1 × Symfonie Wood Straight Needles 35cm (5mm) — £7.95" in confirmed and "(4mm)" not in confirmed
    assert "Total: £48.45" in confirmed
