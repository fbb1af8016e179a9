"""What an eval runs on: the store under test, the engine, and a fresh runtime per run.

Every suite run gets a new embedded store (mongomock by default, or the in-memory
twins) with the store's catalog loaded, so no case sees another run's carts or threads.
The engine is chosen once per run:

* ``offline``: forced, or no API key and no cassette for this store and suite;
* ``record``: an API key is set; answers come from the cassette when it holds them,
  from the real model otherwise, and are appended to the cassette;
* ``replay``: no API key but a cassette exists; answers come from it alone and a
  request it lacks stops the run (:class:`~chatpay.evaluation.cassette.CassetteMiss`);
* ``live``: an API key and no cassette path (``chatpay eval`` on files outside ``evals/``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from chatpay.config import Settings
from chatpay.core.classifier import IntentClassifier
from chatpay.core.ports import ChatModel
from chatpay.evaluation.cassette import CassetteChatModel

log = logging.getLogger(__name__)

EngineMode = Literal["offline", "record", "replay", "live"]
Backend = Literal["mongo", "memory"]
REPO = Path(__file__).resolve().parents[2]
EVALS = REPO / "evals"


@dataclass(frozen=True)
class StoreSpec:
    """A store under test: its catalog file, optional store profile, and where its cases live."""

    name: str
    catalog: Path
    profile: Path | None = None
    currency: str | None = None
    cases_dir: Path | None = None

    def cases(self, suite: str) -> Path | None:
        if self.cases_dir is None:
            return None
        path = self.cases_dir / f"{suite}.jsonl"
        return path if path.is_file() else None


SHOPS_FILE = EVALS / "shops.json"


def shop_splits() -> dict[str, list[str]]:
    """``evals/shops.json``: the development, locked test and reference stores by name, and the
    development stores whose figures are pooled (``pooled``; all of ``dev`` when not given)."""
    import json

    try:
        data = json.loads(SHOPS_FILE.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"dev": [], "test": [], "reference": ["demo"], "pooled": []}
    splits = {k: list(data.get(k, [])) for k in ("dev", "test", "reference")}
    splits["pooled"] = [s for s in data.get("pooled", splits["dev"]) if s in splits["dev"]]
    return splits


def locked_test_stores() -> dict[str, StoreSpec]:
    """The locked test stores: scored once, at the end, never fitted or tuned on."""
    return {name: store_spec(name) for name in shop_splits()["test"] if (EVALS / "cases" / name).is_dir()}


def store_spec(name: str) -> StoreSpec:
    """A bundled store by name: ``fixtures/<name>/`` (catalog and profile) and ``evals/cases/<name>/``."""
    from chatpay.resources import fixtures_dir

    base = fixtures_dir() / name
    catalog = next((base / f for f in ("products.json", "catalog.json") if (base / f).is_file()),
                   base / "catalog.json")
    profile = base / "store.json"
    return StoreSpec(name, catalog, profile if profile.is_file() else None, cases_dir=EVALS / "cases" / name)


def known_stores(*, include_test: bool = False) -> dict[str, StoreSpec]:
    """The reference and development stores (and the locked test stores when asked for)."""
    splits = shop_splits()
    names = splits["reference"] + splits["dev"] + (splits["test"] if include_test else [])
    return {name: store_spec(name) for name in names if (EVALS / "cases" / name).is_dir()}


def cassette_path(cases: Path, suite: str) -> Path | None:
    """Where the cassette for a cases file lives: ``<evals>/cassettes/<store>/<suite>.jsonl``.

    Only cases laid out as ``<evals>/cases/<store>/<suite>.jsonl`` have one.
    """
    cases = cases.resolve()
    if cases.parent.parent.name != "cases":
        return None
    return cases.parent.parent.parent / "cassettes" / cases.parent.name / f"{suite}.jsonl"


@dataclass
class EngineChoice:
    """The engine one run uses, and the cassette behind it if any."""

    mode: EngineMode
    llm: ChatModel | None = None
    cassette: CassetteChatModel | None = None

    @property
    def offline(self) -> bool:
        return self.mode == "offline"


def real_model(settings: Settings) -> ChatModel:
    """The configured OpenAI-compatible chat model (needs ``OPENAI_API_KEY``)."""
    from chatpay.adapters.openai_llm import OpenAIChatModel

    assert settings.openai_api_key
    return OpenAIChatModel(model=settings.model, api_key=settings.openai_api_key, base_url=settings.openai_base_url)


def choose_engine(
    settings: Settings, cassette: Path | None, *, offline: bool = False, model: ChatModel | None = None
) -> EngineChoice:
    """Pick the engine for one run (see the module docstring).

    Args:
        cassette: the run's cassette file, or None when the cases have no cassette home.
        offline: force the offline engine.
        model: the real model to record with (default: the configured OpenAI model).
    """
    has_key = bool(settings.openai_api_key) or model is not None
    if offline or (not has_key and (cassette is None or not cassette.is_file())):
        return EngineChoice("offline")
    if not has_key:
        assert cassette is not None
        tape = CassetteChatModel(cassette, mode="replay")
        return EngineChoice("replay", tape, tape)
    inner = model or real_model(settings)
    if cassette is None:
        return EngineChoice("live", inner)
    tape = CassetteChatModel(cassette, inner, mode="record")
    return EngineChoice("record", tape, tape)


def fresh_stores(backend: Backend = "mongo") -> Any:
    """A new, empty embedded store: mongomock through the real Mongo adapter, or the twins."""
    if backend == "memory":
        from chatpay.adapters.memory import in_memory_stores

        return in_memory_stores()
    from chatpay.adapters.mongo import embedded_database, mongo_stores

    return mongo_stores(embedded_database("chatpay_eval"))


async def prepare_runtime(
    spec: StoreSpec,
    settings: Settings,
    engine: EngineChoice,
    *,
    classifier: IntentClassifier | None = None,
    backend: Backend = "mongo",
) -> Any:
    """A runtime on a fresh embedded store with ``spec``'s catalog loaded and indexed."""
    from chatpay.adapters.memory import FixedClock
    from chatpay.bootstrap import build

    runtime = build(
        settings.with_overrides(business_id=spec.name),
        llm=engine.llm, offline=engine.offline, stores=fresh_stores(backend),
        clock=FixedClock(), classifier=classifier,
    )
    currency = spec.currency
    if currency is None and spec.profile is not None:
        from chatpay.catalog_files import load_store_profile

        currency = load_store_profile(spec.profile).currency  # a Shopify export carries none
    await runtime.load_catalog_file(spec.catalog, business_id=spec.name, currency=currency, store_file=spec.profile)
    return runtime


