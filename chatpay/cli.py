"""The ``chatpay`` command: chat, catalog import, eval, webhook, orders.

Exit codes: 0 done; 2 bad input (a one-line message naming the file, item and field);
1 an unexpected failure; 130 interrupted (Ctrl-C); 141 standard output closed early
(``chatpay ... | head``), quietly, as a process killed by SIGPIPE.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from chatpay.core.errors import ChatPayError, ConfigError, InvalidInput, MoneyError
from chatpay.core.orders import OrderError

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for `... | head`


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """argparse's help with each option's default, and descriptions and epilogs kept as written.

    The default is appended as ``(default: X)`` unless the help already says what it is, or
    there is none worth printing (``None``, or ``False`` for a flag): then the help says in
    words what happens without the option.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "%(default)" in text or "default" in text.lower() or action.default in (None, False):
            return text
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:  # argparse's default exit code is 2 as well; keep one line
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def version() -> str:
    """The installed distribution's version (``unknown`` when running from an uninstalled tree)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("chatpay")
    except PackageNotFoundError:
        return "unknown"


def port_number(text: str) -> int:
    """An argparse ``type`` for a TCP port to listen on: a whole number from 1 to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (1-65535)")
    return value


def _epilog() -> str:
    from chatpay.datadir import ENV, data_dir

    return (
        "Settings come from the environment, or from a .env file in the current\n"
        "directory (OPENAI_API_KEY, MONGODB_URI, REDIS_URL, TELEGRAM_BOT_TOKEN, ...).\n"
        "Without MONGODB_URI, data is kept in\n"
        f"  {data_dir()}\n"
        f"(set {ENV} to move it).\n"
        "\n"
        "Exit codes: 0 done, 1 failure, 2 bad input or configuration, 130 interrupted.\n"
        "`chatpay COMMAND --help` describes each command."
    )


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="chatpay", description="ChatPay: a chat storefront engine.", epilog=_epilog())
    p.add_argument("--version", action="version", version=f"chatpay {version()}",
                   help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND",
                           title="commands")

    business = "the business (store) to serve (default: BUSINESS_ID, else demo)"
    chat = sub.add_parser("chat", help="chat with the store on stdin/stdout",
                          description="Chat with a store in the terminal, one message per line. Type #N to\n"
                                      "press the Nth button of the last reply; Ctrl-D or Ctrl-C quits.")
    chat.add_argument("--business", help=business)
    chat.add_argument("--catalog", type=Path,
                      help="import this catalog file first (default: the business's catalog in the store, "
                           "or the bundled demo store)")
    chat.add_argument("--currency", help="the currency of --catalog's prices, e.g. EUR (default: the "
                                         "catalog's or --store's currency)")
    chat.add_argument("--store", type=Path, help="a store.json (name, currency, policies) for --catalog "
                                                 "(default: none)")
    chat.add_argument("--thread", default="cli",
                      help="the conversation (shopper) to continue; its cart is kept")
    chat.add_argument("--json", action="store_true", help="print one JSON object per reply")

    cat = sub.add_parser("catalog", help="catalog commands", description="Catalog commands.")
    cat_sub = cat.add_subparsers(dest="catalog_command", required=True, parser_class=_Parser,
                                 metavar="COMMAND", title="commands")
    imp = cat_sub.add_parser(
        "import", help="import a catalog file into the store",
        description="Import a catalog file (a Shopify products.json export or ChatPay's\n"
                    "product list) into the store, replacing the business's catalog.")
    imp.add_argument("file", type=Path, help="the catalog file (JSON)")
    imp.add_argument("--business", required=True, help="the business (store) whose catalog it is (required)")
    imp.add_argument("--currency", help="the prices' currency, e.g. USD (default: the file's or --store's "
                                        "currency; a Shopify export has none, so give one)")
    imp.add_argument("--store", type=Path, help="a store.json with the store's name, currency and policies "
                                                "(default: none)")

    ev = sub.add_parser("eval", help="run one eval suite",
                        description="Run one eval suite on one store; print tables and a JSON summary.")
    ev.add_argument("suite", choices=["routing", "retrieval", "conversations"], help="the suite to run")
    ev.add_argument("--cases", type=Path, required=True, help="the suite's cases, a JSONL file (required)")
    ev.add_argument("--catalog", type=Path, help="the store's catalog file (default: the bundled demo store)")
    ev.add_argument("--currency", help="the currency of --catalog's prices (default: the catalog's own)")
    ev.add_argument("--store", type=Path, help="a store.json for --catalog (default: the demo store's, "
                                               "without --catalog; else none)")
    ev.add_argument("--json", type=Path, dest="json_out", metavar="FILE",
                    help="also write the summary as JSON to FILE (default: not written)")
    ev.add_argument("--offline", action="store_true",
                    help="force the offline engine (default: the OpenAI model with OPENAI_API_KEY, else the "
                         "cases' recorded cassette, else offline)")

    wh = sub.add_parser("webhook", help="serve the Telegram webhook endpoint",
                        description="Serve the endpoint Telegram posts updates to; each update is queued in\n"
                                    "Redis for chatpay-worker, which answers the shopper.",
                        epilog="Needs REDIS_URL (or REDIS_HOST; the queues chatpay-worker reads) and either\n"
                               "CHATPAY_BUSINESSES (each business on POST /telegram/<id> with its own secret)\n"
                               "or TELEGRAM_WEBHOOK_SECRET and TELEGRAM_BOT_TOKEN (the one business of\n"
                               "BUSINESS_ID, on POST /telegram/webhook). Liveness on GET /healthz, readiness\n"
                               "on GET /readyz, Prometheus metrics on GET /metrics. Stops on SIGTERM or Ctrl-C.")
    wh.add_argument("--host", default="127.0.0.1", help="the address to listen on (0.0.0.0: every interface)")
    wh.add_argument("--port", type=port_number, default=8080, help="the TCP port to listen on, 1-65535")
    wh.add_argument("--max-connections", type=int, default=2000, metavar="N",
                    help="client connections held open at most; more are answered 503 and closed at once")
    wh.add_argument("--header-timeout", type=float, default=10.0, metavar="SECONDS",
                    help="seconds a connection has to send a request's headers before it is closed")
    wh.add_argument("--body-timeout", type=float, default=30.0, metavar="SECONDS",
                    help="seconds a request has to send its body before it is answered 408")

    sw = sub.add_parser("set-webhook", help="register the webhook URL and secret with Telegram",
                        description="Register the webhook URL and the business's webhook secret with Telegram\n"
                                    "(its bot token: TELEGRAM_BOT_TOKEN, or the variable CHATPAY_BUSINESSES names).")
    sw.add_argument("url", help="the public HTTPS URL of `chatpay webhook`, "
                                "e.g. https://shop.example/telegram/webhook")
    sw.add_argument("--business", metavar="ID",
                    help="the business whose bot token and secret to register (required when CHATPAY_BUSINESSES "
                         "lists several; default: the one business); a URL ending in / gets telegram/ID appended")

    from chatpay.business_cli import add_parser as add_business
    from chatpay.dlq_cli import add_parser as add_dlq
    from chatpay.orders_cli import add_parser as add_orders
    from chatpay.report import add_parser as add_report

    add_orders(sub)
    add_report(sub)
    add_business(sub)
    add_dlq(sub)
    _describe_commands(p)
    return p


