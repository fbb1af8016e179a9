"""The budget check's cost before each model call, at 10 and at 10 million usage records.

New check (``BudgetGuard.check``): one counter read. It is measured on the in-memory counter
and on the Redis counter (a private redis-server this script starts on a free port), each
first reconciled once from a usage store of N records of the business, so the counters hold
what those records add up to. The records are:

- 10, 10k, 100k: MongoDB documents in mongomock, in the usage collection's own shape;
- 10 M: a columnar array of 10 M usage rows in this process (time, tokens, cost in
  nano-dollars; about 200 MB), summed by one vectorised aggregate. mongomock holding 10 M
  documents would need tens of GB, and no MongoDB server is at hand; the check never reads
  the records, so what stands behind them changes only the reconciliation's cost.

Old check (``total_tokens`` aggregate per call, what ``UsageMeter.check_budget`` ran before):
measured on mongomock at 10, 10k and 100k records, and on the columnar array at 10 M (a
numpy sum: a lower bound for any database). Nothing is extrapolated.

Run: python bench/bench_budget.py [--quick]  (--quick: 1 M rows instead of 10 M, old check up
to 10k). Writes bench/results/budget.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from bson.decimal128 import Decimal128  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402

from chatpay.adapters.mongo import embedded_database, mongo_stores  # noqa: E402
from chatpay.adapters.redis import connect  # noqa: E402
from chatpay.adapters.redis.budget import MongoUsageTotals, RedisBudgetCounter  # noqa: E402
from chatpay.businesses import Budget  # noqa: E402
from chatpay.core.budget import (  # noqa: E402
    BudgetCapReached,
    BudgetGuard,
    InMemoryBudgetCounter,
    Periods,
    UsageTotals,
    usd_amount,
)
from tests.support.redis_server import RedisServer  # noqa: E402

BUSINESS = "acme"
NOW = datetime.now(UTC).replace(microsecond=0)
SPAN = timedelta(days=60)  # records spread over the last 60 days: part of them in this month and day
BUDGET = Budget(daily_tokens=10**15, monthly_tokens=10**15, daily_usd=Decimal(10**9), monthly_usd=Decimal(10**9))


class ColumnarUsage:
    """N usage rows of one business as numpy columns; ``usage_totals`` is one vectorised aggregate."""

    def __init__(self, n: int, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        end = int(NOW.timestamp())
        self.at = end - rng.integers(0, int(SPAN.total_seconds()), n, dtype=np.int64)
        self.tokens = rng.integers(50, 2000, n, dtype=np.int64)
        self.nanos = self.tokens * 150  # gpt-4o-mini input price: $0.15 per million = 150 nano-dollars/token

    @property
    def nbytes(self) -> int:
        return int(self.at.nbytes + self.tokens.nbytes + self.nanos.nbytes)

    async def usage_totals(self, business_id: str, periods: Periods) -> UsageTotals:
        month = (self.at >= int(periods.month_start.timestamp())) & (self.at < int(periods.month_end.timestamp()))
        day = month & (self.at >= int(periods.day_start.timestamp())) & (self.at < int(periods.day_end.timestamp()))
        return UsageTotals(int(self.tokens[day].sum()), int(self.tokens[month].sum()),
                           usd_amount(int(self.nanos[day].sum())), usd_amount(int(self.nanos[month].sum())))

    def total_tokens(self, business_id: str) -> int:
        """The old check's aggregate: every row of the business, every call."""
        return int(self.tokens.sum())


def mongo_usage(n: int) -> Any:
    """A mongomock database whose usage collection holds ``n`` records of the business."""
    db = embedded_database("bench_budget")
    mongo_stores(db)  # the indexes, as in production
    rng = np.random.default_rng(7)
    ages = rng.integers(0, int(SPAN.total_seconds()), n)
    tokens = rng.integers(50, 2000, n)
    batch = []
    for i in range(n):
        t = int(tokens[i])
        batch.append({"business_id": BUSINESS, "thread_id": f"t{i % 500}", "turn_id": f"u{i}", "agent": "enquiry",
                      "kind": "chat", "model": "gpt-4o-mini", "engine": "gpt-4o-mini", "prompt_tokens": t,
                      "completion_tokens": 0, "total_tokens": t, "cost_usd": Decimal128(Decimal(t * 150) / 10**9),
                      "latency_ms": 100.0, "at": NOW - timedelta(seconds=int(ages[i]))})
        if len(batch) == 10_000:
            db["usage"].insert_many(batch)
            batch = []
    if batch:
        db["usage"].insert_many(batch)
    return db


async def timed(call: Callable[[], Awaitable[Any]], runs: int, warmup: int = 10) -> list[float]:
    """Microseconds of each of ``runs`` awaits of ``call`` (after ``warmup`` unmeasured calls)."""
    for _ in range(warmup):
        await call()
    out = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        await call()
        out.append((time.perf_counter_ns() - start) / 1000.0)
    return out


def row(approach: str, store: str, records: int, samples: list[float], note: str = "") -> dict[str, Any]:
    ordered = sorted(samples)
    return {"approach": approach, "store": store, "records": records, "runs": len(samples),
            "median_us": statistics.median(samples), "p95_us": ordered[int(0.95 * (len(ordered) - 1))], "note": note}


