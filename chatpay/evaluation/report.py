"""The eval report: a Markdown file and a self-contained HTML page.

Both show the gate's verdict, every headline score against its floor and baseline,
usage (model calls, tokens, cost, model share), per-intent routing scores and the
failing cases. The HTML page embeds the routing confusion matrices, the confidence
histograms and the score-history plot as base64 PNGs; the Markdown links the same PNG
files, written beside it.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatpay.evaluation import plots
from chatpay.evaluation.gate import FLOORS, GateFailure, headline, run_key
from chatpay.evaluation.tables import describe_failure, fmt

FAILURES_LISTED = 60


@dataclass
class Report:
    """Everything one report shows."""

    summaries: Sequence[Mapping[str, Any]]
    gate: Sequence[GateFailure]
    baseline: Mapping[str, Any] | None
    history: Sequence[Mapping[str, Any]]
    at: str
    commit: str | None = None
    images: dict[str, bytes] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.gate

    def score_rows(self) -> list[tuple[str, float, float | None, float | None, str]]:
        """(metric, value, floor, baseline, status) for every headline score."""
        failed = {g.metric: g.kind for g in self.gate}
        rows = []
        for s in self.summaries:
            base = ((self.baseline or {}).get("engines", {}).get(s["engine"]) or {}).get("scores", {})
            for metric, value in headline([s]).items():
                status = {"floor": "below floor", "baseline": "below baseline"}.get(failed.get(metric, ""), "ok")
                rows.append((metric, value, FLOORS.get(metric), base.get(metric), status))
        return rows


def draw(report: Report) -> None:
    """Render the report's pictures into ``report.images`` (name to PNG bytes)."""
    for s in report.summaries:
        if s["suite"] == "routing":
            store = s.get("store", "eval")
            report.images[f"confusion-{store}.png"] = plots.confusion_png(s["confusion"], f"{store}: routing")
            report.images[f"confidence-{store}.png"] = plots.histogram_png(
                s["confidence_histogram"], f"{store}: confidence of right and wrong decisions")
    if report.history:
        report.images["history.png"] = plots.history_png(report.history)


def _delta(value: float, before: float | None) -> str:
    if before is None:
        return "—"
    d = value - before
    return "±0" if abs(d) < 5e-5 else f"{d:+.3f}"


def _cost(s: Mapping[str, Any]) -> str:
    return "unknown" if s.get("cost_usd") is None else f"${s['cost_usd']:.4f}"


# ----------------------------------------------------------------- Markdown