def _describe_commands(parser: argparse.ArgumentParser) -> None:
    """Give each command without a description its one-line help, so its own --help says what it does."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._get_subactions()}
            for name, child in action.choices.items():
                summary = helps.get(name)
                if child.description is None and summary:
                    child.description = f"{summary[0].upper()}{summary[1:]}."
                _describe_commands(child)


def explain(exc: BaseException) -> tuple[int, str] | None:
    """The exit code and one line for a failure the user can fix from outside; None for a bug.

    Bad input and settings are 2; a store, queue or network that cannot be used is 1.
    """
    code, text = _explain(exc)
    return None if code is None else (code, " ".join(text.split()))


def _explain(exc: BaseException) -> tuple[int | None, str]:
    if isinstance(exc, (InvalidInput, ConfigError, MoneyError, OrderError)):
        return EXIT_BAD_INPUT, str(exc)
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return EXIT_BAD_INPUT, f"{exc.filename}: no such file"
    if isinstance(exc, ChatPayError):
        return EXIT_FAIL, f"{type(exc).__name__}: {exc}"
    mongo = sys.modules.get("pymongo.errors")
    if mongo is not None and isinstance(exc, mongo.InvalidURI):
        return EXIT_BAD_INPUT, f"MONGODB_URI: {exc}"
    if mongo is not None and isinstance(exc, mongo.ConfigurationError):
        return EXIT_BAD_INPUT, f"MongoDB: {exc}"
    if mongo is not None and isinstance(exc, mongo.PyMongoError):
        return EXIT_FAIL, f"MongoDB: {type(exc).__name__}: {exc}"
    redis = sys.modules.get("redis.exceptions")
    if redis is not None and isinstance(exc, redis.RedisError):
        return EXIT_FAIL, f"Redis: {type(exc).__name__}: {exc}"
    if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
        if exc.filename and exc.strerror:
            return EXIT_FAIL, f"{exc.filename}: {exc.strerror}"
        return EXIT_FAIL, str(exc) or type(exc).__name__
    return None, ""


def quiet_broken_pipe() -> int:
    """After standard output's reader went away: send what is left to devnull and say nothing.

    The Python documentation's recipe (``signal`` module, "Note on SIGPIPE"): Python flushes
    standard output on exit, which would fail again and print a warning.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor behind sys.stdout (a test's capture)
        pass
    return EXIT_BROKEN_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        if sys.stderr.isatty():
            print(file=sys.stderr)  # end the "^C" line, so the shell's prompt starts on its own
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return quiet_broken_pipe()


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "chat":
            return _chat(args)
        if args.command == "catalog":
            return asyncio.run(_catalog_import(args))
        if args.command == "eval":
            from chatpay.evaluation.cli import run_eval

            return run_eval(args)
        if args.command == "webhook":
            from chatpay.webhook import serve

            return serve(host=args.host, port=args.port, max_connections=args.max_connections,
                         header_timeout=args.header_timeout, body_timeout=args.body_timeout)
        if args.command == "orders":
            return asyncio.run(_orders(args))
        if args.command == "report":
            from chatpay.report import run as run_report

            return run_report(args, _build(None).database)
        if args.command == "business":
            from chatpay.business_cli import run as run_business
            from chatpay.config import load_settings

            return run_business(args, load_settings())
        if args.command == "dlq":
            from chatpay.config import load_settings
            from chatpay.dlq_cli import run as run_dlq

            return asyncio.run(run_dlq(args, load_settings()))
        if args.command == "set-webhook":
            from chatpay.webhook import set_webhook

            return set_webhook(args.url, business=args.business)
    except Exception as exc:
        explained = explain(exc)
        if explained is None:
            raise
        code, line = explained
        print(f"chatpay: {line}", file=sys.stderr)
        return code
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


def _chat(args: argparse.Namespace) -> int:
    """Read a line, answer it, repeat until end of input.

    Lines are read on the main thread between turns (not in a worker thread), so Ctrl-C at
    the prompt interrupts the read at once; during a turn, the runner cancels the turn.
    """
    from chatpay.core import serialize
    from chatpay.core.presenter import to_plain

    with asyncio.Runner() as runner:
        runtime = runner.run(_runtime(args.business, args.catalog, args.currency, args.store))
        buttons: list[str] = []  # the last reply's buttons' data: "#2" presses the second
        interactive = sys.stdin.isatty() and not args.json
        if interactive:
            info = runtime.describe()
            print(f"ChatPay — business {info['business']}, engine {info['engine']}. "
                  "Ctrl-D or Ctrl-C to quit.")
        while True:
            if interactive:
                print("> ", end="", flush=True)
            line = sys.stdin.readline()
            if not line:
                if interactive:
                    print()
                break
            text = line.rstrip("\n")
            if not text.strip():
                continue
            pressed = _pressed(text, buttons)
            if pressed is not None:
                turn = runtime.turn("", thread_id=args.thread, callback_data=pressed)
            else:
                turn = runtime.turn(text, thread_id=args.thread)
            result = runner.run(runtime.service.handle(turn))
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
