"""Two runs side by side with ratios (B over A)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from diffbench.engine.result import RunResult
from diffbench.engine.metrics import compare_rows
from diffbench.tui.runs import different_work, setting_rows


class CompareScreen(ModalScreen[None]):
    """A and B as the caller orders them (two marked runs: in marking order; a run and its
    baseline: the baseline is A); the last column says how B compares with A. A warning
    line heads the table when the runs differ in model or task."""

    BINDINGS = [Binding("escape,q,ctrl+t", "close", "Close")]

    def __init__(self, a: RunResult, b: RunResult) -> None:
        super().__init__()
        self.a, self.b = a, b

    def compose(self) -> ComposeResult:
        table = Table(expand=True, box=None, header_style="bold")
        table.add_column("")
        table.add_column(f"A {self.a.run_id}", justify="right")
        table.add_column(f"B {self.b.run_id}", justify="right")
        table.add_column("B vs A", justify="right")
        for label, va, vb, note in setting_rows(self.a, self.b):
            table.add_row(label, va, vb, Text(note, style="dim"))
        # the metric rows of `diffbench compare`, from the metrics catalog
        for row in compare_rows(self.a, self.b):
            style = {"better": "green", "worse": "red"}.get(row.direction or "", "dim")
            table.add_row(row.label, row.a_text, row.b_text, Text(row.verdict, style=style))
        with Vertical(classes="dialog wide", id="compare"):
            different = different_work(self.a, self.b)
            if different:
                yield Static(Text(f"Warning: A and B differ in {different}; the ratios "
                                  "compare different work.", style="bold yellow"),
                             id="compare_warning")
            yield Static(table)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#compare").border_title = "Compare runs"

    def action_close(self) -> None:
        self.dismiss(None)
