"""``chatpay orders`` on orders a real checkout made (sandbox, through the turn service)."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any

import pytest

from chatpay import cli
from chatpay.adapters.mongo import embedded_database, mongo_stores
from tests.core.test_service import runtime_with, say


@pytest.fixture
async def shop(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Two paid sandbox orders in the garden shop, on the MongoDB adapter (mongomock)."""
    rt = await runtime_with(mongo_stores(embedded_database()))
    await say(rt, "add 2 basil seeds and a watering can", thread="ann")
    await say(rt, callback_data="p", thread="ann")
    await say(rt, "add 3 tomato seeds", thread="bob")
    await say(rt, callback_data="p", thread="bob")
    monkeypatch.setattr(cli, "_build", lambda business: rt)
    return rt


async def run(*args: str) -> int:
    import asyncio

    return await asyncio.to_thread(cli.main, list(args))


async def test_list_as_json_follows_the_contract(shop: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run("orders", "list", "--json") == 0
    orders = json.loads(capsys.readouterr().out)
    assert sorted((o["thread_id"], o["state"], o["total"], o["currency"]) for o in orders) == [
        ("ann", "paid", "39.60", "EUR"), ("bob", "paid", "9.60", "EUR")]
    ann = next(o for o in orders if o["thread_id"] == "ann")
    assert {"id", "business_id", "thread_id", "state", "currency", "total", "lines", "provider",
            "provider_payment_id", "created_at"} <= set(ann)
    assert [(ln["handle"], ln["quantity"], ln["unit_price"]) for ln in ann["lines"]] == [
        ("basil-seeds", 2, "2.80"), ("watering-can", 1, "34.00")]
    assert ann["provider"] == "sandbox" and ann["provider_payment_id"]


async def test_the_table_show_and_refund(shop: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run("orders", "list") == 0
    table = capsys.readouterr().out
    assert "2 orders" in table and "€39.60" in table and "€9.60" in table
    [ann] = await shop.stores.orders.list("garden", thread_id="ann")
    assert await run("orders", "show", ann.number) == 0  # as the shopper and the table write it
    shown = capsys.readouterr().out
    assert "Galvanised Watering Can" in shown and "€39.60" in shown and "→ paid" in shown
    assert await run("orders", "refund", ann.id) == 0
    assert "refunded" in capsys.readouterr().out
    assert (await shop.stores.orders.get("garden", ann.id)).state == "refunded"
    refunded = [e for e in await shop.stores.events.list("garden", "ann") if e.name == "OrderRefunded"]
    assert len(refunded) == 1 and refunded[0].data["order"] == ann.id  # the transition is an event
    assert await run("orders", "refund", ann.id) == 2  # twice: refused, naming why
    assert "a refunded order cannot be refunded" in capsys.readouterr().err
    assert await run("orders", "show", "nope") == 2
    assert "no order 'nope'" in capsys.readouterr().err


async def test_export_writes_one_csv_row_per_line_with_exact_amounts(shop: Any, tmp_path: Any,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "orders.csv"
    assert await run("orders", "export", "--format", "csv", "--output", str(out)) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == 3 and {r["handle"] for r in rows} == {"basil-seeds", "watering-can", "tomato-seeds"}
    for order_id in {r["order_id"] for r in rows}:
        lines = [r for r in rows if r["order_id"] == order_id]
        assert sum(Decimal(r["line_total"]) for r in lines) == Decimal(lines[0]["order_total"])
    assert "exported 2 orders" in capsys.readouterr().err


async def test_fulfil_and_a_refund_made_outside_chatpay_are_recorded(shop: Any,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    [bob] = await shop.stores.orders.list("garden", thread_id="bob")
    assert await run("orders", "fulfil", bob.id, "--note", "tracking 1Z999") == 0
    assert await run("orders", "refund", bob.id, "--outside", "sent 9.60 USDC from the shop wallet") == 0
    stored = await shop.stores.orders.get("garden", bob.id)
    assert [t.state for t in stored.history][-2:] == ["fulfilled", "refunded"]
    assert "sent 9.60 USDC" in stored.history[-1].reason
    assert await run("orders", "fulfil", bob.id) == 2  # a refunded order cannot be sent
    assert "cannot go from refunded to fulfilled" in capsys.readouterr().err
