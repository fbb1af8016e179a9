"""``chatpay report [--business ID] [--since DATE] [--json]``: what the bot did and what it cost.

Per business, and within it per agent and model: turns, model calls, tokens, cost, latency,
errors and the sales funnel, read from the records ChatPay already keeps (nothing is counted
on the side, so the report always agrees with them):

- ``usage`` (one document per model call, and one per offline turn: :mod:`chatpay.core.metering`)
  gives turns, model calls, tokens, cost and latency. Costs are summed by the server as
  Decimal128 (34 significant digits: exact for any real total of per-call costs); the rare
  cost stored as a string (more digits than Decimal128 keeps,
  :func:`chatpay.adapters.mongo.logs.encode_cost`) is added in Python, exactly too. A call
  whose model has no known price has no cost (``None``, never a made-up zero): it adds
  nothing and is counted in ``cost_unknown_calls``. Every turn leaves at least one record
  (its model calls, or one ``offline`` record), so a business's turns are its distinct turn
  ids there.
- ``events`` gives the funnel: ``EnquiryAnswered`` (enquiry), ``CartItemAdded`` (cart),
  ``OrderCreated`` (checkout) and ``OrderPaid`` (paid). Each stage is counted in distinct
  threads (shoppers) and as a count: turns for enquiry and cart, orders for checkout and paid
  (an order's event recorded twice, by a turn run again after a crash, counts once).
- ``TurnCompleted`` events (one per turn, recorded with the turn's other writes by
  :class:`~chatpay.core.service.TurnService`) give each turn's latency (``data.ms``, from the
  turn's start to its save) and its error (``data.error``, set when the turn failed and the
  shopper got an apology).

Everything is summed by aggregation pipelines (``$match``, ``$group``, ``$sum``), which
mongomock runs too; the reads of single values are each model call's ``latency_ms`` and each
turn's ``ms`` in the window, for the percentiles (nearest rank), computed in Python.

Turns recorded before ``TurnCompleted`` existed have no latency and no error record: they count
in ``turns`` (from usage) but not in ``turn_latency_ms.turns``, which says how many did.

``--since`` keeps records at or after a moment (``at`` of usage records and events): ``YYYY-MM-DD`` is midnight UTC, an ISO datetime without a zone is UTC.

JSON document (``--json``); fields may be added, none is renamed or dropped without a new
``schema``::

    {
      "schema": "chatpay.report/1",
      "since": "2026-01-01T00:00:00+00:00" | null,   # the --since moment, UTC
      "business": "acme" | null,                    # the --business filter
      "currency": "USD",                            # of every cost_usd
      "businesses": [                               # sorted by business_id
        {
          "business_id": "acme",
          "turns": 12,                # distinct turn ids in usage
          "model_calls": 5,           # usage records that are not offline turns (chat and embedding calls)
          "prompt_tokens": 900,
          "completion_tokens": 300,
          "cost_usd": "0.00032",      # exact decimal string: the sum of the usage records' costs
          "cost_unknown_calls": 0,    # records whose model has no known price (not in cost_usd)
          "turn_latency_ms": {"p50": 41.2, "p95": 180.0, "turns": 12},   # from TurnCompleted events
          "errors": 0,                # turns whose TurnCompleted carries an error
          "funnel": {
            "enquiry":  {"threads": 3, "count": 4},   # count: turns
            "cart":     {"threads": 2, "count": 2},   # count: turns
            "checkout": {"threads": 1, "count": 1},   # count: orders
            "paid":     {"threads": 1, "count": 1}    # count: orders
          },
          "agents": [                 # sorted by (agent, model)
            {
              "agent": "enquiry",     # "turn": the router and offline turns, outside any agent
              "model": "gpt-4o-mini", # "offline": turns that called no model
              "turns": 4, "model_calls": 5, "prompt_tokens": 900, "completion_tokens": 300,
              "cost_usd": "0.00032", "cost_unknown_calls": 0,
              "latency_ms": {"p50": 812.0 | null, "p95": 1430.5 | null, "records": 5}
            }
          ]
        }
      ]
    }

``latency_ms`` of a row is that of its model calls (``records``: how many); the ``offline`` row,
which has none, has ``null`` percentiles. Latencies are rounded to 0.01 ms; every other figure
is exact.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any, TextIO

from bson.decimal128 import Decimal128

from chatpay.adapters.mongo._base import CATALOGS, EVENTS, USAGE
from chatpay.core.errors import InvalidInput

SCHEMA = "chatpay.report/1"
CURRENCY = "USD"
EXACT_DIGITS = 100  # Decimal precision of the sums: Decimal128 keeps 34 digits, a string-stored cost more
TABLE_QUANTUM = Decimal("0.000001")  # the table's costs: to the millionth of a dollar
TABLE_WIDTH = 120  # the least width of the tables when the output is not a terminal (a file, a pipe)
OFFLINE = "offline"  # the kind (and model) of the usage record an offline turn leaves

STAGES = ("enquiry", "cart", "checkout", "paid")
STAGE_EVENTS: dict[str, str] = {
    "EnquiryAnswered": "enquiry",
    "CartItemAdded": "cart",
    "OrderCreated": "checkout",
    "OrderPaid": "paid",
}
ORDER_EVENTS = ("OrderCreated", "OrderPaid")  # counted in orders; the other stages in turns
STAGE_UNITS = {"enquiry": "turns", "cart": "turns", "checkout": "orders", "paid": "orders"}

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_SINCE_EXAMPLE = "YYYY-MM-DD or an ISO datetime such as 2026-01-31T09:30:00+01:00"


# --------------------------------------------------------------------------- the figures


@dataclass(frozen=True)
class Latency:
    """Nearest-rank percentiles of some latencies, and how many there were."""

    p50: float | None
    p95: float | None
    samples: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Latency:
        ordered = sorted(values)
        return cls(percentile(ordered, 50), percentile(ordered, 95), len(ordered))


@dataclass(frozen=True)
class Stage:
    """One funnel stage: distinct threads, and turns or orders (``STAGE_UNITS``)."""

    threads: int = 0
    count: int = 0


@dataclass
class Row:
    """One agent and model of a business."""

    agent: str
    model: str
    turns: int = 0
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = field(default_factory=Decimal)
    cost_unknown_calls: int = 0
    latency: Latency = Latency(None, None, 0)


@dataclass
class BusinessReport:
    """Everything the report says about one business."""

    business_id: str
    turns: int = 0
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = field(default_factory=Decimal)
    cost_unknown_calls: int = 0
    turn_latency: Latency = Latency(None, None, 0)
    errors: int = 0
    funnel: dict[str, Stage] = field(default_factory=lambda: {s: Stage() for s in STAGES})
    rows: list[Row] = field(default_factory=list)


@dataclass(frozen=True)
class Report:
    """The report of every selected business, sorted by id."""

    since: datetime | None
    business: str | None
    businesses: list[BusinessReport]

    @property
    def cost_usd(self) -> Decimal:
        """Every selected business's cost, exactly."""
        with localcontext() as exact:
            exact.prec = EXACT_DIGITS
            return sum((b.cost_usd for b in self.businesses), Decimal(0))


