"""``chatpay-tui``: the command line that starts the debugging UI (options, checks, exit codes)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from textual.logging import TextualHandler

from chatpay.bootstrap import build
from chatpay.config import load_settings
from chatpay.core.errors import ChatPayError, ConfigError
from chatpay_tui.app import ChatPayApp

NO_TERMINAL = ("chatpay-tui: needs a terminal (stdin and stdout must be a TTY); "
               "for piped use try `chatpay chat`")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="chatpay-tui",
        description="ChatPay's debugging UI: chat as a shopper and see each reply as Telegram shows it, "
                    "with the trace, costs and cart.",
        epilog="It needs a terminal (80x24 or larger); for piped use try `chatpay chat`. Settings come "
               "from the environment or .env: with no MONGODB_URI the data stays in the embedded store "
               "(CHATPAY_DATA_DIR), with no OPENAI_API_KEY the offline engine answers.",
    )
    p.add_argument("--business", metavar="ID",
                   help="the business id to talk to (default: BUSINESS_ID from the environment, else demo)")
    p.add_argument("--catalog", type=Path, metavar="FILE",
                   help="a catalog file (Shopify products.json or a ChatPay product list) to import for the "
                        "business at start (default: none; the business's stored catalog, or the bundled "
                        "demo store when it has none)")
    p.add_argument("--store", type=Path, metavar="FILE",
                   help="a store.json (store name, currency, policies) for the --catalog file, so policy "
                        "questions are answered from the first message (default: none)")
    p.add_argument("--currency", metavar="CUR",
                   help="the currency for a catalog file whose prices carry none, e.g. EUR (default: none; "
                        "the --store profile's currency when given)")
    return p


def has_terminal() -> bool:
    """Whether stdin and stdout are both a terminal (a full-screen UI cannot run otherwise)."""
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``chatpay-tui``. Returns 0, 2 for bad input or no terminal, 1 for a failure."""
    args = _parser().parse_args(argv)
    for option, path in (("--catalog", args.catalog), ("--store", args.store)):
        if path is not None and not path.is_file():
            print(f"chatpay-tui: {option} {path}: no such file", file=sys.stderr)
            return 2
    if args.store is not None and args.catalog is None:
        print("chatpay-tui: --store is the profile of a --catalog file; give --catalog too", file=sys.stderr)
        return 2
    if not has_terminal():
        print(NO_TERMINAL, file=sys.stderr)
        return 2
    try:
        settings = load_settings()
        if args.business:
            settings = settings.with_overrides(business_id=args.business)
        runtime = build(settings)
    except ConfigError as exc:
        print(f"chatpay-tui: {exc}", file=sys.stderr)
        return 2
    except ChatPayError as exc:
        print(f"chatpay-tui: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    currency = args.currency.upper() if args.currency else None
    # Logs go to the Textual devtools console (`textual console`), never over the screen.
    logging.basicConfig(level=logging.INFO, handlers=[TextualHandler()], force=True)
    ChatPayApp(runtime, catalog_file=args.catalog, store_file=args.store, currency=currency).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
