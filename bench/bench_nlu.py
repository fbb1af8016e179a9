"""The fitted language engine beside the legacy one: search latency at scale, turn latency, start-up.

Side by side in one process, on the same synthetic catalogs (``bench_retrieval.synthetic_catalog``)
and queries:

* ``CatalogSearch.search`` (fitted: MiniLM int8 query embedding, BM25 over the lexicon, fitted
  ranker and abstainer) against ``Retriever.search`` (legacy: static model, hand-set fusion),
  median and p95 ms at 1k, 10k and 100k products, and the ratio. Product vectors for the fitted
  engine are the real encoder's at 1k; at 10k and 100k they are random unit vectors, since
  embedding 100k texts takes most of an hour on two cores and query latency depends only on the
  matrix's shape (the query itself is embedded for real every time).
* offline turns on the demo store through the whole service (median and p95 per kind of turn);
* process start: the seconds from a fresh interpreter to a runtime that has answered one turn,
  and its resident memory then.

Run: python bench/bench_nlu.py [--quick]. Writes bench/results/nlu.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_retrieval import pct, queries, synthetic_catalog  # noqa: E402

from chatpay.adapters.encoders.onnx_minilm import OnnxMiniLMEncoder  # noqa: E402
from chatpay.adapters.local_embedder import LocalEmbedder  # noqa: E402
from chatpay.adapters.vector_numpy import NumpyVectorIndex  # noqa: E402
from chatpay.core.retrieval import Retriever  # noqa: E402
from chatpay.nlu.search import CatalogSearch, product_text  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "nlu.json"
SIZES = (1_000, 10_000, 100_000)
REAL_VECTORS_UP_TO = 1_000
STARTUP = """
import asyncio, time, resource
t = time.perf_counter()
from chatpay.adapters.memory import in_memory_stores
from chatpay.bootstrap import build
from chatpay.config import Settings
rt = build(Settings(nlu="{nlu}"), stores=in_memory_stores())
async def go():
    await rt.start()
    await rt.service.handle(rt.turn("do you have a light roast?"))
asyncio.run(go())
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def summary(latencies: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(latencies), 3), "p95_ms": round(pct(latencies, 0.95), 3),
            "n": len(latencies)}


async def search_latency(sizes: tuple[int, ...], n_queries: int, console: Console) -> list[dict[str, Any]]:
    encoder = OnnxMiniLMEncoder()
    encoder.load()
    static = LocalEmbedder()
    rows = []
    rng = np.random.default_rng(7)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("search latency", total=len(sizes) * n_queries * 2)
        for size in sizes:
            catalog = synthetic_catalog(size)
            asked = queries(catalog, n_queries)
            fitted = CatalogSearch(encoder)
            if size <= REAL_VECTORS_UP_TO:
                vectors = encoder.encode([product_text(p) for p in catalog])
            else:
                vectors = rng.standard_normal((size, encoder.dim)).astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            fitted.cache.put(catalog.business_id, await fitted.build(catalog, vectors=vectors))
            legacy = Retriever(static, NumpyVectorIndex)
            await legacy.prepare(catalog)
            timings: dict[str, list[float]] = {"fitted": [], "legacy": []}
            for name, engine in (("fitted", fitted), ("legacy", legacy)):
                for text in asked:
                    start = time.perf_counter()
                    await engine.search(catalog, text)
                    timings[name].append((time.perf_counter() - start) * 1000)
                    progress.advance(task)
            f, lg = summary(timings["fitted"]), summary(timings["legacy"])
            rows.append({"products": size, "real_vectors": size <= REAL_VECTORS_UP_TO, "fitted": f, "legacy": lg,
                         "ratio_median": round(f["median_ms"] / max(lg["median_ms"], 1e-9), 2)})
    return rows


async def turn_latency(repeats: int) -> dict[str, dict[str, dict[str, float]]]:
    from bench_turn import run

    return {nlu: await run(repeats, embedded=False, nlu=nlu) for nlu in ("legacy", "fitted")}


def startup(runs: int) -> dict[str, dict[str, float]]:
    out = {}
    for nlu in ("legacy", "fitted"):
        seconds, memory = [], []
        for _ in range(runs):
            done = subprocess.run([sys.executable, "-c", STARTUP.format(nlu=nlu)], capture_output=True, text=True,
                                  check=True, env={**os.environ, "CHATPAY_NLU": nlu})
            s, mb = done.stdout.split()
            seconds.append(float(s))
            memory.append(float(mb))
        out[nlu] = {"median_s": round(statistics.median(seconds), 3), "max_rss_mb": round(statistics.median(memory))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k and 10k products, fewer repeats")
    args = parser.parse_args()
    console = Console(width=None if sys.stdout.isatty() else 130)
    sizes = SIZES[:2] if args.quick else SIZES
    search = asyncio.run(search_latency(sizes, 60 if args.quick else 200, console))
    turns = asyncio.run(turn_latency(5 if args.quick else 20))
    start = startup(2 if args.quick else 5)

    t1 = Table(title="search latency, fitted (MiniLM int8) vs legacy (static model), ms")
    for h in ("products", "vectors", "fitted median", "fitted p95", "legacy median", "legacy p95", "median ratio"):
        t1.add_column(h, justify="right")
    for r in search:
        t1.add_row(f"{r['products']:,}", "encoder" if r["real_vectors"] else "random", f"{r['fitted']['median_ms']:.1f}",
                   f"{r['fitted']['p95_ms']:.1f}", f"{r['legacy']['median_ms']:.1f}", f"{r['legacy']['p95_ms']:.1f}",
                   f"{r['ratio_median']:.2f}x")
    console.print(t1)
    t2 = Table(title="offline turn on the demo store, in-memory stores, ms (median / p95)")
    t2.add_column("turn")
    for nlu in turns:
        t2.add_column(nlu, justify="right")
    for kind in next(iter(turns.values())):
        t2.add_row(kind, *(f"{turns[n][kind]['median_ms']:.1f} / {turns[n][kind]['p95_ms']:.1f}" for n in turns))
    console.print(t2)
    t3 = Table(title="process start to first answered turn")
    for h in ("engine", "median s", "max RSS MB"):
        t3.add_column(h, justify="right")
    for nlu, v in start.items():
        t3.add_row(nlu, f"{v['median_s']:.2f}", f"{v['max_rss_mb']:.0f}")
    console.print(t3)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"benchmark": "nlu", "quick": args.quick, "cpus": os.cpu_count(),
                                   "search": search, "turns": turns, "startup": start}, indent=2) + "\n")
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
