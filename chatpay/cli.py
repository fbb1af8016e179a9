"""The ``chatpay`` command: chat, catalog import, eval, webhook, orders.

Exit codes: 0 done; 2 bad input (a one-line message naming the file, item and field);
1 an unexpected failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from chatpay.core.errors import ChatPayError, ConfigError, InvalidInput, MoneyError
from chatpay.core.orders import OrderError

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's default exit code is 2 as well; keep one line
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="chatpay", description="ChatPay: a chat storefront engine.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    chat = sub.add_parser("chat", help="chat on stdin/stdout")
    chat.add_argument("--business")
    chat.add_argument("--catalog", type=Path)
    chat.add_argument("--currency")
    chat.add_argument("--store", type=Path, help="a store.json (name, currency, policies) for --catalog")
    chat.add_argument("--thread", default="cli")
    chat.add_argument("--json", action="store_true", help="print one JSON object per reply")

    cat = sub.add_parser("catalog", help="catalog commands")
    cat_sub = cat.add_subparsers(dest="catalog_command", required=True, parser_class=_Parser)
    imp = cat_sub.add_parser("import", help="import a catalog file into the store")
    imp.add_argument("file", type=Path)
    imp.add_argument("--business", required=True)
    imp.add_argument("--currency")
    imp.add_argument("--store", type=Path, help="a store.json with the store's name and policies")

    ev = sub.add_parser("eval", help="run one eval suite")
    ev.add_argument("suite", choices=["routing", "retrieval", "conversations"])
    ev.add_argument("--cases", type=Path, required=True)
    ev.add_argument("--catalog", type=Path)
    ev.add_argument("--currency")
    ev.add_argument("--store", type=Path)
    ev.add_argument("--json", type=Path, dest="json_out")
    ev.add_argument("--offline", action="store_true", help="force the offline engine")

    wh = sub.add_parser("webhook", help="serve the Telegram webhook endpoint")
    wh.add_argument("--host", default="127.0.0.1")
    wh.add_argument("--port", type=int, default=8080)

    sw = sub.add_parser("set-webhook", help="register the webhook URL and secret with Telegram")
    sw.add_argument("url")

    from chatpay.orders_cli import add_parser as add_orders

    add_orders(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "chat":
            return asyncio.run(_chat(args))
        if args.command == "catalog":
            return asyncio.run(_catalog_import(args))
        if args.command == "eval":
            from chatpay.evaluation.cli import run_eval

            return run_eval(args)
        if args.command == "webhook":
            from chatpay.webhook import serve

            return serve(host=args.host, port=args.port)
        if args.command == "orders":
            return asyncio.run(_orders(args))
        if args.command == "set-webhook":
            from chatpay.webhook import set_webhook

            return set_webhook(args.url)
    except (InvalidInput, ConfigError, MoneyError, OrderError) as exc:
        print(f"chatpay: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except FileNotFoundError as exc:
        print(f"chatpay: {exc.filename}: no such file", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ChatPayError as exc:
        print(f"chatpay: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return EXIT_FAIL
    return EXIT_FAIL


def _build(business: str | None) -> Any:
    """The configured runtime (its Mongo stores create their indexes as they are made)."""
    from chatpay.bootstrap import build
    from chatpay.config import load_settings

    settings = load_settings()
    if business:
        settings = settings.with_overrides(business_id=business)
    return build(settings)


async def _runtime(business: str | None, catalog: Path | None, currency: str | None, store: Path | None = None) -> Any:
    runtime = _build(business)
    if catalog is not None:
        await runtime.load_catalog_file(catalog, currency=currency, store_file=store)
    else:
        await runtime.start()
    return runtime


async def _chat(args: argparse.Namespace) -> int:
    from chatpay.core import serialize
    from chatpay.core.presenter import to_plain

    runtime = await _runtime(args.business, args.catalog, args.currency, args.store)
    buttons: list[str] = []  # the last reply's buttons' data: "#2" presses the second
    interactive = sys.stdin.isatty() and not args.json
    if interactive:
        info = runtime.describe()
        print(f"ChatPay — business {info['business']}, engine {info['engine']}. Ctrl-D to quit.")
    loop = asyncio.get_running_loop()
    while True:
        if interactive:
            print("> ", end="", flush=True)
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        text = line.rstrip("\n")
        if not text.strip():
            continue
        pressed = _pressed(text, buttons)
        if pressed is not None:
            turn = runtime.turn("", thread_id=args.thread, callback_data=pressed)
        else:
            turn = runtime.turn(text, thread_id=args.thread)
        result = await runtime.service.handle(turn)
        reply = result.reply
        buttons = [b.data for row in reply.buttons for b in row if b.data]
        buttons += [b.data for c in reply.cards for b in c.buttons if b.data]
        if args.json:
            print(json.dumps(serialize.result(result), ensure_ascii=False), flush=True)
            continue
        print(to_plain(reply.text))
        for c in reply.cards:
            print(f"  • {c.title} — {c.price.format()}{'' if c.available else ' (out of stock)'}")
        labels = [b.label for row in reply.buttons for b in row if b.data]
        labels += [f"{b.label} ({c.title[:30]})" for c in reply.cards for b in c.buttons if b.data]
        if labels:
            print("  " + "  ".join(f"[#{i}] {label}" for i, label in enumerate(labels, 1)))
        print(flush=True)
    return EXIT_OK


def _pressed(text: str, buttons: list[str]) -> str | None:
    """ "#2" presses the last reply's second button; anything else is a message."""
    if text.startswith("#") and text[1:].strip().isdigit():
        i = int(text[1:].strip())
        if 1 <= i <= len(buttons):
            return buttons[i - 1]
    return None


async def _orders(args: argparse.Namespace) -> int:
    from chatpay.orders_cli import run

    return await run(args, _build(None))


async def _catalog_import(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    runtime = _build(args.business)
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]importing[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True,
                  disable=not console.is_terminal) as progress:
        task = progress.add_task(args.file.name, total=None)

        def tick(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        catalog = await runtime.load_catalog_file(
            args.file, business_id=args.business, currency=args.currency, store_file=args.store, progress=tick
        )
    variants = sum(len(p.variants) for p in catalog)
    print(
        f"imported {len(catalog)} products ({variants} variants) into business {catalog.business_id} "
        f"in {catalog.currency}, catalog version {catalog.version}"
    )
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
