"""Retrieval at scale: Retriever.search latency over 1k, 10k and 100k products.

Builds synthetic catalogs deterministically from word lists (names, types, tags, variants,
descriptions of a general store), embeds them once with the shipped local model, then times
``Retriever.search`` end to end (query parsing, lexical index, query embedding, vector search,
fusion) with the numpy vector index against the naive pure-Python one, side by side, plus
the time and memory (RSS growth) to build each index.

Run: python bench/bench_retrieval.py [--quick] [--queries N]. ``--quick`` does 1k and 10k
only. Writes bench/results/retrieval.json. A full run takes a few minutes on two cores; the
naive index at 100k is timed on fewer queries, since each takes seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from chatpay.adapters.local_embedder import LocalEmbedder
from chatpay.adapters.memory import PythonVectorIndex
from chatpay.adapters.vector_numpy import NumpyVectorIndex
from chatpay.core.catalog import Catalog, PolicyDoc, Product, Variant
from chatpay.core.money import Money
from chatpay.core.ports import Embeddings, VectorIndexFactory
from chatpay.core.retrieval import Retriever, product_text

RESULTS = Path(__file__).resolve().parent / "results" / "retrieval.json"
SIZES = (1_000, 10_000, 100_000)
# Queries timed per size for the naive index (each scans every vector in Python).
NAIVE_QUERIES = {1_000: 200, 10_000: 40, 100_000: 6}

# --------------------------------------------------------------------------- synthetic catalogs

CATEGORIES: dict[str, tuple[list[str], list[str]]] = {
    # type: (nouns, tags)
    "Kitchen": (["kettle", "teapot", "skillet", "saucepan", "whisk", "colander", "grater", "knife", "cutting board",
                 "mixing bowl", "rolling pin", "spatula", "ladle", "peeler", "toaster", "blender"],
                ["kitchen", "cooking", "baking", "dishwasher safe", "cookware"]),
    "Coffee": (["coffee beans", "espresso blend", "cold brew", "moka pot", "french press", "grinder", "dripper",
                "paper filters", "milk frother"], ["coffee", "brewing", "espresso", "roast"]),
    "Tea": (["green tea", "black tea", "herbal tea", "oolong", "matcha", "chai", "rooibos", "tea bags",
             "infuser"], ["tea", "loose leaf", "caffeine free", "infusion"]),
    "Outdoor": (["tent", "sleeping bag", "backpack", "head torch", "camping stove", "water bottle", "hammock",
                 "trekking poles", "rain jacket", "compass"], ["outdoor", "camping", "hiking", "waterproof"]),
    "Cycling": (["helmet", "bike light", "d-lock", "inner tube", "floor pump", "saddle", "bottle cage",
                 "pannier", "chain lube", "multi-tool"], ["cycling", "bike", "commuting", "road"]),
    "Stationery": (["notebook", "fountain pen", "gel pens", "sketchbook", "planner", "washi tape", "pencil case",
                    "highlighters", "envelopes"], ["stationery", "writing", "office", "paper"]),
    "Home": (["candle", "cushion", "throw blanket", "vase", "picture frame", "doormat", "lamp", "clock",
              "storage basket", "mirror"], ["home", "decor", "living room", "gift"]),
    "Garden": (["watering can", "pruning shears", "trowel", "seed tray", "garden gloves", "hose", "planter",
                "bird feeder", "compost bin"], ["garden", "plants", "outdoor", "growing"]),
    "Bath": (["shampoo", "soap bar", "bath salts", "towel", "body lotion", "loofah", "hand cream", "lip balm"],
             ["bath", "skincare", "natural", "vegan"]),
    "Toys": (["puzzle", "building blocks", "teddy bear", "kite", "board game", "yo-yo", "crayons", "rocking horse"],
             ["toys", "kids", "games", "gift"]),
    "Pets": (["dog bed", "cat toy", "dog lead", "pet bowl", "chew toy", "cat scratcher", "dog treats"],
             ["pets", "dog", "cat", "animal"]),
    "Audio": (["headphones", "speaker", "earbuds", "radio", "turntable", "microphone"],
              ["audio", "music", "wireless", "bluetooth"]),
}
ADJECTIVES = ["classic", "compact", "deluxe", "everyday", "premium", "travel", "mini", "pro", "essential",
              "vintage", "modern", "organic", "handmade", "lightweight", "heavy-duty", "eco", "smart", "soft"]
MATERIALS = ["bamboo", "steel", "cotton", "linen", "ceramic", "glass", "oak", "walnut", "copper", "wool",
             "leather", "recycled plastic", "stoneware", "cast iron", "silicone", "enamel", "brass", "cork"]
COLOURS = ["black", "white", "navy", "sage", "terracotta", "mustard", "charcoal", "coral", "forest green",
           "sky blue", "sand", "burgundy", "lilac", "rust"]
SIZES_ = ["small", "medium", "large", "xl", "250g", "500g", "1kg", "350ml", "1l", "set of 2", "pack of 10"]
USES = ["everyday use", "long trips", "small kitchens", "beginners", "gifting", "rainy days", "busy mornings",
        "quiet evenings", "weekends away", "the office", "kids", "picnics", "cold winters", "hot summers"]
FEATURES = ["easy to clean", "built to last", "fully recyclable", "made in Portugal", "hand finished",
            "designed to nest", "with a lifetime guarantee", "tested by our team", "plastic free",
            "machine washable", "foldable for storage", "refillable"]
SYLLABLES = ["ka", "lo", "mi", "ra", "ven", "tor", "sil", "ba", "no", "dri", "el", "fa", "qu", "zen", "mar",
             "ost", "lin", "cor", "pe", "ux", "an", "vo", "ti", "sen"]


def _brand(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def synthetic_catalog(size: int, seed: int = 7) -> Catalog:
    """``size`` products that read like a general store's, the same for the same seed."""
    rng = random.Random(seed)
    brands = [_brand(rng) for _ in range(max(50, size // 40))]
    kinds = list(CATEGORIES.items())
    products: list[Product] = []
    for i in range(size):
        ptype, (nouns, tags) = kinds[i % len(kinds)]
        noun = rng.choice(nouns)
        brand = rng.choice(brands)
        adjective, material, colour = rng.choice(ADJECTIVES), rng.choice(MATERIALS), rng.choice(COLOURS)
        name = f"{brand} {adjective.title()} {material.title()} {noun.title()}"
        use, feature = rng.choice(USES), rng.choice(FEATURES)
        description = (
            f"A {adjective} {noun} in {material} from {brand}, made for {use}. "
            f"{feature.capitalize()}, in {colour} or {rng.choice(COLOURS)}. "
            f"Model {brand[:2].upper()}-{rng.randint(100, 999)}; pairs well with our "
            f"{rng.choice(rng.choice(kinds)[1][0])}."
        )
        variant_titles = rng.sample(SIZES_, rng.randint(1, 3)) if rng.random() < 0.6 else ["Default Title"]
        price = Money(rng.randint(300, 25_000), "EUR")
        variants = tuple(
            Variant(f"v{i}-{j}", title, price, available=rng.random() > 0.08) for j, title in enumerate(variant_titles)
        )
        product_tags = (*rng.sample(tags, 2), colour, material)
        products.append(Product(f"p{i}-{noun.replace(' ', '-')}", name, description, variants, ptype, product_tags))
    policies = (
        PolicyDoc("shipping", "Shipping", "We ship to the EU in 2-5 working days; free over 50 euros.",
                  ("shipping", "ship", "delivery", "postage")),
        PolicyDoc("returns", "Returns", "Return unused items within 30 days for a refund.",
                  ("return", "refund", "send back")),
        PolicyDoc("payment", "Payment", "We take cards, PayPal and bank transfer.", ("pay", "payment", "card")),
    )
    return Catalog.of(f"bench-{size}", "EUR", products, policies=policies, version=1)


def queries(catalog: Catalog, n: int, seed: int = 11) -> list[str]:
    """A mix a shop hears: names, kinds with typos, descriptions, store-wide and policy questions."""
    rng = random.Random(seed)
    products = list(catalog)
    out: list[str] = []
    for i in range(n):
        p = rng.choice(products)
        words = p.name.split()
        kind = i % 6
        if kind == 0:
            out.append(p.name)
        elif kind == 1:
            w = rng.choice(words[1:]).lower()
            j = rng.randrange(1, max(2, len(w) - 1))
            out.append(f"do you have a {w[:j] + w[j + 1:]} {words[-1].lower()}?")  # a dropped letter
        elif kind == 2:
            out.append(f"something {rng.choice(p.tags)} for {rng.choice(USES)}")
        elif kind == 3:
            out.append(f"{rng.choice(COLOURS)} {p.product_type.lower()} {words[-1].lower()} in {rng.choice(MATERIALS)}")
        elif kind == 4:
            out.append(rng.choice(["do you sell laptops", "a car battery", "fresh salmon", "what do you sell?",
                                   "do you ship to Spain?", "gift ideas for my dad"]))
        else:
            out.append(" ".join(words[1:3]).lower())
    return out


# --------------------------------------------------------------------------- measuring


class CachedEmbedder:
    """The local model, embedding each product text once for both indexes."""

    def __init__(self, inner: LocalEmbedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self._cache: dict[str, Any] = {}

    async def warm(self, texts: Sequence[str], batch: int = 4096) -> None:
        for start in range(0, len(texts), batch):
            chunk = [t for t in texts[start : start + batch] if t not in self._cache]
            if chunk:
                vectors = (await self.inner.embed(chunk)).vectors
                self._cache.update(zip(chunk, vectors, strict=True))

    async def embed(self, texts: Sequence[str]) -> Embeddings:
        if len(texts) > 1 and all(t in self._cache for t in texts):
            return Embeddings([self._cache[t] for t in texts], model=self.name)
        return await self.inner.embed(texts)


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux), 0 where unknown."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError):
        return 0.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def measure(
    name: str, catalog: Catalog, embedder: CachedEmbedder, factory: VectorIndexFactory, texts: list[str],
    progress: Progress,
) -> dict[str, Any]:
    gc.collect()
    before = rss_mb()
    retriever = Retriever(embedder, factory)
    task = progress.add_task(f"  {len(catalog):>7,} {name}: indexing", total=len(texts) + 1)
    start = time.perf_counter()
    await retriever.prepare(catalog)
    build_s = time.perf_counter() - start
    memory_mb = rss_mb() - before
    progress.update(task, advance=1, description=f"  {len(catalog):>7,} {name}: searching")
    latencies: list[float] = []
    kinds: dict[str, int] = {}
    for text in texts:
        start = time.perf_counter()
        result = await retriever.search(catalog, text)
        latencies.append((time.perf_counter() - start) * 1000)
        kinds[result.kind] = kinds.get(result.kind, 0) + 1
        progress.advance(task)
    progress.remove_task(task)
    del retriever
    gc.collect()
    return {
        "build_s": round(build_s, 3), "memory_mb": round(memory_mb, 1), "queries": len(latencies),
        "median_ms": round(statistics.median(latencies), 3), "p95_ms": round(pct(latencies, 0.95), 3),
        "kinds": kinds,
    }


async def run(sizes: Sequence[int], n_queries: int, console: Console) -> list[dict[str, Any]]:
    embedder = CachedEmbedder(LocalEmbedder())
    rows: list[dict[str, Any]] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        overall = progress.add_task("catalogs", total=len(sizes))
        for size in sizes:
            step = progress.add_task(f"  {size:>7,} generating and embedding", total=2)
            catalog = synthetic_catalog(size)
            texts = [product_text(p) for p in catalog]
            progress.advance(step)
            start = time.perf_counter()
            await embedder.warm(texts)
            embed_s = time.perf_counter() - start
            progress.remove_task(step)
            asked = queries(catalog, n_queries)
            numpy_row = await measure("numpy", catalog, embedder, NumpyVectorIndex, asked, progress)
            naive_row = await measure("naive", catalog, embedder, PythonVectorIndex,
                                      asked[: min(n_queries, NAIVE_QUERIES.get(size, 20))], progress)
            rows.append({
                "products": size, "embed_s": round(embed_s, 2), "numpy": numpy_row, "naive": naive_row,
                "speedup_median": round(naive_row["median_ms"] / max(numpy_row["median_ms"], 1e-9), 1),
            })
            embedder._cache.clear()
            progress.advance(overall)
    return rows


def render(rows: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="Retriever.search with the numpy vector index (np) and the naive Python one (py)")
    for header in ("products", "embed s", "build s np / py", "memory MB np / py", "median ms np / py",
                   "p95 ms np / py", "py queries", "median ratio"):
        table.add_column(header, justify="right")
    for r in rows:
        n, p = r["numpy"], r["naive"]
        table.add_row(
            f"{r['products']:,}", f"{r['embed_s']:.1f}", f"{n['build_s']:.1f} / {p['build_s']:.1f}",
            f"{n['memory_mb']:.0f} / {p['memory_mb']:.0f}", f"{n['median_ms']:.1f} / {p['median_ms']:.0f}",
            f"{n['p95_ms']:.1f} / {p['p95_ms']:.0f}", str(p["queries"]), f"{r['speedup_median']:.0f}x",
        )
    console.print(table)
    console.print(f"{rows[0]['numpy']['queries'] if rows else 0} queries per size for np; build = lexical "
                  "index + vector index (the embeddings, computed once beforehand, are 'embed s'); "
                  "memory = growth of resident memory while building.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k and 10k products only")
    parser.add_argument("--queries", type=int, default=200, help="queries timed per size (numpy index)")
    args = parser.parse_args()
    console = Console(width=None if sys.stdout.isatty() else 130)
    sizes = SIZES[:2] if args.quick else SIZES
    started = time.perf_counter()
    rows = asyncio.run(run(sizes, args.queries, console))
    render(rows, console)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "benchmark": "retrieval", "quick": args.quick, "seconds": round(time.perf_counter() - started, 1),
        "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
        "embedder": "minilm-static (local)", "results": rows,
    }, indent=2) + "\n")
    console.print(f"wrote {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")


if __name__ == "__main__":
    main()