async def evaluate(
    spec: StoreSpec,
    suite: str,
    cases: list[Any],
    settings: Settings,
    engine: EngineChoice,
    *,
    source: str = "",
    classifier: IntentClassifier | None = None,
    backend: Backend = "mongo",
    tick: Any = None,
) -> dict[str, Any]:
    """Run one suite on a fresh runtime for ``spec``; the summary names the store and engine.

    Raises:
        InvalidInput: a case names a product or policy the store does not have.
        CassetteMiss: in replay mode, a request the cassette does not hold.
    """
    import time

    from chatpay.evaluation.cases import check_keys
    from chatpay.evaluation.suites import run_suite

    started = time.perf_counter()
    runtime = await prepare_runtime(spec, settings, engine, classifier=classifier, backend=backend)
    catalog = await runtime.catalog()
    known = {p.handle for p in catalog} | {f"policy:{p.id}" for p in catalog.policies}
    check_keys(cases, known, source=source or str(spec.cases(suite) or suite))
    load_seconds = time.perf_counter() - started
    summary = await run_suite(suite, cases, runtime, cassette=engine.cassette, tick=tick)
    if suite == "retrieval" and engine.offline and classifier is None:
        summary["through_router"] = await _retrieval_through_router(runtime, cases)
    summary["store"] = spec.name
    summary["engine_mode"] = engine.mode
    if settings.nlu != "legacy":  # gated against its own baseline: "offline+fitted" beside "offline"
        summary["engine"] = f"{summary['engine']}+{settings.nlu}"
    summary["load_seconds"] = round(load_seconds, 3)
    if engine.cassette is not None:
        tape = engine.cassette
        summary["cassette"] = {"path": _display(tape.path), "mode": tape.mode, "hits": tape.hits,
                               "recorded": tape.recorded}
    return summary


async def _retrieval_through_router(runtime: Any, cases: list[Any]) -> dict[str, Any]:
    """The retrieval cases as whole turns, the router deciding first (a diagnostic, not gated)."""
    from chatpay.evaluation.suites import run_retrieval

    routed = await run_retrieval(cases, runtime, through_router=True)
    keys = ("hit_at_1", "hit_at_3", "mrr", "ndcg_at_3", "abstain_accuracy", "all_accuracy", "retrieval_ran")
    return {k: routed[k] for k in keys} | {"failures": [f["id"] for f in routed["failures"]]}


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)
