"""``python -m chatpay.evaluation.all``: every suite on every store, a report, and the gate.

What ``nox -s evals`` runs. For each store (the demo store and the second shop) and each
suite with a cases file under ``evals/cases/<store>/``, it runs the suite on a fresh
embedded store, writes ``<results>/<store>/<suite>.json``, appends the headline scores
to ``<results>/history.jsonl``, writes ``report.md`` and ``report.html``, prints rich
tables, and checks the gate against the floors and ``evals/baseline.json``.

Exit codes: 0 the gate passed (or the baseline was updated and every floor holds);
1 a score failed the gate, or a cassette lacked a response; 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from chatpay.config import load_settings
from chatpay.core.classifier import IntentClassifier
from chatpay.core.errors import ChatPayError, ConfigError, InvalidInput
from chatpay.evaluation import gate, report
from chatpay.evaluation.cases import SUITES, load_cases
from chatpay.evaluation.cassette import CassetteMiss
from chatpay.evaluation.harness import (
    EVALS,
    REPO,
    Backend,
    StoreSpec,
    cassette_path,
    choose_engine,
    evaluate,
    known_stores,
    locked_test_stores,
    shop_splits,
)
from chatpay.evaluation.pooled import TARGETS, TEST_TURN_TARGET, pool, pooled_table
from chatpay.evaluation.tables import make_console, print_summary, progress, scores_table

DEFAULT_RESULTS = EVALS / "results"
DEFAULT_BASELINE = EVALS / "baseline.json"


async def run_all(
    stores: Sequence[StoreSpec],
    suites: Sequence[str] = SUITES,
    *,
    offline: bool = False,
    classifier: IntentClassifier | None = None,
    backend: Backend = "mongo",
    console: Console | None = None,
    nlu: str | None = None,
) -> list[dict[str, Any]]:
    """Run every suite that has cases on every store; returns the summaries in order.

    ``nlu`` picks the language engine (``legacy`` or ``fitted``) over ``CHATPAY_NLU``.

    Raises:
        InvalidInput: a cases file is invalid.
        CassetteMiss: a replayed run asked for a response its cassette lacks.
    """
    settings = load_settings()
    if nlu is not None:
        settings = settings.with_overrides(nlu=nlu)
    plan = [(spec, suite, path) for spec in stores for suite in suites if (path := spec.cases(suite)) is not None]
    loaded = [(spec, suite, path, load_cases(suite, path)) for spec, suite, path in plan]  # fail fast on bad cases
    summaries: list[dict[str, Any]] = []
    with progress(console or make_console(stderr=True)) as bars:
        tasks = [bars.add_task(f"{spec.name} {suite}", total=len(cases)) for spec, suite, _, cases in loaded]
        for task, (spec, suite, path, cases) in zip(tasks, loaded, strict=False):
            engine = choose_engine(settings, cassette_path(path, suite), offline=offline)
            summaries.append(await evaluate(
                spec, suite, cases, settings, engine, source=str(path), classifier=classifier, backend=backend,
                tick=lambda task=task: bars.advance(task),
            ))
    return summaries


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def read_history(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a torn line from an interrupted run: skip it, keep the rest
    return out


def write_results(folder: Path, summaries: Sequence[dict[str, Any]], at: str, commit: str | None,
                  failures: Sequence[gate.GateFailure]) -> list[dict[str, Any]]:
    """Write per-run JSON, the run's overview and a history line; returns the whole history."""
    for s in summaries:
        path = folder / str(s.get("store", "eval")) / f"{s['suite']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(s, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    scores = gate.headline(summaries)
    engines = sorted({s["engine"] for s in summaries})
    overview = {"at": at, "commit": commit, "engines": engines, "passed": not failures, "scores": scores,
                "gate": [g.message for g in failures],
                "usage": {k: sum(s[k] for s in summaries) for k in ("llm_calls", "prompt_tokens", "completion_tokens")}}
    (folder / "summary.json").write_text(json.dumps(overview, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    history_file = folder / "history.jsonl"
    with history_file.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"at": at, "commit": commit, "engines": engines, "scores": scores}) + "\n")
    return read_history(history_file)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m chatpay.evaluation.all", description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="folder for JSON results and the report")
    p.add_argument("--baseline", type=Path, default=DEFAULT_BASELINE)
    p.add_argument("--update-baseline", action="store_true", help="write this run's scores as the new baseline")
    p.add_argument("--offline", action="store_true", help="force the offline engine even with a key or cassettes")
    p.add_argument("--store", action="append", choices=sorted(known_stores()), help="only these stores")
    p.add_argument("--suite", action="append", choices=SUITES, help="only these suites")
    p.add_argument("--backend", choices=("mongo", "memory"), default="mongo",
                   help="embedded mongomock through the Mongo adapter (default) or the in-memory twins")
    p.add_argument("--brief", action="store_true", help="print only the score tables, not per-intent detail")
    p.add_argument("--nlu", choices=("legacy", "fitted"), help="the language engine (default: CHATPAY_NLU, else legacy)")
    p.add_argument("--locked-test", action="store_true",
                   help="score only the locked test stores, once, at the end (no gate, no baseline; results "
                        "under <results>/locked-test/)")
    return p