def percentile(ordered: list[float], q: float) -> float | None:
    """The nearest-rank ``q``-th percentile of ascending ``ordered`` (a value it holds); None when empty."""
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return round(ordered[rank - 1], 2)


# --------------------------------------------------------------------------- --since


def parse_since(text: str) -> datetime:
    """``--since``'s value as an aware UTC datetime: ``YYYY-MM-DD`` (midnight UTC) or ISO.

    Raises:
        InvalidInput: naming ``--since`` and the value, on one line.
    """
    value = text.strip()
    try:
        if _DAY.fullmatch(value):
            return datetime.combine(date.fromisoformat(value), time(0), tzinfo=UTC)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"not a date or ISO datetime: {text!r} (expected {_SINCE_EXAMPLE})",
                           source="--since") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _since_argument(text: str) -> datetime:
    """argparse's ``type`` for ``--since``: argparse prefixes ``argument --since:`` itself."""
    try:
        return parse_since(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(exc.reason) from None


# --------------------------------------------------------------------------- reading the records


def build_report(database: Any, *, business: str | None = None, since: datetime | None = None) -> Report:
    """Read the report from ``database`` (PyMongo or mongomock), for one business or all of them.

    Raises:
        InvalidInput: ``business`` has no records and no catalog (a typo would otherwise
            read as a business that did nothing).
    """
    with localcontext() as exact:
        exact.prec = EXACT_DIGITS  # sums of costs must not round (Decimal's default keeps 28 digits)
        return _build_report(database, business, since)


def _build_report(database: Any, business: str | None, since: datetime | None) -> Report:
    if business is not None:
        _check_business(database, business)
    window: dict[str, Any] = {}
    if business is not None:
        window["business_id"] = business
    found: dict[str, BusinessReport] = {}

    def of(business_id: str) -> BusinessReport:
        if business_id not in found:
            found[business_id] = BusinessReport(business_id)
        return found[business_id]

    if business is not None:
        of(business)
    usage = {**window, **({"at": {"$gte": since}} if since is not None else {})}
    _read_usage(database[USAGE], usage, of)
    _read_funnel(database[EVENTS], {**usage, "name": {"$in": list(STAGE_EVENTS)}}, of)
    _read_turns(database[EVENTS], {**usage, "name": "TurnCompleted"}, of)
    return Report(since, business, [found[b] for b in sorted(found)])


def _check_business(database: Any, business: str) -> None:
    query = {"business_id": business}
    if any(database[name].find_one(query, {"_id": 1}) is not None for name in (USAGE, EVENTS, CATALOGS)):
        return
    known = sorted(set(database[CATALOGS].distinct("business_id")) | set(database[USAGE].distinct("business_id")))
    raise InvalidInput(f"no records of business {business!r} (businesses there are: {', '.join(known) or 'none'})",
                       source="--business")


def _read_usage(col: Any, match: dict[str, Any], of: Callable[[str], BusinessReport]) -> None:
    rows: dict[tuple[str, str, str], Row] = {}

    def row(b: str, agent: str, model: str) -> Row:
        key = (b, agent, model)
        if key not in rows:
            rows[key] = Row(agent, model)
        return rows[key]

    # Per (business, agent, model): model calls, tokens, exact cost and distinct turns (the
    # first $group leaves one document per turn, the second counts them). An offline turn's
    # record is a turn, not a model call.
    per_turn = {"b": "$business_id", "agent": "$agent", "model": "$model", "turn": "$turn_id"}
    for doc in col.aggregate([
        {"$match": match},
        {"$group": {"_id": per_turn, "calls": {"$sum": {"$cond": [{"$eq": ["$kind", OFFLINE]}, 0, 1]}},
                    "prompt": {"$sum": "$prompt_tokens"}, "completion": {"$sum": "$completion_tokens"},
                    "cost": {"$sum": "$cost_usd"}}},
        {"$group": {"_id": {k: f"$_id.{k}" for k in ("b", "agent", "model")}, "turns": {"$sum": 1},
                    "calls": {"$sum": "$calls"}, "prompt": {"$sum": "$prompt"},
                    "completion": {"$sum": "$completion"}, "cost": {"$sum": "$cost"}}},
    ]):
        key = doc["_id"]
        r = row(key["b"], key["agent"], key["model"])
        r.turns = int(doc["turns"])
        r.model_calls = int(doc["calls"])
        r.prompt_tokens = int(doc["prompt"])
        r.completion_tokens = int(doc["completion"])
        r.cost_usd += _decimal(doc["cost"])
    # Costs the server could not sum: stored as strings (too many digits for Decimal128), rare.
    for doc in col.find({**match, "cost_usd": {"$type": "string"}},
                        {"_id": 0, "business_id": 1, "agent": 1, "model": 1, "cost_usd": 1}):
        row(doc["business_id"], doc["agent"], doc["model"]).cost_usd += Decimal(doc["cost_usd"])
    # Calls whose model has no known price: no cost, counted.
    for doc in col.aggregate([
        {"$match": {**match, "cost_usd": None}},
        {"$group": {"_id": {"b": "$business_id", "agent": "$agent", "model": "$model"}, "n": {"$sum": 1}}},
    ]):
        row(doc["_id"]["b"], doc["_id"]["agent"], doc["_id"]["model"]).cost_unknown_calls += int(doc["n"])
    # Model calls' latencies, for the percentiles: the only per-record read, a float and its row's
    # key. Offline turns' records are left out: a turn's own time is in turn_latency_ms (TurnCompleted).
    latencies: dict[tuple[str, str, str], list[float]] = {}
    fields = {"_id": 0, "business_id": 1, "agent": 1, "model": 1, "latency_ms": 1}
    for doc in col.find({**match, "kind": {"$ne": OFFLINE}}, fields):
        if isinstance(doc.get("latency_ms"), int | float):
            latencies.setdefault((doc["business_id"], doc["agent"], doc["model"]), []).append(float(doc["latency_ms"]))
    for (b, _, _), r in sorted(rows.items()):
        r.latency = Latency.of(latencies.get((b, r.agent, r.model), []))
        report = of(b)
        report.rows.append(r)
        report.model_calls += r.model_calls
        report.prompt_tokens += r.prompt_tokens
        report.completion_tokens += r.completion_tokens
        report.cost_usd += r.cost_usd
        report.cost_unknown_calls += r.cost_unknown_calls
    # A turn may call several agents and models: the business's turns are its distinct turn ids.
    for doc in col.aggregate([
        {"$match": match},
        {"$group": {"_id": {"b": "$business_id", "turn": "$turn_id"}}},
        {"$group": {"_id": "$_id.b", "turns": {"$sum": 1}}},
    ]):
        of(doc["_id"]).turns = int(doc["turns"])


def _read_turns(col: Any, match: dict[str, Any], of: Callable[[str], BusinessReport]) -> None:
    """Turn latency percentiles and errors per business, from ``TurnCompleted`` events."""
    for doc in col.aggregate([{"$match": {**match, "data.error": {"$nin": [None, ""]}}},
                              {"$group": {"_id": "$business_id", "n": {"$sum": 1}}}]):
        of(doc["_id"]).errors = int(doc["n"])
    latencies: dict[str, list[float]] = {}
    for doc in col.find(match, {"_id": 0, "business_id": 1, "data.ms": 1}):
        ms = (doc.get("data") or {}).get("ms")
        if isinstance(ms, int | float):
            latencies.setdefault(doc["business_id"], []).append(float(ms))
    for business_id, values in latencies.items():
        of(business_id).turn_latency = Latency.of(values)


def _read_funnel(col: Any, match: dict[str, Any], of: Callable[[str], BusinessReport]) -> None:
    # One document per (stage, thread, turn or order), then per (stage, thread), then per stage.
    key = {"$cond": [{"$in": ["$name", list(ORDER_EVENTS)]}, "$data.order", "$turn_id"]}
    for doc in col.aggregate([
        {"$match": match},
        {"$group": {"_id": {"b": "$business_id", "name": "$name", "thread": "$thread_id", "key": key}}},
        {"$group": {"_id": {"b": "$_id.b", "name": "$_id.name", "thread": "$_id.thread"}, "keys": {"$sum": 1}}},
        {"$group": {"_id": {"b": "$_id.b", "name": "$_id.name"}, "threads": {"$sum": 1}, "count": {"$sum": "$keys"}}},
    ]):
        stage = STAGE_EVENTS[doc["_id"]["name"]]
        of(doc["_id"]["b"]).funnel[stage] = Stage(int(doc["threads"]), int(doc["count"]))


def _decimal(value: Any) -> Decimal:
    """A server sum as a Decimal: Decimal128 when any cost was summed, else the integer 0."""
    if isinstance(value, Decimal128):
        return value.to_decimal()
    if value is None:
        return Decimal(0)
    return Decimal(str(value))


# --------------------------------------------------------------------------- output


def report_as_json(report: Report) -> dict[str, Any]:
    """The documented JSON document (see the module's docstring)."""
    return {
        "schema": SCHEMA,
        "since": report.since.isoformat() if report.since is not None else None,
        "business": report.business,
        "currency": CURRENCY,
        "businesses": [_business_json(b) for b in report.businesses],
    }


def _business_json(b: BusinessReport) -> dict[str, Any]:
    return {
        "business_id": b.business_id,
        "turns": b.turns,
        "model_calls": b.model_calls,
        "prompt_tokens": b.prompt_tokens,
        "completion_tokens": b.completion_tokens,
        "cost_usd": decimal_str(b.cost_usd),
        "cost_unknown_calls": b.cost_unknown_calls,
        "turn_latency_ms": {"p50": b.turn_latency.p50, "p95": b.turn_latency.p95, "turns": b.turn_latency.samples},
        "errors": b.errors,
        "funnel": {s: {"threads": b.funnel[s].threads, "count": b.funnel[s].count} for s in STAGES},
        "agents": [
            {
                "agent": r.agent, "model": r.model, "turns": r.turns, "model_calls": r.model_calls,
                "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
                "cost_usd": decimal_str(r.cost_usd), "cost_unknown_calls": r.cost_unknown_calls,
                "latency_ms": {"p50": r.latency.p50, "p95": r.latency.p95, "records": r.latency.samples},
            }
            for r in b.rows
        ],
    }


def decimal_str(value: Decimal) -> str:
    """``value`` exactly, in plain notation without trailing zeros (``0.00000105``, never ``1.05E-6``).

    Done on the text, not with ``Decimal.normalize``, which rounds to the context's precision.
    """
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def usd(value: Decimal) -> str:
    """Money for the table: ``$1,234.50``, ``$0.00032``; past 6 decimals rounded and marked ``≈$0.083603``.

    A call costs fractions of a cent, so cents alone would show nothing; the JSON has every digit.
    """
    shown = value.quantize(TABLE_QUANTUM, rounding=ROUND_HALF_EVEN)
    text = decimal_str(shown)
    whole, _, fraction = text.partition(".")
    sign = "-" if whole.startswith("-") else ""
    whole = f"{int(whole.lstrip('-') or 0):,}"
    return f"{'' if shown == value else '≈'}{sign}${whole}.{fraction.ljust(2, '0')}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def render(report: Report, out: TextIO) -> None:
    """The report as rich tables on ``out``: per business, usage by agent and model, then the funnel."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out)
    if not console.is_terminal:  # a file or a pipe: 80 columns would cut the model names
        console.width = max(console.width, TABLE_WIDTH)
    since = f"since {report.since:%Y-%m-%d %H:%M} UTC" if report.since is not None else "all records"
    if not report.businesses:
        console.print(f"no usage or events recorded ({since})")
        return
    for b in report.businesses:
        usage = Table(title=f"{b.business_id}: {b.turns} turn{'s' if b.turns != 1 else ''}, {since}",
                      caption=_caption(b), title_justify="left", caption_justify="left")
        for col in ("agent", "model", "turns", "calls", "prompt", "completion", f"cost {CURRENCY}", "p50 ms",
                    "p95 ms"):
            text = col in ("agent", "model")
            usage.add_column(col, justify="left" if text else "right", no_wrap=not text)
        for r in b.rows:
            usage.add_row(r.agent, r.model, f"{r.turns:,}", f"{r.model_calls:,}", f"{r.prompt_tokens:,}",
                          f"{r.completion_tokens:,}", usd(r.cost_usd) + (" *" if r.cost_unknown_calls else ""),
                          _ms(r.latency.p50), _ms(r.latency.p95))
        usage.add_row("[bold]total[/]", "", f"[bold]{b.turns:,}[/]", f"{b.model_calls:,}", f"{b.prompt_tokens:,}",
                      f"{b.completion_tokens:,}",
                      f"[bold]{usd(b.cost_usd)}[/]" + (" *" if b.cost_unknown_calls else ""), _ms(b.turn_latency.p50),
                      _ms(b.turn_latency.p95), end_section=True)
        console.print(usage)
        funnel = Table(title=f"{b.business_id}: funnel", title_justify="left")
        for col in ("stage", "threads", "count", "counted in"):
            funnel.add_column(col, justify="right" if col in ("threads", "count") else "left")
        for s in STAGES:
            funnel.add_row(s, f"{b.funnel[s].threads:,}", f"{b.funnel[s].count:,}", STAGE_UNITS[s])
        console.print(funnel)


def _caption(b: BusinessReport) -> str:
    parts = [f"errors: {b.errors:,}"]
    if b.cost_unknown_calls:
        parts.append(f"*: calls whose model has no known price, not in the cost: {b.cost_unknown_calls:,}")
    if any(usd(c).startswith("≈") for c in [b.cost_usd, *(r.cost_usd for r in b.rows)]):
        parts.append("≈: rounded to $0.000001 (--json gives every digit)")
    parts.append(f"p50/p95: each model call's latency; the total row: whole turns ({b.turn_latency.samples:,} timed)")
    return "\n".join(parts)


# --------------------------------------------------------------------------- the command


def add_parser(sub: Any) -> None:
    """The ``report`` subcommand, on ``chatpay``'s subparsers."""
    rp = sub.add_parser(
        "report", help="turns, tokens, cost, latency, errors and the sales funnel per business",
        description="Turns, model calls, tokens, cost (exact, in USD), model-call latency, errors and the\n"
                    "funnel enquiry -> cart -> checkout -> paid, per business and per agent and model,\n"
                    "read from the usage and event records (MONGODB_URI, else the data directory).",
        epilog="Turn latency and errors come from each turn's TurnCompleted event; model-call\n"
               "latency from the usage records. Costs are exact sums of the usage records.")
    rp.add_argument("--business", help="only this business (default: every business with records)")
    rp.add_argument("--since", type=_since_argument, metavar="DATE",
                    help=f"only records from DATE on: {_SINCE_EXAMPLE}; a date is midnight UTC, a datetime "
                         "without a zone is UTC (default: every record)")
    rp.add_argument("--json", action="store_true",
                    help="print one JSON document (schema in chatpay/report.py) instead of tables (default: tables)")


def run(args: argparse.Namespace, database: Any, *, out: TextIO | None = None) -> int:
    """Print the report of ``database`` (a PyMongo or mongomock database) as ``args`` ask; the exit code.

    Raises:
        InvalidInput: a bad ``--since`` or an unknown ``--business``, or no database to read.
    """
    if database is None:
        raise InvalidInput("this deployment's stores are not a MongoDB database; there are no records to report on")
    since = args.since
    if isinstance(since, str):  # a Namespace built without the parser
        since = parse_since(since)
    report = build_report(database, business=args.business, since=since)
    stream = out if out is not None else sys.stdout
    if args.json:
        stream.write(json.dumps(report_as_json(report), indent=1) + "\n")
    else:
        render(report, stream)
    return 0

