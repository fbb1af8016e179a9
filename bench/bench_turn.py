"""Offline turn latency on the demo store: median and p95 per kind of turn.

Run: python bench/bench_turn.py [--quick]. Writes bench/results/turn.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from chatpay.adapters.memory import in_memory_stores
from chatpay.bootstrap import build
from chatpay.config import Settings

TURNS = {
    "enquiry": ["do you have a light roast?", "something to help me sleep", "do you sell shampoo?",
                "how much is shipping to spain?", "what do you sell?"],
    "cart_add": ["add 2 of the ethiopian", "add the french press", "one more"],
    "cart_view": ["what's in my cart?"],
    "chitchat": ["hi there", "thanks!"],
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def run(repeats: int, *, embedded: bool, nlu: str = "legacy") -> dict[str, dict[str, float]]:
    settings = Settings(nlu=nlu)
    runtime = build(settings) if embedded else build(settings, stores=in_memory_stores())
    await runtime.start()
    timings: dict[str, list[float]] = {k: [] for k in TURNS}
    total = repeats * sum(len(v) for v in TURNS.values())
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("offline turns", total=total)
        for r in range(repeats):
            for kind, texts in TURNS.items():
                for text in texts:
                    turn = runtime.turn(text, thread_id=f"bench-{r}")
                    start = time.perf_counter()
                    await runtime.service.handle(turn)
                    timings[kind].append((time.perf_counter() - start) * 1000)
                    progress.advance(task)
    return {k: {"median_ms": statistics.median(v), "p95_ms": pct(v, 0.95), "n": len(v)} for k, v in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = 10 if args.quick else 40
    # Side by side, on one machine in one run: the embedded default (mongomock) and in-memory twins.
    results = {"mongomock": asyncio.run(run(repeats, embedded=True)),
               "in-memory": asyncio.run(run(repeats, embedded=False))}
    table = Table(title="Offline turn latency, demo store (median / p95 ms)")
    table.add_column("turn")
    for name in results:
        table.add_column(f"{name} median", justify="right")
        table.add_column(f"{name} p95", justify="right")
    for kind in TURNS:
        row = [kind]
        for r in results.values():
            row += [f"{r[kind]['median_ms']:.2f}", f"{r[kind]['p95_ms']:.2f}"]
        table.add_row(*row)
    Console().print(table)
    out = Path("bench/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "turn.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