def markdown(report: Report) -> str:
    verdict = "PASSED" if report.passed else f"FAILED ({len(report.gate)} scores)"
    out = [f"# ChatPay eval report — {verdict}", "",
           f"Run at {report.at}" + (f" on commit `{report.commit}`" if report.commit else "") + ".", ""]
    if report.gate:
        out += ["## Gate failures", "", "```"] + [g.message for g in report.gate] + ["```", ""]
    out += ["## Scores", "", "| metric | value | floor | baseline | change | status |", "|---|---:|---:|---:|---:|---|"]
    for metric, value, floor, before, status in report.score_rows():
        out.append(f"| {metric} | {value:.3f} | {fmt(floor)} | {fmt(before)} | {_delta(value, before)} | {status} |")
    out += ["", "## Runs", "", "| store | suite | cases | engine | model calls | tokens (prompt+completion) | cost | "
            "model share | seconds |", "|---|---|---:|---|---:|---:|---:|---:|---:|"]
    for s in report.summaries:
        out.append(f"| {s.get('store')} | {s['suite']} | {s['cases']} | {s['engine']} ({s.get('engine_mode')}) | "
                   f"{s['llm_calls']} | {s['prompt_tokens']}+{s['completion_tokens']} | {_cost(s)} | "
                   f"{fmt(s.get('model_share'))} | {s['seconds']:.1f} |")
    forced = [s for s in report.summaries if s.get("through_router")]
    if forced:
        keys = ("hit_at_1", "hit_at_3", "mrr", "ndcg_at_3", "abstain_accuracy", "all_accuracy")
        out += ["", "## Retrieval through the router", "",
                "The retrieval queries as whole turns: the router decides first, and a query it does not send "
                "to the enquiry agent retrieves nothing (a diagnostic, not gated).", "",
                "| store | routed to enquiry | " + " | ".join(keys) + " |", "|---|" + "---:|" * (len(keys) + 1)]
        for s in forced:
            out.append(f"| {s.get('store')} | {fmt(s['through_router'].get('retrieval_ran'))} | "
                       + " | ".join(fmt(s["through_router"].get(k)) for k in keys) + " |")
    for s in report.summaries:
        if s["suite"] != "routing":
            continue
        store = s.get("store", "eval")
        out += ["", f"## Routing on {store}", "", f"![confusion matrix](confusion-{store}.png)",
                f"![confidence histogram](confidence-{store}.png)", "",
                "| intent | precision | recall | f1 | support |", "|---|---:|---:|---:|---:|"]
        for label, m in s["per_intent"].items():
            out.append(f"| {label} | {fmt(m['precision'])} | {fmt(m['recall'])} | {fmt(m['f1'])} | {m['support']} |")
    if "history.png" in report.images:
        out += ["", "## Score history", "", "![score history](history.png)"]
    out += ["", "## Failing cases"]
    for s in report.summaries:
        failures = s["failures"]
        out += ["", f"### {run_key(s)} ({len(failures)})", ""]
        if failures:
            out += ["| case | expected | got |", "|---|---|---|"]
            for f in failures[:FAILURES_LISTED]:
                cells = (c.replace("|", "\\|").replace("\n", " ") for c in describe_failure(s["suite"], f))
                out.append("| " + " | ".join(cells) + " |")
            if len(failures) > FAILURES_LISTED:
                out.append(f"\n… and {len(failures) - FAILURES_LISTED} more in `{run_key(s).replace('.', '/')}.json`.")
        else:
            out.append("None.")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------- HTML

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 24px auto; max-width: 1120px;
       color: #1f2328; padding: 0 16px; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { margin-top: 32px; border-bottom: 1px solid #d0d7de; }
