"""The sweep view: a grid over run settings whose matrix fills in live, coloured by the
ratio of each cell's it/s to its baseline cell; or a past sweep rebuilt from the history.

The sweep runs in a thread worker through diffbench.tui.bridge.analysis.run_sweep
(diffbench.engine.sweep: each cell a full run in a child process, recorded in the history,
finished cells skipped when the same grid runs again). ctrl+g stops after the current cell;
a second ctrl+g cancels it too.

This module holds the screen: the grid editor, its actions and the handling of the worker's
messages. The matrix drawing is sweep_table's, the worker and its messages sweep_worker's,
the past-sweep dialog sweep_picker's.
"""

from __future__ import annotations

import threading
from typing import Any, Optional

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Input, Static

from diffbench.engine.config import RunConfig
from diffbench.engine.errors import DiffbenchError
from diffbench.engine.result import RunResult
from diffbench.tui.bridge import analysis
from diffbench.tui.bridge.running import EngineFn
from diffbench.tui.screens.sweep_picker import SweepPickerScreen, past_sweeps
from diffbench.tui.screens.sweep_table import SweepTable
from diffbench.tui.screens.sweep_worker import (SweepCell, SweepEnded, SweepStep,
                                                run_sweep_posting)
from diffbench.tui.sweep_matrix import SweepMatrix

#: Grid editor lines (field -> values); a sweep of more fields goes through `diffbench sweep`.
GRID_LINES = 3


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def default_grid(cfg: RunConfig) -> list[tuple[str, str]]:
    """Editor lines to start from: the form's compiler against eager, and its step count
    against twice that."""
    compiler = cfg.compiler if cfg.compiler != "none" else "compile"
    return [("compiler", f"none,{compiler}"), ("steps", f"{cfg.steps},{cfg.steps * 2}"),
            ("", "")]


