"""``chatpay orders list|show|refund|fulfil|export``: the merchant's view of the order store.

``list`` and ``show`` print rich tables (``--json`` for the documented JSON, docs/formats.md);
``export`` writes CSV with one row per order line, so a spreadsheet sums any column exactly;
``refund`` gives the money back through the order's provider and records it on the order.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from chatpay.core.checkout import refund, transition_event
from chatpay.core.errors import InvalidInput
from chatpay.core.money import Money
from chatpay.core.orders import STATES, Order, OrderError, order_as_json
from chatpay.core.ports import OrderStore

CSV_COLUMNS = ("order_id", "business_id", "thread_id", "state", "created_at", "provider", "provider_payment_id",
               "currency", "order_total", "handle", "variant", "title", "quantity", "unit_price", "line_total",
               "flags")


def add_parser(sub: Any) -> None:
    """The ``orders`` subcommands, on ``chatpay``'s subparsers."""
    orders = sub.add_parser("orders", help="list, show, refund and export orders")
    osub = orders.add_subparsers(dest="orders_command", required=True, parser_class=type(orders))
    ls = osub.add_parser("list", help="orders, newest first")
    ls.add_argument("--business", help="only this business (default: every business)")
    ls.add_argument("--state", choices=STATES, help="only orders in this state (default: every state)")
    ls.add_argument("--limit", type=int, default=100, help="at most this many (default: 100)")
    ls.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    show = osub.add_parser("show", help="one order with its lines and history")
    show.add_argument("id", help="the order's id, e.g. o1a2b3c4d5e6 (`chatpay orders list --json` shows it)")
    show.add_argument("--json", action="store_true", help="print the order as JSON")
    rf = osub.add_parser("refund", help="refund a paid order through its provider")
    rf.add_argument("id", help="the order's id, e.g. o1a2b3c4d5e6 (`chatpay orders list --json` shows it)")
    rf.add_argument("--outside", metavar="NOTE",
                    help="record a refund made outside ChatPay (a USDC refund sent from your wallet, a card "
                         "refund in the provider's dashboard) without asking the provider; NOTE says what was done "
                         "(default: refund through the order's provider)")
    ff = osub.add_parser("fulfil", help="mark a paid order as sent to the shopper")
    ff.add_argument("id", help="the order's id")
    ff.add_argument("--note", default="sent", help="what was sent, e.g. a tracking number (default: sent)")
    ex = osub.add_parser("export", help="every order line, for a spreadsheet or an accounting import")
    ex.add_argument("--format", choices=("csv", "json"), default="csv",
                    help="csv (one row per order line) or json")
    ex.add_argument("--business", help="only this business (default: every business)")
    ex.add_argument("--output", type=Path, help="the file to write (default: standard output)")


async def run(args: argparse.Namespace, runtime: Any) -> int:
    orders: OrderStore | None = runtime.stores.orders
    if orders is None:
        raise InvalidInput("this deployment's stores keep no orders")
    command = args.orders_command
    if command == "list":
        found = await orders.list(args.business, state=args.state, limit=args.limit)
        if args.json:
            print(json.dumps([order_as_json(o) for o in found], indent=1))
        else:
            _print_table(found)
        return 0
    if command == "export":
        found = await orders.list(args.business, limit=10**9)
        text = json.dumps([order_as_json(o) for o in found], indent=1) + "\n" if args.format == "json" else to_csv(found)
        if args.output is not None:
            args.output.write_text(text, encoding="utf-8", newline="")
            print(f"exported {len(found)} orders to {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(text)
        return 0
    order = await orders.find(args.id.strip().lower())  # the shopper and the table show it in capitals
    if order is None:
        raise InvalidInput(f"no order {args.id!r}; `chatpay orders list` shows the orders there are")
    if command == "show":
        if args.json:
            print(json.dumps(order_as_json(order), indent=1))
        else:
            _print_order(order)
        return 0
    now = runtime.clock.now()
    if command == "fulfil":
        done, note = await orders.update(order.to("fulfilled", now, args.note), order.state), args.note
    elif args.outside:
        if not order.can_become("refunded"):
            raise OrderError(order.id, f"a {order.state} order cannot be refunded")
        done, note = await orders.update(order.to("refunded", now, f"refunded outside ChatPay: {args.outside}"),
                                         order.state), f"recorded: {args.outside}"
    else:
        provider = runtime.engine.payments
        if provider is None:
            raise InvalidInput("no payment provider is configured (CHATPAY_PAYMENTS)")
        done, note = await refund(orders, provider, order, now)
    await runtime.stores.events.record(transition_event(done, source="chatpay-orders"))
    runtime.flush()
    print(f"order {done.number}: {done.state}. {note}")
    return 0


def to_csv(orders: list[Order]) -> str:
    """One row per order line; amounts in major units as exact decimals (``27.80``), never floats."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for o in orders:
        money = lambda minor: Money(minor, o.currency).amount_str()  # noqa: B023, E731
        for ln in o.lines:
            writer.writerow((o.id, o.business_id, o.thread_id, o.state, o.created_at.isoformat(), o.provider,
                             o.provider_payment_id or "", o.currency, money(o.total_minor), ln.handle, ln.variant,
                             ln.title, ln.quantity, money(ln.unit_minor), money(ln.total_minor), ";".join(o.flags)))
    return out.getvalue()


def _print_table(orders: list[Order]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(orders)} order{'s' if len(orders) != 1 else ''}")
    for col in ("order", "business", "shopper", "state", "items", "total", "provider", "created", "flags"):
        # The order number is what a merchant copies into `orders show`: never cut or wrapped.
        table.add_column(col, justify="right" if col in ("items", "total") else "left",
                         no_wrap=col in ("order", "total"), min_width=12 if col == "order" else None)
    for o in orders:
        table.add_row(o.number, o.business_id, o.thread_id, o.state, str(o.item_count), o.total.format(), o.provider,
                      o.created_at.strftime("%Y-%m-%d %H:%M"), ", ".join(o.flags))
    Console().print(table)


def _print_order(order: Order) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]order {order.number}[/]  {order.state}  {order.business_id} / shopper {order.thread_id}  "
                  f"{order.provider} {order.provider_payment_id or ''}")
    lines = Table(show_header=True)
    for col in ("product", "variant", "qty", "unit", "total"):
        lines.add_column(col, justify="right" if col in ("qty", "unit", "total") else "left")
    for ln in order.lines:
        lines.add_row(ln.title, ln.variant, str(ln.quantity), Money(ln.unit_minor, order.currency).format(),
                      Money(ln.total_minor, order.currency).format())
    lines.add_row("[bold]total[/]", "", str(order.item_count), "", f"[bold]{order.total.format()}[/]")
    console.print(lines)
    for t in order.history:
        console.print(f"  {t.at:%Y-%m-%d %H:%M:%S}  → {t.state}  {t.reason}")
    if order.flags:
        console.print(f"[yellow]flags: {', '.join(order.flags)}[/]")