async def run(args: argparse.Namespace, progress: Progress, redis_url: str) -> tuple[list[dict[str, Any]], list[dict]]:
    big = 1_000_000 if args.quick else 10_000_000
    mongo_sizes = [10, 10_000] if args.quick else [10, 10_000, 100_000]
    checks: list[dict[str, Any]] = []
    reconciles: list[dict[str, Any]] = []
    client = connect(redis_url)
    task = progress.add_task("budget bench", total=len(mongo_sizes) + 2)

    async def new_checks(store: str, records: int, usage: Any) -> None:
        for counter_name, counter in (("in-memory", InMemoryBudgetCounter()), ("redis", RedisBudgetCounter(client))):
            guard = BudgetGuard(BUDGET, counter)
            start = time.perf_counter()
            spent = await guard.reconcile(BUSINESS, usage, NOW)
            reconciles.append({"store": store, "records": records, "counter": counter_name,
                               "seconds": time.perf_counter() - start, "month_tokens": spent.month_tokens})
            samples = await timed(lambda g=guard: g.check(BUSINESS, NOW), args.runs)
            checks.append(row(f"new: BudgetGuard.check ({counter_name} counter)", store, records, samples,
                              f"counters reconciled from {records:,} records: {spent.month_tokens:,} tokens "
                              "this month"))

    for n in [10, big]:
        usage = ColumnarUsage(n)
        await new_checks("columnar array", n, usage)
        if n == big:
            async def old_check(u: ColumnarUsage = usage) -> int:
                return u.total_tokens(BUSINESS)

            samples = await timed(old_check, 20, warmup=1)
            checks.append(row("old: total_tokens aggregate per call", "columnar array", n, samples,
                              f"numpy sum over {usage.nbytes / 2**20:.0f} MB of columns; a lower bound for a database"))
        progress.advance(task)
    for n in mongo_sizes:
        db = mongo_usage(n)
        await new_checks("mongomock", n, MongoUsageTotals(db))
        log = mongo_stores(db).usage
        start = time.perf_counter()
        await log.total_tokens(BUSINESS)  # the warm-up, and how many runs fit in about 20 s
        runs = max(5, min(200, int(20 / (time.perf_counter() - start))))
        samples = await timed(lambda lg=log: lg.total_tokens(BUSINESS), runs, warmup=0)
        checks.append(row("old: total_tokens aggregate per call", "mongomock", n, samples))
        db.client.drop_database(db.name)
        progress.advance(task)
    # A spent budget costs the same single read: the check raises instead of returning.
    spent_guard = BudgetGuard(Budget(daily_tokens=1), RedisBudgetCounter(client))
    await spent_guard.record(BUSINESS, 5, Decimal(0), NOW)

    async def refused() -> None:
        try:
            await spent_guard.check(BUSINESS, NOW)
        except BudgetCapReached:
            return
        raise AssertionError("the spent budget was not refused")

    checks.append(row("new: BudgetGuard.check, budget spent (raises)", "redis", 0, await timed(refused, args.runs)))
    progress.advance(task)
    await client.aclose()
    return checks, reconciles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1 M rows instead of 10 M; old check up to 10k")
    parser.add_argument("--runs", type=int, default=2000, help="timed checks per configuration")
    args = parser.parse_args()
    logging.getLogger("chatpay").setLevel(logging.ERROR)  # the spent-budget row's notices are expected
    console = Console(width=max(Console().width, 120))
    with RedisServer() as server, Progress(console=console, transient=True) as progress:
        checks, reconciles = asyncio.run(run(args, progress, server.url))
    table = Table(title="Budget check before a model call: cost per check (µs)")
    for col in ("approach", "usage records behind it", "records", "median µs", "p95 µs", "runs"):
        table.add_column(col, justify="left" if col in ("approach", "usage records behind it") else "right")
    for r in sorted(checks, key=lambda r: (not r["approach"].startswith("new"), r["approach"], r["records"])):
        table.add_row(r["approach"], r["store"], f"{r['records']:,}", f"{r['median_us']:,.1f}",
                      f"{r['p95_us']:,.1f}", str(r["runs"]))
    console.print(table)
    rec = Table(title="Reconciliation (one aggregate; at start-up and periodically, never per call)")
    for col in ("usage records", "records", "counter", "seconds"):
        rec.add_column(col, justify="left" if col in ("usage records", "counter") else "right")
    for r in reconciles:
        rec.add_row(r["store"], f"{r['records']:,}", r["counter"], f"{r['seconds']:.4f}")
    console.print(rec)
    console.print("The new check reads one counter whatever the record count; the old one summed every "
                  f"record on every call. (cpus: {os.cpu_count()}, python {platform.python_version()})")
    out = ROOT / "bench" / "results" / "budget.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"checks": checks, "reconciliations": reconciles, "cpus": os.cpu_count(),
                               "python": platform.python_version(), "quick": args.quick}, indent=2) + "\n")
    console.print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
