"""Pictures for the eval report: confusion matrix, confidence histogram, score history.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no global state, no
display needed); each function returns PNG bytes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

ABBREV = {"enquiry": "enquiry", "cart_add": "add", "cart_remove": "remove", "cart_view": "view",
          "cart_clear": "clear", "payments": "payments", "chitchat": "chitchat", "clarify": "clarify?"}
SUITE_METRICS = {
    "routing": ("accuracy",),
    "retrieval": ("hit_at_1", "hit_at_3", "abstain_accuracy"),
    "conversations": ("turn_accuracy",),
}


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def confusion_png(matrix: Mapping[str, Mapping[str, int]], title: str) -> bytes:
    """A heat map of ``{expected: {got: count}}``, counts written in every cell."""
    rows = list(matrix)
    cols = list(next(iter(matrix.values())).keys()) if matrix else []
    data = [[matrix[r].get(c, 0) for c in cols] for r in rows]
    fig = Figure(figsize=(1.0 + 0.8 * len(cols), 1.0 + 0.6 * len(rows)))
    ax = fig.add_subplot()
    # Row-normalised colours, so a small intent's mistakes show as clearly as a big one's.
    shares = [[v / (sum(row) or 1) for v in row] for row in data]
    ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(cols)), [ABBREV.get(c, c) for c in cols], rotation=35, ha="right")
    ax.set_yticks(range(len(rows)), [ABBREV.get(r, r) for r in rows])
    ax.set_xlabel("router decided")
    ax.set_ylabel("expected")
    ax.set_title(title)
    for i, row in enumerate(data):
        for j, value in enumerate(row):
            if value or i == j:
                colour = "white" if shares[i][j] > 0.55 else ("#b00020" if i != j else "black")
                ax.text(j, i, str(value), ha="center", va="center", color=colour, fontsize=9,
                        fontweight="bold" if i != j else "normal")
    return _png(fig)


def histogram_png(hist: Mapping[str, Sequence[float]], title: str) -> bytes:
    """Right and wrong routing decisions per confidence bin, side by side."""
    edges = list(hist["edges"])
    right, wrong = list(hist["right"]), list(hist["wrong"])
    width = (edges[1] - edges[0]) * 0.4 if len(edges) > 1 else 0.04
    centres = [(a + b) / 2 for a, b in zip(edges, edges[1:], strict=False)]
    fig = Figure(figsize=(6.0, 2.8))
    ax = fig.add_subplot()
    ax.bar([c - width / 2 for c in centres], right, width, label="right", color="#2e7d32")
    ax.bar([c + width / 2 for c in centres], wrong, width, label="wrong", color="#c62828")
    ax.set_xlim(0, 1)
    ax.set_yscale("symlog", linthresh=1)  # the few wrong decisions stay visible beside hundreds of right ones
    ax.set_xlabel("router confidence")
    ax.set_ylabel("decisions (log)")
    ax.set_title(title)
    ax.legend()
    return _png(fig)


def history_png(history: Sequence[Mapping[str, Any]]) -> bytes:
    """Headline scores over runs, one panel per suite and one line per store and metric."""
    fig = Figure(figsize=(10.0, 6.5))
    axes = fig.subplots(len(SUITE_METRICS), 1, sharex=True)
    runs = list(range(1, len(history) + 1))
    for ax, (suite, wanted) in zip(axes, SUITE_METRICS.items(), strict=False):
        names = sorted({k for h in history for k in h.get("scores", {})
                        if k.split(".")[1:2] == [suite] and k.split(".")[-1] in wanted})
        for name in names:
            ys = [h.get("scores", {}).get(name) for h in history]
            xs = [x for x, y in zip(runs, ys, strict=False) if y is not None]
            ax.plot(xs, [y for y in ys if y is not None], marker="o", markersize=3, label=name.replace(f".{suite}", ""))
        ax.set_ylabel(suite)
        values = [v for h in history for n in names if (v := h.get("scores", {}).get(n)) is not None]
        ax.set_ylim(max(0.0, min([0.9, *values]) - 0.05), 1.01)
        ax.grid(True, alpha=0.3)
        if names:
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    axes[-1].set_xlabel("run")
    axes[-1].set_xlim(0.5, max(len(history), 1) + 0.5)
    if len(runs) <= 20:
        axes[-1].set_xticks(runs)
    else:
        axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    if history:
        first, last = _when(history[0]), _when(history[-1])
        fig.suptitle(f"Score history: {len(history)} run{'s' if len(history) != 1 else ''}, {first} to {last}")
    return _png(fig)


def _when(entry: Mapping[str, Any]) -> str:
    try:
        return datetime.fromisoformat(str(entry.get("at"))).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return "?"
