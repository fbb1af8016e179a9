"""``chatpay eval`` and ``python -m chatpay.evaluation.all`` from the outside: exit codes, files, messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatpay.cli import main as chatpay
from chatpay.evaluation import all as evals
from chatpay.evaluation.harness import StoreSpec

CONTRACT = {"suite", "cases", "engine", "llm_calls", "prompt_tokens", "completion_tokens", "cost_usd", "seconds",
            "failures"}


def lines(path: Path, *rows: dict[str, object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_chatpay_eval_writes_the_contract_summary(tmp_path: Path, garden: StoreSpec,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    cases = lines(tmp_path / "routing.jsonl", {"text": "hello!", "intent": "chitchat"},
                  {"text": "what's in my cart?", "intent": "cart_view"}, {"text": "hi", "intent": "payments"})
    out = tmp_path / "out" / "routing.json"
    code = chatpay(["eval", "routing", "--cases", str(cases), "--catalog", str(garden.catalog),
                    "--store", str(garden.profile), "--json", str(out), "--offline"])
    assert code == 0
    summary = json.loads(out.read_text())
    assert CONTRACT | {"accuracy", "per_intent", "confusion", "model_share"} <= set(summary)
    assert summary["engine"] == "offline" and summary["cases"] == 3 and summary["cost_usd"] == 0.0
    assert {f["case"]["text"] for f in summary["failures"]} >= {"hi"}  # mislabelled on purpose
    printed = capsys.readouterr().out
    assert "routing per intent" in printed and "failures" in printed


def test_chatpay_eval_bad_case_exits_2_naming_file_line_and_field(tmp_path: Path, garden: StoreSpec,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    cases = lines(tmp_path / "retrieval.jsonl", {"query": "pots", "expected": ["terracotta-pot"]},
                  {"query": "returns", "expected": "SOMETIMES"})
    assert chatpay(["eval", "retrieval", "--cases", str(cases), "--catalog", str(garden.catalog)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(cases) in err and "line 2" in err and "field 'expected'" in err

    unknown = lines(tmp_path / "r2.jsonl", {"query": "pots", "expected": ["clay-pot"]})
    assert chatpay(["eval", "retrieval", "--cases", str(unknown), "--catalog", str(garden.catalog)]) == 2
    assert "'clay-pot' is not a product handle or policy of this store" in capsys.readouterr().err


def test_the_all_runner_writes_results_report_history_and_gates_on_the_baseline(
    tmp_path: Path, garden: StoreSpec, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cases_dir = tmp_path / "evals" / "cases" / "garden"
    lines(cases_dir / "routing.jsonl", {"text": "hello", "intent": "chitchat"},
          {"text": "what's in my basket?", "intent": "cart_view"},
          {"text": "thanks, bye", "intent": "payments"})  # a case the router must get "wrong"
    lines(cases_dir / "conversations.jsonl", {"name": "greet", "turns": [{"user": "hi there"}]})
    spec = StoreSpec("garden", garden.catalog, garden.profile, cases_dir=cases_dir)
    monkeypatch.setattr(evals, "known_stores", lambda: {"garden": spec})
    results, baseline = tmp_path / "results", tmp_path / "baseline.json"
    args = ["--results", str(results), "--baseline", str(baseline), "--backend", "memory", "--brief"]

    assert evals.main([*args, "--update-baseline"]) == 0  # no floors for this store
    written = json.loads(baseline.read_text())["engines"]["offline"]
    assert "garden.routing.accuracy" in written["scores"]
    assert "thanks, bye" in written["failures"]["garden.routing"]
    summary = json.loads((results / "garden" / "routing.json").read_text())
    assert CONTRACT <= set(summary) and summary["confusion"]["payments"]["payments"] == 0
    page = (results / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 3  # confusion matrix, confidence histogram, history
    assert (results / "report.md").read_text().startswith("# ChatPay eval report — PASSED")

    assert evals.main(args) == 0  # the same scores pass against their own baseline
    assert len((results / "history.jsonl").read_text().splitlines()) == 2

    raised = json.loads(baseline.read_text())
    raised["engines"]["offline"]["scores"]["garden.routing.accuracy"] = 1.0
    raised["engines"]["offline"]["failures"]["garden.routing"] = []
    baseline.write_text(json.dumps(raised))
    capsys.readouterr()
    assert evals.main(args) == 1
    out = capsys.readouterr().out
    assert "eval gate failed" in out and "garden.routing.accuracy" in out and "below its baseline 1.0000" in out
    assert "now failing since the baseline (1):" in out and "'thanks, bye' (expected payments" in out
    assert "FAILED" in (results / "report.html").read_text()


def test_the_all_runner_reports_bad_cases_as_exit_2(tmp_path: Path, garden: StoreSpec,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    cases_dir = tmp_path / "cases" / "garden"
    lines(cases_dir / "routing.jsonl", {"text": "hello", "intent": "greeting"})
    monkeypatch.setattr(evals, "known_stores",
                        lambda: {"garden": StoreSpec("garden", garden.catalog, garden.profile, cases_dir=cases_dir)})
    assert evals.main(["--results", str(tmp_path / "r"), "--backend", "memory"]) == 2
    assert "routing.jsonl, item line 1, field 'intent'" in capsys.readouterr().err