.verdict { display: inline-block; padding: 6px 14px; border-radius: 6px; color: #fff; font-weight: 600; }
.pass { background: #1a7f37; } .fail { background: #cf222e; }
table { border-collapse: collapse; margin: 8px 0 16px; } td, th { border: 1px solid #d0d7de; padding: 4px 8px; }
th { background: #f6f8fa; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.bad td { background: #ffebe9; } pre { background: #fff8f0; border: 1px solid #f0c8a0; padding: 12px;
       white-space: pre-wrap; } .muted { color: #656d76; } .pics { display: flex; flex-wrap: wrap; gap: 16px;
       align-items: flex-start; } img { max-width: 100%; border: 1px solid #d0d7de; } .pics img { max-width: 540px; }
details { margin: 6px 0; } summary { cursor: pointer; font-weight: 600; }
"""


def _img(report: Report, name: str, alt: str) -> str:
    data = report.images.get(name)
    if data is None:
        return ""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], bad: Sequence[bool] = (), num_from: int = 1) -> str:
    e = html.escape
    out = ["<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"]
    for i, row in enumerate(rows):
        cls = ' class="bad"' if i < len(bad) and bad[i] else ""
        cells = "".join(f'<td class="num">{e(c)}</td>' if j >= num_from else f"<td>{e(c)}</td>"
                        for j, c in enumerate(row))
        out.append(f"<tr{cls}>{cells}</tr>")
    return "".join(out) + "</table>"


def _gate_html(report: Report) -> str:
    e = html.escape
    if report.passed:
        return "<p>Every score is at or above its floor and within the noise band of its baseline.</p>"
    items = []
    for g in report.gate:
        body = g.message[len(g.head):].strip() if g.head else ""
        details = f"<details><summary>cases</summary><pre>{e(body)}</pre></details>" if body else ""
        items.append(f"<li><b>{e(g.head or g.message)}</b>{details}</li>")
    return "<h2>Gate failures</h2><ul>" + "".join(items) + "</ul>"


def html_page(report: Report) -> str:
    e = html.escape
    verdict = ('<span class="verdict pass">PASSED</span>' if report.passed
               else f'<span class="verdict fail">FAILED: {len(report.gate)} scores</span>')
    engines = ", ".join(sorted({f"{s['engine']} ({s.get('engine_mode')})" for s in report.summaries}))
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>ChatPay eval report</title>"
             f"<style>{CSS}</style></head><body>",
             f"<h1>ChatPay eval report</h1><p>{verdict} <span class='muted'>run at {e(report.at)}"
             + (f", commit {e(report.commit)}" if report.commit else "") + f", engine {e(engines)}</span></p>",
             _gate_html(report)]
    routing = [s for s in report.summaries if s["suite"] == "routing"]
    if routing:
        parts.append("<h2>Routing confusion matrices</h2><div class='pics'>" + "".join(
            _img(report, f"confusion-{s.get('store', 'eval')}.png", f"{s.get('store')} routing confusion matrix")
            for s in routing) + "</div><p class='muted'>Rows: the expected intent; columns: what the router "
            "decided (clarify? = asked the shopper to rephrase). Colour: share of the row.</p>")
    if "history.png" in report.images:
        parts.append("<h2>Score history</h2>" + _img(report, "history.png", "score history"))
    rows = report.score_rows()
    parts.append("<h2>Scores</h2>" + _table(
        ("metric", "value", "floor", "baseline", "change", "status"),
        [(m, f"{v:.3f}", fmt(f), fmt(b), _delta(v, b), st) for m, v, f, b, st in rows],
        [st != "ok" for *_, st in rows]))
    parts.append("<h2>Runs, tokens and cost</h2>" + _table(
        ("store", "suite", "cases", "engine", "model calls", "prompt tokens", "completion tokens", "cost",
         "model share", "seconds"),
        [(str(s.get("store")), s["suite"], str(s["cases"]), f"{s['engine']} ({s.get('engine_mode')})",
          str(s["llm_calls"]), str(s["prompt_tokens"]), str(s["completion_tokens"]), _cost(s),
          fmt(s.get("model_share")), f"{s['seconds']:.1f}") for s in report.summaries], num_from=2)
        + "<p class='muted'>Model share: the fraction of evaluated turns whose router would ask the chat model "
        "in LLM mode (the classifier was unsure).</p>")
    forced = [s for s in report.summaries if s.get("through_router")]
    if forced:
        keys = ("hit_at_1", "hit_at_3", "mrr", "ndcg_at_3", "abstain_accuracy", "all_accuracy")
        parts.append("<h2>Retrieval through the router</h2>" + _table(
            ("store", "routed to enquiry", *keys),
            [(str(s.get("store")), fmt(s["through_router"].get("retrieval_ran")),
              *(fmt(s["through_router"].get(k)) for k in keys)) for s in forced])
            + "<p class='muted'>The retrieval cases again as whole turns: the router decides first, so a query "
            "it does not send to the enquiry agent retrieves nothing (a diagnostic, not gated).</p>")
    for s in routing:
        store = s.get("store", "eval")
        parts.append(f"<h2>Routing on {e(store)}: per intent and confidence</h2><div class='pics'>"
                     + _table(("intent", "precision", "recall", "f1", "support"),
                              [(label, fmt(m["precision"]), fmt(m["recall"]), fmt(m["f1"]), str(m["support"]))
                               for label, m in s["per_intent"].items()])
                     + _img(report, f"confidence-{store}.png", f"{store} confidence histogram") + "</div>")
    parts.append("<h2>Failing cases</h2>")
    for s in report.summaries:
        failures = s["failures"]
        listed = [describe_failure(s["suite"], f) for f in failures[:FAILURES_LISTED]]
        more = f"<p class='muted'>… and {len(failures) - FAILURES_LISTED} more in the JSON results.</p>" \
            if len(failures) > FAILURES_LISTED else ""
        parts.append(f"<details><summary>{e(run_key(s))}: {len(failures)} failing</summary>"
                     + (_table(("case", "expected", "got"), listed, num_from=99) if listed else "<p>None.</p>")
                     + more + "</details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write(report: Report, folder: Path) -> tuple[Path, Path]:
    """Draw the pictures and write ``report.md``, ``report.html`` and the PNGs into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    draw(report)
    for name, data in report.images.items():
        (folder / name).write_bytes(data)
    md = folder / "report.md"
    md.write_text(markdown(report), encoding="utf-8")
    page = folder / "report.html"
    page.write_text(html_page(report), encoding="utf-8")
    return md, page
