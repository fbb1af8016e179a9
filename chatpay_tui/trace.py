"""The trace tree: per turn, the router's decision, the retrieved products and every span.

Each node carries the :class:`Span` it describes, so "copy span as JSON" works from any
line under a turn. ``stable=True`` hides timings and random turn ids (for snapshots).
A line wider than the pane ends in "…" (the whole span is one "copy span" away).
"""

from __future__ import annotations

import json
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from chatpay.core.service import TurnResult
from chatpay.core.telemetry import Span
from chatpay_tui.fit import ellipsize_text

MAX_ATTR = 70


def _ms(span: Span, stable: bool) -> str:
    return "" if stable else f" {span.ms:.1f} ms"


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= MAX_ATTR else text[: MAX_ATTR - 1] + "…"


def span_json(span: Span, *, timings: bool = True) -> str:
    """A span and its children as pretty JSON (what "copy span" puts on the clipboard)."""
    return json.dumps(span.to_dict(timings=timings), default=str, ensure_ascii=False, indent=2)


def turn_label(index: int, result: TurnResult, *, label: str | None = None, stable: bool = False) -> Text:
    turn = result.turn
    said = turn.text or (f"[{label or turn.callback_data}]" if turn.callback_data else "")
    said = said if len(said) <= 32 else said[:31] + "…"
    d = result.decision
    text = Text.assemble((f"#{index} ", "bold"), (said, "italic"), " → ", (d.intent, "bold green"),
                         f" {d.confidence:.2f}")
    if result.error:
        text.append(" ✗", style="bold red")
    if not stable:
        text.append(f" {result.trace.root.ms:.1f} ms", style="dim")
    return text


class TracePane(Tree[Span]):
    """Turns as collapsible nodes; the newest is expanded, earlier ones fold away."""

    BORDER_TITLE = "Trace"
    BINDINGS = [Binding("c", "copy_span", "Copy span")]

    class CopySpan(Message):
        """The user asked to copy the span under the cursor."""

        def __init__(self, span: Span) -> None:
            super().__init__()
            self.span = span

    def __init__(self, *, stable: bool = False, id: str | None = None) -> None:
        super().__init__("turns", id=id)
        self.show_root = False
        self.stable = stable
        self.turns: list[TreeNode[Span]] = []

    def render_label(self, node: TreeNode[Span], base_style: Style, style: Style) -> Text:
        """The node's label, cut with "…" where it would run past the pane's right edge."""
        label = super().render_label(node, base_style, style)
        # Room for the vertical scrollbar is kept whether it shows or not, so a line never hides under it.
        width = self.size.width - self.styles.scrollbar_size_vertical
        if width <= 0:
            return label
        depth = 0
        parent = node.parent
        while parent is not None and parent is not self.root:
            depth += 1
            parent = parent.parent
        indent = depth * self.guide_depth if not self.show_root else (depth + 1) * self.guide_depth
        return ellipsize_text(label, width - indent)

    def add_turn(self, result: TurnResult, *, label: str | None = None) -> TreeNode[Span]:
        """Add one turn's decision, retrieval and spans; fold the previous turns.

        ``label`` names the button pressed, for a turn that is a button press.
        """
        for node in self.turns:
            node.collapse()
        stable = self.stable
        root_span = result.trace.root
        node = self.root.add(turn_label(len(self.turns) + 1, result, label=label, stable=stable), data=root_span,
                             expand=True)
        self._decision(node, result)
        retrieve = result.trace.find("retrieve")
        if retrieve is not None:
            self._retrieval(node, retrieve)
        spans = node.add(Text("spans", style="bold"), data=root_span, expand=False)
        for child in root_span.children:
            self._span(spans, child)
        if result.error:
            node.add_leaf(Text(f"error: {result.error}", style="bold red"), data=root_span)
        self.turns.append(node)
        # Line numbers exist only once the tree has laid out the new node.
        self.call_after_refresh(self.move_cursor, node)
        return node

    def _decision(self, parent: TreeNode[Span], result: TurnResult) -> None:
        d = result.decision
        route = result.trace.find("route") or result.trace.root
        runner = f"{d.runner_up} {d.runner_up_confidence:.2f}" if d.runner_up else "—"
        if d.model_called:
            model = Text("model called", style="bold yellow")
        elif d.would_call_model:
            model = Text("model not called (would ask one)", style="yellow")
        else:
            model = Text("model not called", style="dim")
        router = parent.add(
            Text.assemble(("router ", "bold"), (d.intent, "green"), f" {d.confidence:.2f}"), data=route, expand=True,
        )
        router.add_leaf(f"runner-up: {runner}", data=route)
        router.add_leaf(Text.assemble(f"layer: {d.layer} · ", model), data=route)
        if d.clarify:
            router.add_leaf(Text("asks the shopper to clarify", style="yellow"), data=route)
        if d.reason:
            router.add_leaf(Text(f"why: {_value(d.reason)}", style="dim"), data=route)

    def _retrieval(self, parent: TreeNode[Span], span: Span) -> None:
        attrs = span.attrs
        products = list(attrs.get("products") or [])
        head = Text.assemble(("retrieved ", "bold"), f"{attrs.get('kind', '?')} · confidence {attrs.get('confidence', '?')}")
        node = parent.add(head, data=span, expand=True)
        if attrs.get("query"):
            node.add_leaf(Text(f"query: {_value(attrs['query'])}", style="dim"), data=span)
        for p in products:
            extra = ""
            if "lexical" in p or "dense" in p:
                extra = f" (lex {p.get('lexical', 0):.2f}, dense {p.get('dense', 0):.2f})"
            node.add_leaf(Text.assemble((f"{p.get('score', 0):.3f} ", "cyan"), str(p.get("handle")), (extra, "dim")),
                          data=span)
        for p in attrs.get("policies") or []:
            node.add_leaf(Text.assemble((f"{p.get('score', 0):.3f} ", "cyan"), f"policy {p.get('id')}"), data=span)
        if not products and not attrs.get("policies"):
            node.add_leaf(Text("no product retrieved", style="dim"), data=span)

    def _span(self, parent: TreeNode[Span], span: Span) -> None:
        label = Text.assemble((span.name, "bold"), (_ms(span, self.stable), "dim"))
        if not span.children and not span.attrs:
            parent.add_leaf(label, data=span)
            return
        node = parent.add(label, data=span, expand=False)
        for key, value in span.attrs.items():
            node.add_leaf(Text.assemble((f"{key}: ", "dim"), _value(value)), data=span)
        for child in span.children:
            self._span(node, child)

    def forget_turns(self) -> None:
        """Forget every turn (a new thread starts)."""
        self.clear()
        self.turns = []

    def selected_span(self) -> Span | None:
        """The span under the cursor, else the latest turn's root span."""
        node = self.cursor_node
        if node is not None and node.data is not None:
            return node.data
        return self.turns[-1].data if self.turns else None

    def action_copy_span(self) -> None:
        span = self.selected_span()
        if span is None:
            self.notify("No span yet: send a message first.", severity="warning")
            return
        self.post_message(self.CopySpan(span))
