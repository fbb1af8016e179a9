"""The embedded default remembers: what one process imports, the next one serves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def chatpay(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chatpay.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=180)


def test_an_import_is_served_by_the_next_process_with_its_store_profile(tmp_path: Path) -> None:
    store = tmp_path / "store.json"
    store.write_text(json.dumps({"name": "Trail & Summit", "currency": "USD", "policies": [
        {"id": "returns", "title": "Returns", "text": "Return unworn gear within 60 days for a full refund.",
         "keywords": ["returns", "refund", "return policy"]}]}), encoding="utf-8")
    imported = chatpay("catalog", "import", str(FIXTURES / "samples" / "shopify_20.json"), "--business", "outdoor",
                       "--store", str(store))
    assert imported.returncode == 0, imported.stderr
    run = chatpay("chat", "--business", "outdoor", "--json", stdin="what's your returns policy?\n")
    assert run.returncode == 0, run.stderr
    [reply] = [json.loads(line) for line in run.stdout.splitlines()]
    assert "60 days" in reply["reply"]["text"]
    data = Path(os.environ["CHATPAY_DATA_DIR"]) / "mongo" / "chatpay"
    assert (data / "catalogs.json").is_file() and (data / "products.json").is_file()


def test_a_cart_survives_the_process(tmp_path: Path) -> None:
    first = chatpay("chat", "--json", "--thread", "ann", stdin="add 2 of the ethiopian yirgacheffe\n")
    assert first.returncode == 0, first.stderr
    again = chatpay("chat", "--json", "--thread", "ann", stdin="what is in my cart\n")
    [reply] = [json.loads(line) for line in again.stdout.splitlines()]
    assert [(ln["handle"], ln["quantity"]) for ln in reply["cart"]["lines"]] == [("ethiopian-yirgacheffe", 2)]


def test_an_unknown_business_is_an_error_naming_the_ones_there_are() -> None:
    run = chatpay("chat", "--business", "acme", stdin="hi\n")
    assert run.returncode == 2
    [line] = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert "unknown business 'acme'" in line and "demo" in line and "chatpay catalog import" in line
