"""``chatpay business list|show``: what a deployment serves, as its workers and webhook see it.

Reads ``CHATPAY_BUSINESSES`` (or the one-business variables) exactly as ``chatpay-worker`` and
``chatpay webhook`` do, so a mistake in the file shows here, with every problem named, before a
deployment starts. Secrets are never printed: a token shows as the name of its variable, whether
it is set and the bot's public numeric id.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from chatpay.businesses import load_businesses
from chatpay.config import Settings


def add_parser(sub: Any) -> None:
    """The ``business`` subcommands, on ``chatpay``'s subparsers."""
    business = sub.add_parser("business", help="list and show the businesses this deployment serves",
                              description="List and show the businesses this deployment serves (CHATPAY_BUSINESSES,\n"
                                          "else the one business of BUSINESS_ID). Secrets are masked.")
    bsub = business.add_subparsers(dest="business_command", required=True, parser_class=type(business))
    ls = bsub.add_parser("list", help="one line per business")
    ls.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    show = bsub.add_parser("show", help="every setting of one business, secrets masked")
    show.add_argument("id", help="the business's id (`chatpay business list` shows them)")
    show.add_argument("--json", action="store_true", help="print a JSON object instead of a table")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Print what was asked for; a bad file raises ConfigError (exit 2, one line)."""
    from rich.console import Console
    from rich.table import Table

    businesses = load_businesses(settings)
    source = str(businesses.source) if businesses.source else "BUSINESS_ID and TELEGRAM_* variables"
    console = Console()
    if args.business_command == "list":
        rows = [{k: b.masked()[k] for k in ("id", "name", "currency", "payments", "bot token", "budget")}
                for b in businesses.values()]
        if args.json:
            print(json.dumps(rows, ensure_ascii=False, indent=2))
            return 0
        table = Table(title=f"{len(rows)} business{'es' if len(rows) != 1 else ''} ({source})")
        for column in ("id", "name", "currency", "payments", "bot token", "budget"):
            table.add_column(column)
        for row in rows:
            table.add_row(*(str(row[c]) for c in ("id", "name", "currency", "payments", "bot token", "budget")))
        console.print(table)
        return 0
    if args.id not in businesses:
        raise businesses.unknown(args.id)
    shown = businesses[args.id].masked()
    if args.json:
        print(json.dumps(shown, ensure_ascii=False, indent=2))
        return 0
    table = Table(title=f"business {args.id} ({source})", show_header=False)
    table.add_column("setting", style="bold")
    table.add_column("value")
    for key, value in shown.items():
        table.add_row(key, str(value))
    console.print(table)
    return 0
