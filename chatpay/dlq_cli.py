"""``chatpay dlq list|show|requeue|purge``: the operator's view of each business's dead letters.

A dead letter is an update the workers gave up on: malformed, or a turn that failed three times
(an outage never dead-letters: it backs off and keeps the update). The list is bounded per
business (the newest :data:`~chatpay.adapters.redis.queue.MAX_DEAD` are kept). ``requeue`` puts
entries back on the business's queue, oldest first, once the cause is fixed; ``purge`` drops them.
Positions are those ``list`` shows, 0 being the newest. Message text is shown only by ``show``,
to the operator who asks for it; nothing here logs it.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from chatpay.businesses import load_businesses
from chatpay.config import Settings
from chatpay.core.errors import ConfigError, InvalidInput


def add_parser(sub: Any) -> None:
    """The ``dlq`` subcommands, on ``chatpay``'s subparsers."""
    dlq = sub.add_parser("dlq", help="list, show, requeue and purge dead-lettered updates",
                         description="Dead letters: updates the workers gave up on, per business, newest first.\n"
                                     "Needs REDIS_URL (the queue the webhook fills).")
    dsub = dlq.add_subparsers(dest="dlq_command", required=True, parser_class=type(dlq))
    business = "the business whose dead letters (default: BUSINESS_ID, or the only one in CHATPAY_BUSINESSES)"
    ls = dsub.add_parser("list", help="dead letters with their reason and age, newest first")
    ls.add_argument("--business", help=business)
    ls.add_argument("--limit", type=int, default=20, help="at most this many (default: 20)")
    ls.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    show = dsub.add_parser("show", help="one dead letter, with the raw update")
    show.add_argument("position", type=int, help="its position in `chatpay dlq list` (0 is the newest)")
    show.add_argument("--business", help=business)
    for name, verb in (("requeue", "put back on the queue, oldest first"), ("purge", "drop for good")):
        p = dsub.add_parser(name, help=f"dead letters to {verb}")
        p.add_argument("positions", type=int, nargs="*", help="positions from `chatpay dlq list` (default: none)")
        p.add_argument("--all", action="store_true", help="every dead letter of the business")
        p.add_argument("--business", help=business)


def _business(settings: Settings, asked: str | None) -> str:
    businesses = load_businesses(settings)
    if asked is not None:
        if asked not in businesses:
            raise businesses.unknown(asked)
        return asked
    if len(businesses) == 1:
        return next(iter(businesses))
    raise ConfigError("--business", f"this deployment serves {', '.join(businesses)}; say which")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    """Do what was asked; returns the exit code."""
    from rich.console import Console
    from rich.table import Table

    from chatpay.adapters.redis import RedisQueue, connect, queue_name

    if not settings.redis_url:
        raise ConfigError("REDIS_URL", "is not set; dead letters live in the Redis the workers use")
    business = _business(settings, getattr(args, "business", None))
    client = connect(settings.redis_url, cluster=settings.redis_cluster)
    try:
        queue = RedisQueue(client, queue_name(settings.queue, business), worker_id="chatpay-dlq")
        command = args.dlq_command
        if command == "list":
            if args.limit < 1:
                raise InvalidInput(f"--limit must be at least 1, got {args.limit}")
            entries = await queue.dead_letters(0, args.limit)
            total = await queue.dead_count()
            rows = [_row(i, entry) for i, entry in enumerate(entries)]
            if args.json:
                print(json.dumps(rows, ensure_ascii=False, indent=2))
                return 0
            table = Table(title=f"{total} dead letter{'s' if total != 1 else ''} of {business}"
                                + (f" (newest {len(rows)})" if total > len(rows) else ""))
            for column, justify in (("#", "right"), ("update", "right"), ("age", "right"), ("attempts", "right"),
                                    ("reason", "left")):
                table.add_column(column, justify=justify)  # type: ignore[arg-type]
            for row in rows:
                table.add_row(str(row["position"]), str(row["update_id"] or "?"), _age(row["age_seconds"]),
                              str(row["attempts"]), row["reason"])
            Console().print(table)
            return 0
        if command == "show":
            entries = await queue.dead_letters(args.position, 1) if args.position >= 0 else []
            if not entries:
                raise InvalidInput(f"no dead letter at position {args.position} of {business}; "
                                   "`chatpay dlq list` shows the positions")
            print(json.dumps(_row(args.position, entries[0], raw=True), ensure_ascii=False, indent=2))
            return 0
        positions = None if args.all else sorted(set(args.positions))
        if positions is not None and not positions:
            raise InvalidInput(f"say which dead letters to {command}: positions from `chatpay dlq list`, or --all")
        if positions is not None and any(p < 0 for p in positions):
            raise InvalidInput("positions are 0 or more, as `chatpay dlq list` shows them")
        done = await (queue.requeue_dead(positions) if command == "requeue" else queue.purge_dead(positions))
        what = "requeued onto the queue" if command == "requeue" else "purged"
        print(f"{done} dead letter{'s' if done != 1 else ''} of {business} {what}")
        return 0
    finally:
        await client.aclose()


def _row(position: int, entry: dict[str, Any], *, raw: bool = False) -> dict[str, Any]:
    update_id = None
    try:
        update_id = json.loads(entry.get("raw") or "{}").get("update_id")
    except (ValueError, AttributeError):
        pass
    row = {"position": position, "update_id": update_id, "reason": str(entry.get("reason", "")),
           "attempts": entry.get("attempts"), "worker": entry.get("worker"), "at": entry.get("at"),
           "age_seconds": entry.get("age", _age_of(entry.get("at")))}
    if raw:
        row["raw"] = entry.get("raw")
    return row


def _age_of(at: Any) -> float | None:
    try:
        return (datetime.now(UTC) - datetime.fromisoformat(str(at))).total_seconds()
    except ValueError:
        return None


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"
