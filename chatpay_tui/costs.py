"""The cost pane: tokens in and out, cost and model per turn and for the session, with a sparkline."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from chatpay.core.service import TurnResult
from chatpay_tui.fit import ellipsize
from chatpay_tui.session import TurnCost, format_usd, session_cost, turn_cost

BARS = "▁▂▃▄▅▆▇█"
HEADERS = ("#", "engine / model", "in", "out", "cost")
MODEL = 1  # the column that gives way (its names end in "…") when the table is wider than the pane


def sparkline(values: list[float], width: int) -> str:
    """One bar per turn (the latest ``width`` turns), scaled from zero to the dearest turn."""
    shown = values[-width:] if width > 0 else []
    top = max(shown, default=0.0)
    if top <= 0:
        return BARS[0] * len(shown)
    return "".join(BARS[min(len(BARS) - 1, round(v / top * (len(BARS) - 1)))] if v > 0 else BARS[0] for v in shown)


class CostPane(Vertical):
    """Per-turn usage rows under a session summary and a sparkline of cost per turn."""

    BORDER_TITLE = "Costs"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.costs: list[TurnCost] = []

    def compose(self) -> ComposeResult:
        yield Static(self._summary(), id="cost-summary")
        yield Static(self._sparkline(), id="cost-sparkline")
        table: DataTable[str | Text] = DataTable(id="cost-table", show_cursor=False, zebra_stripes=True)
        table.add_columns(*HEADERS)
        yield table

    def add_turn(self, result: TurnResult) -> TurnCost:
        cost = turn_cost(len(self.costs) + 1, result)
        self.costs.append(cost)
        self._fill_table()
        self.query_one("#cost-sparkline", Static).update(self._sparkline())
        self.query_one("#cost-summary", Static).update(self._summary())
        return cost

    def on_resize(self, event: events.Resize) -> None:
        self._fill_table()

    def _rows(self) -> list[list[str]]:
        return [[str(c.index), c.model_label, str(c.prompt_tokens), str(c.completion_tokens), format_usd(c.cost_usd)]
                for c in self.costs]

    def _fill_table(self) -> None:
        """One row per turn; model names are cut with "…" so the table fits the pane's width."""
        table = self.query_one("#cost-table", DataTable)
        rows = self._rows()
        width = table.size.width - table.styles.scrollbar_size_vertical
        if width > 0:
            padding = 2 * table.cell_padding * len(HEADERS)
            others = sum(max(cell_len(row[i]) for row in [list(HEADERS), *rows])
                         for i in range(len(HEADERS)) if i != MODEL)
            room = max(width - padding - others, len(HEADERS[MODEL]))
            for row in rows:
                row[MODEL] = ellipsize(row[MODEL], room)
        table.clear()
        for cost, row in zip(self.costs, rows, strict=True):
            table.add_row(*row[:-1], Text(row[-1], style="yellow" if cost.cost_usd is None else ""))
        if rows:
            table.move_cursor(row=table.row_count - 1)
            table.scroll_end(animate=False)

    def _sparkline(self) -> Text:
        values = [float(c.cost_usd or 0) for c in self.costs]
        top = max((c.cost_usd for c in self.costs if c.cost_usd is not None), default=None)
        line = Text.assemble(("cost/turn ", "bold"), (sparkline(values, 24) or "—", "green"))
        if top is not None:
            line.append(f" max {format_usd(top)}", style="dim")
        return line

    def _summary(self) -> Text:
        total = session_cost(self.costs)
        engines = sorted({c.model_label for c in self.costs}) or ["—"]
        cost = format_usd(total.cost_usd)
        if total.cost_usd is None and total.known_cost_usd:
            cost = f"{format_usd(total.known_cost_usd)} + unknown"
        return Text.assemble(
            ("session ", "bold"), f"{total.turns} turns · {total.calls} model calls\n",
            f"tokens in {total.prompt_tokens} · out {total.completion_tokens} · cost ",
            (cost, "bold yellow" if total.cost_usd is None else "bold green"), "\n",
            ("engine ", "bold"), ", ".join(engines),
        )
