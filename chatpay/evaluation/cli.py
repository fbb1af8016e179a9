"""``chatpay eval SUITE --cases FILE``: one suite on one store, a table and a JSON summary.

Exit codes follow the CLI: 0 done (whatever the scores; the gate is
``python -m chatpay.evaluation.all``), 2 bad input (raised as ``InvalidInput`` and
reported by :func:`chatpay.cli.main`), 1 an unexpected failure such as a cassette miss.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from chatpay.config import load_settings
from chatpay.core.errors import InvalidInput
from chatpay.evaluation.cases import load_cases
from chatpay.evaluation.cassette import CassetteMiss
from chatpay.evaluation.harness import StoreSpec, cassette_path, choose_engine, evaluate, known_stores
from chatpay.evaluation.tables import make_console, print_summary, progress


def store_spec(catalog: Path | None, store: Path | None, currency: str | None) -> StoreSpec:
    """The store to evaluate: the given catalog (and profile), or the bundled demo store."""
    if catalog is None:
        demo = known_stores()["demo"]
        return StoreSpec("demo", demo.catalog, store or demo.profile, currency)
    for path in (catalog, store):
        if path is not None and not path.is_file():
            raise InvalidInput("no such file", source=str(path))
    return StoreSpec("eval", catalog, store, currency)


def write_json(path: Path, data: Any) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write: {exc.strerror}", source=str(path)) from exc


def run_eval(args: argparse.Namespace) -> int:
    """Run ``args.suite`` on ``args.cases``; print tables; write ``args.json_out`` if given.

    Raises:
        InvalidInput: unreadable or invalid cases (naming file, line and field), a missing
            catalog, or a case naming a product the store lacks.
    """
    cases = load_cases(args.suite, args.cases)
    spec = store_spec(args.catalog, getattr(args, "store", None), args.currency)
    settings = load_settings()
    engine = choose_engine(settings, cassette_path(args.cases, args.suite), offline=bool(args.offline))
    console = make_console()
    try:
        with progress(make_console(stderr=True)) as bars:
            task = bars.add_task(f"{args.suite} on {spec.name}", total=len(cases))
            summary = asyncio.run(
                evaluate(spec, args.suite, cases, settings, engine, source=str(args.cases),
                         tick=lambda: bars.advance(task))
            )
    except CassetteMiss as exc:
        print(f"chatpay: {exc}", file=sys.stderr)
        return 1
    print_summary(console, summary)
    if args.json_out is not None:
        write_json(args.json_out, summary)
        console.print(f"summary written to {args.json_out}", style="dim")
    return 0
