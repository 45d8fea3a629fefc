"""Result panels: warmup, speed and memory of one run (the selected or the latest)."""

from __future__ import annotations

from typing import Optional

from rich.markup import escape
from rich.table import Table
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from diffbench.engine.metrics import format_metric, metric, panel_rows
from diffbench.engine.result import RunResult
from diffbench.tui.runs import speedup


def _grid(rows: list[tuple[str, str]]) -> Table:
    table = Table.grid(padding=(0, 1), expand=False)
    table.add_column(style="dim", no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    for label, value in rows:
        table.add_row(label, value)
    return table


class ResultPanels(Horizontal):
    """Three bordered panels; :meth:`show` fills them from a RunResult."""

    shown_run_id: Optional[str] = None  # the run the panels describe

    def compose(self) -> ComposeResult:
        yield Static(id="warmup_panel", classes="panel")
        yield Static(id="speed_panel", classes="panel")
        yield Static(id="memory_panel", classes="panel")

    def on_mount(self) -> None:
        for pid, title in (("warmup_panel", "Warmup"), ("speed_panel", "Speed"),
                           ("memory_panel", "Memory")):
            self.query_one(f"#{pid}").border_title = title
        self.show(None)

    def show(self, run: Optional[RunResult], baseline: Optional[RunResult] = None) -> None:
        """Fill the panels from ``run`` (None: empty); ``baseline`` gives the speed-up."""
        m = run.metrics if run is not None else None
        # rows from the metrics catalog: each metric's panel, words and format
        warm, speed, mem = (panel_rows(m, panel) for panel in ("warmup", "speed", "memory"))
        if run is not None:
            ratio = speedup(run, baseline)
            if ratio is not None:
                speed.append(("vs eager", f"{ratio:.2f}x"))
            elif m.steps_run is not None:
                speed.append((metric("steps_run").short, format_metric("steps_run",
                                                                       m.steps_run)))
        if run is not None and run.metrics.image_flag:
            mem.append(("image", f"[bold red]{escape(run.metrics.image_flag)}[/]"))
        self.query_one("#warmup_panel", Static).update(_grid(warm))
        self.query_one("#speed_panel", Static).update(_grid(speed))
        self.query_one("#memory_panel", Static).update(_grid(mem))
        # say which run the panels describe: during a new run they still show the old one
        caption = f"run {run.run_id}" if run is not None else ""
        if run is not None and run.status != "finished":
            caption += f" ({run.status})"
        self.query_one("#memory_panel").border_subtitle = caption
        self.shown_run_id = run.run_id if run is not None else None
        # the pairing behind "vs eager": which eager run this one is compared with
        paired = run is not None and speedup(run, baseline) is not None
        self.query_one("#speed_panel").border_subtitle = (f"vs {baseline.run_id}" if paired
                                                          else "")
        self.set_class(False, "previous")

    def mark_previous(self) -> None:
        """A new run has started: dim the panels and say they hold the previous run's
        figures (the new run's replace them when it ends)."""
        if self.shown_run_id is None:
            return
        self.set_class(True, "previous")
        # two captions: "previous run <12-char id>" does not fit one panel at 100 columns
        self.query_one("#speed_panel").border_subtitle = "previous run"