def print_pooled(console: Console, summaries: Sequence[dict[str, Any]], stores: Sequence[str], title: str,
                 *, turn_target: float = TARGETS["turn accuracy"]) -> None:
    """The figures pooled over ``stores``, when the run holds at least two of them."""
    if len({s.get("store") for s in summaries} & set(stores)) >= 2:
        console.print(pooled_table(pool(summaries, stores), title, turn_target=turn_target))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = make_console()
    if args.locked_test and (args.update_baseline or args.store):
        print("evals: --locked-test scores the locked stores as they are; it takes no --store and "
              "writes no baseline", file=sys.stderr)
        return 2
    if args.locked_test:
        specs = list(locked_test_stores().values())
    else:
        specs = [spec for name, spec in known_stores().items() if not args.store or name in args.store]
    try:
        summaries = asyncio.run(run_all(specs, args.suite or SUITES, offline=args.offline, backend=args.backend,
                                        nlu=args.nlu))
        baseline = gate.load_baseline(args.baseline)
    except (InvalidInput, ConfigError) as exc:
        print(f"evals: {exc}", file=sys.stderr)
        return 2
    except CassetteMiss as exc:
        print(f"evals: {exc}", file=sys.stderr)
        return 1
    except ChatPayError as exc:
        print(f"evals: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for suite in SUITES:
        mine = [s for s in summaries if s["suite"] == suite]
        if mine:
            console.print(scores_table(mine))
    if not args.brief:
        for s in summaries:
            print_summary(console, s)
    splits = shop_splits()
    if args.locked_test:
        engine = summaries[0]["engine"] if summaries else ""
        print_pooled(console, summaries, splits["test"], f"Locked test stores, pooled ({engine})",
                     turn_target=TEST_TURN_TARGET)
        history = write_results(args.results / "locked-test", summaries, datetime.now(UTC).isoformat(timespec="seconds"),
                                git_commit(), [])
        console.print(f"results: {args.results / 'locked-test'} (not gated: a locked store is scored once)",
                      style="dim")
        return 0
    print_pooled(console, summaries, splits["pooled"],
                 f"Development shops written blind, pooled ({summaries[0]['engine'] if summaries else ''})")
    if args.update_baseline:
        gate.write_baseline(args.baseline, gate.make_baseline(summaries, baseline))
        console.print(f"baseline written to {args.baseline}", style="bold")
        baseline = gate.load_baseline(args.baseline)
    failures = gate.check(summaries, baseline)
    if args.update_baseline:
        failures = [f for f in failures if f.kind == "floor"]
    at = datetime.now(UTC).isoformat(timespec="seconds")
    commit = git_commit()
    history = write_results(args.results, summaries, at, commit, failures)
    md, page = report.write(report.Report(summaries, failures, baseline, history, at, commit), args.results)
    console.print(f"report: {page} and {md}", style="dim")
    if failures:
        console.print(f"[bold red]eval gate failed[/] ({len(failures)} scores):")
        for f in failures:
            console.print(f.message, markup=False, highlight=False)
        return 1
    console.print("[bold green]eval gate passed[/]: every score at or above its floor and baseline")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