class SweepScreen(SweepTable, Screen[None]):
    """Start a sweep from ``base`` (the form's settings), or show a past one (``matrix``).

    Args:
        base: the settings every cell starts from (None: view only).
        history: where cells are recorded and looked up (resume).
        engine: replaces the engine (tests: tests/fakes.py FakeEngine); None = child process.
        matrix: a past sweep to show (SweepMatrix.from_runs).
    """

    BINDINGS = [
        Binding("ctrl+r", "start", "Start sweep"),
        Binding("ctrl+g", "stop", "Stop"),
        Binding("escape", "close", "Close"),
    ]
    DEFAULT_CSS = """
    SweepScreen #sweep_box { padding: 0 1; }
    SweepScreen .grid_line, SweepScreen #sweep_controls { height: auto; }
    SweepScreen .grid_field { width: 24; }
    SweepScreen .grid_values { width: 1fr; }
    SweepScreen #sweep_rows, SweepScreen #sweep_cols { width: 1fr; }
    SweepScreen #sweep_controls Button { margin-left: 1; }
    SweepScreen #sweep_status { height: auto; margin-top: 1; }
    SweepScreen #sweep_matrix { height: 1fr; }
    SweepScreen #sweep_detail { height: auto; min-height: 2; color: $text-muted; }
    SweepScreen .view-only { display: none; }
    """

    def __init__(self, base: Optional[RunConfig], history: Any,
                 engine: Optional[EngineFn] = None, in_process: bool = False,
                 matrix: Optional[SweepMatrix] = None) -> None:
        super().__init__()
        self.base = base
        self.history = history
        self.engine = engine
        self.in_process = in_process
        self.matrix = matrix
        self.token = 0
        self.running = False
        self.stop_event: Optional[threading.Event] = None
        self.cancel_event: Optional[threading.Event] = None
        self.current: Optional[str] = None  # key of the running cell
        self.error = ""
        self._places: dict[str, tuple[str, str]] = {}  # cell key -> (row key, column key)

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        lines = default_grid(self.base) if self.base is not None else []
        with Vertical(id="sweep_box"):
            yield Static(self._describe_base(), id="sweep_base")
            for i in range(GRID_LINES):
                field_name, values = lines[i] if i < len(lines) else ("", "")
                with Horizontal(classes="grid_line"):
                    yield Input(field_name, placeholder="field: size, steps...",
                                id=f"grid_field_{i}", classes="grid_field", compact=True)
                    yield Input(values, placeholder="values, comma-separated",
                                id=f"grid_values_{i}", classes="grid_values", compact=True)
            with Horizontal(id="sweep_controls"):
                yield Input(placeholder="rows: field(s)", id="sweep_rows",
                            compact=True)
                yield Input(placeholder="cols: field(s)", id="sweep_cols",
                            compact=True)
                yield Button("Start  ctrl+r", id="sweep_start", variant="success",
                             compact=True)
                yield Button("Stop  ctrl+g", id="sweep_stop", variant="warning", compact=True,
                             disabled=True)
                yield Button("Past sweeps", id="sweep_past", compact=True)
            yield Static("", id="sweep_status")
            yield DataTable(id="sweep_matrix", cursor_type="cell", zebra_stripes=False)
            yield Static("", id="sweep_detail")
        yield Footer()

    def on_mount(self) -> None:
        box = self.query_one("#sweep_box")
        if self.base is None:  # view only: no editor
            box.border_title = "Sweep (from history)"
            for widget in self.query(".grid_line"):
                widget.add_class("view-only")
            self.query_one("#sweep_start").add_class("view-only")
            self.query_one("#sweep_stop").add_class("view-only")
        else:
            box.border_title = "Sweep"
        if self.matrix is not None:
            self.query_one("#sweep_rows", Input).value = ",".join(self.matrix.rows)
            self.query_one("#sweep_cols", Input).value = ",".join(self.matrix.cols)
            self._build_table()
            self._status(self._summary(done=True))
        else:
            self._status("Edit the grid (field = comma-separated values), then ctrl+r. "
                         "Running the same grid again resumes it.")
        self.query_one("#grid_values_0" if self.base is not None else "#sweep_matrix").focus()

    def _describe_base(self) -> str:
        cfg = self.base
        if cfg is None:
            return "A past sweep: cells as recorded in the history (* = resumed)."
        size = f"{cfg.width}x{cfg.height}" if cfg.width and cfg.height else "native size"
        return (f"Base settings (from the form): {cfg.model} {cfg.task} {size}, "
                f"{cfg.steps} steps, compiler {cfg.compiler}, seed {cfg.seed}")

    # ------------------------------------------------------------------ matrix
    def _grid_specs(self) -> list[str]:
        specs = []
        for i in range(GRID_LINES):
            name = self.query_one(f"#grid_field_{i}", Input).value.strip()
            values = self.query_one(f"#grid_values_{i}", Input).value.strip()
            if name or values:
                specs.append(f"{name}={values}")
        return specs

    def _axes(self) -> tuple[list[str], list[str]]:
        return (_split(self.query_one("#sweep_rows", Input).value),
                _split(self.query_one("#sweep_cols", Input).value))

    @on(Button.Pressed, "#sweep_start")
    def action_start(self) -> None:
        """Plan the grid (bad input: one line, nothing runs) and start the sweep worker."""
        if self.base is None:
            return
        if self.running:
            self.notify("the sweep is running; ctrl+g stops it after the current cell",
                        severity="warning")
            return
        if getattr(self.app, "running", False):
            self.notify("a single run is in progress; wait for it or cancel it first",
                        severity="warning")
            return
        specs = self._grid_specs()
        if not specs:
            self._status("Cannot start: give at least one field and its values", "bold red")
            return
        rows, cols = self._axes()
        try:
            sweep, cells, baseline = analysis.plan_sweep(self.base, specs)
            rows, cols = analysis.check_axes(sweep, rows, cols)
        except DiffbenchError as exc:
            self._status(f"Cannot start: {exc}", "bold red")
            return
        self.matrix = SweepMatrix.plan(cells, baseline, rows, cols, sweep.sweep_id)
        self.query_one("#sweep_rows", Input).value = ",".join(rows)
        self.query_one("#sweep_cols", Input).value = ",".join(cols)
        self._build_table()
        self.token += 1
        self.running, self.current, self.error = True, None, ""
        self.stop_event, self.cancel_event = threading.Event(), threading.Event()
        self._buttons()
        self._status(f"Starting {len(cells)} cells ({sweep.sweep_id})...", "bold cyan")
        self._sweep_worker(sweep, self.token, self.stop_event, self.cancel_event)

    @work(thread=True, exclusive=True, group="sweep", exit_on_error=False)
    def _sweep_worker(self, sweep: Any, token: int, stop: threading.Event,
                      cancel: threading.Event) -> None:
        run_sweep_posting(self.post_message, token, sweep, self.history, stop, cancel,
                          self.engine, self.in_process)

    @on(DataTable.CellHighlighted, "#sweep_matrix")
    def _on_highlight(self) -> None:
        self._show_detail()

    @on(SweepCell)
    def _on_cell(self, message: SweepCell) -> None:
        if message.token != self.token or self.matrix is None:
            return
        if message.status == "running":
            self.current = message.key
            self.matrix.start(message.key)
        else:
            if self.current == message.key:
                self.current = None
            self.matrix.record(message.key, message.result, message.resumed)
        self._refresh_cells()
        self._status(self._summary())

    @on(SweepStep)
    def _on_step(self, message: SweepStep) -> None:
        if message.token != self.token or self.matrix is None:
            return
        cell = self.matrix.cells.get(message.key)
        if cell is None or cell.status != "running":
            return
        cell.progress = f"{message.index}/{message.total}"
        if message.key in self._places:
            row, col = self._places[message.key]
            text, style = self.matrix.cell_text(message.key)
            self.query_one("#sweep_matrix", DataTable).update_cell(row, col,
                                                                    Text(text, style=style))
        self._status(self._summary())

    @on(SweepEnded)
    def _on_ended(self, message: SweepEnded) -> None:
        if message.token != self.token:
            return
        self.running, self.current, self.error = False, None, message.error
        self._buttons()
        if message.error:
            self._status(f"Sweep could not run: {message.error}", "bold red")
            self.notify(message.error, severity="error", title="Sweep failed")
            return
        stopped = self.stop_event is not None and self.stop_event.is_set()
        summary = self._summary(done=True)
        if stopped:
            summary += ". Stopped: ctrl+r with the same grid resumes it"
        self._status(summary, "bold yellow" if stopped else "bold green")
        self.notify(summary, title="Sweep stopped" if stopped else "Sweep finished",
                    severity="warning" if stopped else "information", timeout=6)

    @on(Button.Pressed, "#sweep_stop")
    def action_stop(self) -> None:
        """First press: no new cell starts. Second press: cancel the running cell too."""
        if not self.running or self.stop_event is None or self.cancel_event is None:
            self.notify("no sweep is running")
            return
        if not self.stop_event.is_set():
            self.stop_event.set()
            self._status("Stopping after the current cell (ctrl+g again cancels it)...",
                         "bold yellow")
        else:
            self.cancel_event.set()
            self._status("Cancelling the current cell...", "bold yellow")

    def _buttons(self) -> None:
        self.query_one("#sweep_start", Button).disabled = self.running
        self.query_one("#sweep_stop", Button).disabled = not self.running

    @on(Input.Submitted, "#sweep_rows, #sweep_cols")
    def _relayout(self) -> None:
        """Put other fields on the rows/columns (any time; the cells keep their figures)."""
        if self.matrix is None:
            return
        rows, cols = self._axes()
        fields = list(self.matrix.grid)
        unknown = [n for n in [*rows, *cols] if n not in fields]
        if unknown:
            self._status(f"{', '.join(unknown)} not in the grid; it has {', '.join(fields)}",
                         "bold red")
            return
        from diffbench.tui.sweep_matrix import default_axes

        self.matrix.rows, self.matrix.cols = default_axes(fields, rows, cols)
        self._build_table()

    @on(Input.Submitted, ".grid_values")
    def _submit_grid(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#sweep_past")
    def action_past(self) -> None:
        """Pick a past sweep from the history and show it here."""
        try:
            groups = past_sweeps(self.history)
        except Exception as exc:
            self.notify(f"cannot read history: {exc}", severity="error")
            return
        if not groups:
            self.notify("no sweep in the history yet", severity="warning")
            return

        def chosen(sweep_id: Optional[str]) -> None:
            runs = dict(groups).get(sweep_id or "")
            if runs:
                self.show_runs(runs)

        self.app.push_screen(SweepPickerScreen(groups), chosen)

    def show_runs(self, runs: list[RunResult]) -> None:
        """Show a past sweep (its stored runs) in the matrix."""
        if self.running:
            self.notify("stop the running sweep first", severity="warning")
            return
        rows, cols = self._axes()
        self.matrix = SweepMatrix.from_runs(runs, rows, cols)
        self.query_one("#sweep_rows", Input).value = ",".join(self.matrix.rows)
        self.query_one("#sweep_cols", Input).value = ",".join(self.matrix.cols)
        self._build_table()
        self._status(self._summary(done=True))

    def action_close(self) -> None:
        if self.running and self.stop_event is not None and self.cancel_event is not None:
            self.stop_event.set()
            self.cancel_event.set()
            self.notify("sweep stopped; start the same grid again to resume it",
                        severity="warning")
        self.dismiss(None)
