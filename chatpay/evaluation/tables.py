"""Rich tables and progress bars for eval runs on a terminal."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

HEADLINE = {
    "routing": ("accuracy", "model_share"),
    "retrieval": ("hit_at_1", "hit_at_3", "mrr", "ndcg_at_3", "abstain_accuracy", "all_accuracy", "model_share"),
    "conversations": ("turn_accuracy", "conversation_rate", "model_share"),
}
FAILURES_SHOWN = 12
ABBREV = {"enquiry": "enq", "cart_add": "add", "cart_remove": "rem", "cart_view": "view",
          "cart_clear": "clear", "payments": "pay", "chitchat": "chat", "clarify": "clar?"}


def fmt(value: Any) -> str:
    """A rate as ``0.973``; None as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def make_console(*, stderr: bool = False) -> Console:
    """A console at least 140 columns wide when output goes to a file or a pipe (CI logs)."""
    console = Console(stderr=stderr)
    if not console.is_terminal:
        console = Console(stderr=stderr, width=max(console.width, 140))
    return console


def progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    )


def usage_line(s: Mapping[str, Any]) -> str:
    cost = s.get("cost_usd")
    cost_text = "unknown price" if cost is None else f"${cost:.4f}"
    return (f"engine {s['engine']} ({s.get('engine_mode', '?')}) · {s['llm_calls']} model calls · "
            f"{s['prompt_tokens']}+{s['completion_tokens']} tokens · {cost_text} · {s['seconds']:.1f}s")


SHORT = {"accuracy": "acc", "model_share": "model", "hit_at_1": "hit@1", "hit_at_3": "hit@3",
         "ndcg_at_3": "nDCG@3", "abstain_accuracy": "NONE", "all_accuracy": "ALL", "turn_accuracy": "turns",
         "conversation_rate": "convs", "mrr": "MRR"}


def scores_table(summaries: Iterable[Mapping[str, Any]], title: str | None = None) -> Table:
    """One row per run of a suite (all summaries of one suite): cases, headline metrics, cost."""
    rows = list(summaries)
    suite = rows[0]["suite"]
    table = Table(title=title or f"{suite} scores", title_justify="left")
    table.add_column("store")
    table.add_column("cases", justify="right")
    for key in HEADLINE[suite]:
        table.add_column(SHORT.get(key, key), justify="right")
    for col in ("fail", "tokens", "cost", "time"):
        table.add_column(col, justify="right")
    for s in rows:
        cost = "—" if s.get("cost_usd") is None else f"${s['cost_usd']:.4f}"
        table.add_row(
            str(s.get("store", "")), str(s["cases"]), *(fmt(s.get(k)) for k in HEADLINE[suite]),
            str(len(s["failures"])), str(s["prompt_tokens"] + s["completion_tokens"]), cost, f"{s['seconds']:.1f}s",
        )
        forced = s.get("through_router")
        if forced:  # the same queries as whole turns, the router deciding first
            table.add_row(
                f"[dim]{s.get('store', '')}, through the router[/]", "", *(f"[dim]{fmt(forced.get(k))}[/]" for k in HEADLINE[suite]),
                f"[dim]{len(forced['failures'])}[/]", "", "", "",
            )
    return table


def per_intent_table(s: Mapping[str, Any]) -> Table:
    table = Table(title=f"{s.get('store', '')} routing per intent", title_justify="left")
    for col in ("intent", "precision", "recall", "f1", "support"):
        table.add_column(col, justify="left" if col == "intent" else "right")
    for label, m in s["per_intent"].items():
        table.add_row(label, fmt(m["precision"]), fmt(m["recall"]), fmt(m["f1"]), str(m["support"]))
    return table


def confusion_table(s: Mapping[str, Any]) -> Table:
    matrix: Mapping[str, Mapping[str, int]] = s["confusion"]
    cols = list(next(iter(matrix.values())).keys()) if matrix else []
    table = Table(title=f"{s.get('store', '')} routing confusion (rows expected, columns got)", title_justify="left")
    table.add_column("expected \\ got")
    for c in cols:
        table.add_column(ABBREV.get(c, c), justify="right")
    for expected, row in matrix.items():
        cells = []
        for c in cols:
            n = row.get(c, 0)
            cells.append(f"[green]{n}[/]" if c == expected else (f"[red]{n}[/]" if n else "[dim]0[/]"))
        table.add_row(expected, *cells)
    return table


def describe_failure(suite: str, f: Mapping[str, Any]) -> tuple[str, str, str]:
    """(case, expected, got) as short strings for tables and reports."""
    case, got = f["case"], f["got"]
    if suite == "routing":
        return str(f.get("id", case["text"])), case["intent"], f"{got['intent']} ({got['confidence']:.2f}, {got['layer']})"
    if suite == "retrieval":
        expected = case["expected"] if isinstance(case["expected"], str) else ", ".join(case["expected"])
        shown = ", ".join(got["ranked"][:3]) or "nothing"
        return case["query"], expected, f"{got['kind'] or got['intent']}: {shown}"
    first = got[0]
    more = f" (+{len(got) - 1} more turns)" if len(got) > 1 else ""
    return case["name"], f"turn {first['turn'] + 1}: {first['user']!r}", "; ".join(first["problems"]) + more


def failures_table(s: Mapping[str, Any], limit: int = FAILURES_SHOWN) -> Table:
    failures = s["failures"]
    table = Table(title=f"{s.get('store', '')} {s['suite']} failures ({len(failures)})", title_justify="left")
    table.add_column("case", overflow="fold")
    table.add_column("expected", overflow="fold")
    table.add_column("got", overflow="fold")
    for f in failures[:limit]:
        table.add_row(*describe_failure(s["suite"], f))
    if len(failures) > limit:
        table.add_row(f"… and {len(failures) - limit} more (see the JSON results)", "", "")
    return table


def print_summary(console: Console, s: Mapping[str, Any], *, detail: bool = True) -> None:
    """One suite's scores, and with ``detail`` its per-intent table, confusion matrix and failures."""
    console.print(scores_table([s], title=f"{s.get('store', '')} {s['suite']}"))
    console.print(usage_line(s), style="dim")
    if detail and s["suite"] == "routing":
        console.print(per_intent_table(s))
        console.print(confusion_table(s))
    if detail and s["failures"]:
        console.print(failures_table(s))
