"""The diffbench dashboard: settings on the left, live run, results and history on the right.

Runs execute in a Textual thread worker that calls diffbench.tui.bridge (child process by
default); this module imports no torch, so the first screen is up in well under a second.

This module lays the dashboard out and wires widget events to actions; the actions live in
mixins, one module each: run_actions (a run and quitting during one), form_validation,
probes (the environment checks), history_actions, analysis_actions, palette, chart_actions
(the Charts and GPU tabs, the live telemetry line), model_actions (the model picker).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import signal
import threading
from pathlib import Path
from typing import Any, Optional

from textual import events, on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.dom import DOMNode
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Static

from diffbench.engine.config import RunConfig
from diffbench.engine.errors import ConfigError, DiffbenchError
from diffbench.engine.result import RunResult
from diffbench.tui import form_memory
from diffbench.tui.analysis_actions import AnalysisActions
from diffbench.tui.bridge import store
from diffbench.tui.bridge.running import EngineFn
from diffbench.tui.chart_actions import ChartActions
from diffbench.tui.form_validation import FormValidation
from diffbench.tui.history_actions import HistoryActions
from diffbench.tui.model_actions import ModelPicking
from diffbench.tui.palette import PaletteCommands
from diffbench.tui.probes import EnvironmentProbes
from diffbench.tui.run_actions import RunActions
from diffbench.tui.widgets.history import HistoryTable
from diffbench.tui.widgets.lazy_pane import LazyPane
from diffbench.tui.widgets.live import LivePanel
from diffbench.tui.widgets.results import ResultPanels
from diffbench.tui.widgets.settings import SettingsForm
from diffbench.tui.widgets.view_tabs import ViewTabs


class DashboardScreen(Screen):
    """The dashboard's screen. Textual restyles every widget of a screen when it is resumed;
    on the first resume, right after start-up, each widget has just been styled as it was
    mounted, so that pass (CPU before the first paint: benchmarks/RESULTS.md, "Dashboard
    start-up") is skipped. Later resumes (after a dialog closes) restyle as usual."""

    _resumed_once = False
    # Responsive classes (app.tcss): "-narrow" below 100 columns (the form shrinks, the
    # warmup panel goes first so the key figures keep their room), "-wide" from 160;
    # "-tall" from 50 rows (the live panel grows).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-normal"), (160, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (50, "-tall")]

    def _on_screen_resume(self, event: events.ScreenResume) -> None:
        # runs before Screen's own handler, which reads refresh_styles
        if not self._resumed_once:
            self._resumed_once = True
            event.refresh_styles = False


class DiffbenchApp(RunActions, FormValidation, PaletteCommands, EnvironmentProbes,
                   HistoryActions, AnalysisActions, ChartActions, ModelPicking, App):
    """The dashboard. ``engine`` replaces the real engine (tests pass the FakeEngine of tests/fakes.py);
    ``history`` replaces the run store; ``export_dir`` is where exports go (default: cwd)."""

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "diffbench"
    # Focus is given after the first paint (see on_mount): focusing re-styles the
    # ancestors, and the first screen should not wait for that.
    AUTO_FOCUS = None
    SUB_TITLE = "diffusion inference benchmark"
    # SSH-safe keys: no ctrl+s/ctrl+q-style flow-control clashes beyond Textual's own quit,
    # none of the multiplexers' prefixes (ctrl+a screen, ctrl+b tmux), no ctrl+z/ctrl+c/
    # ctrl+\ (signals), no function keys needed (F1 is an alias for ?).
    BINDINGS = [
        Binding("ctrl+r", "run", "Run", priority=True),
        Binding("ctrl+g", "cancel", "Cancel", priority=True),
        Binding("ctrl+e", "export", "Export", priority=True),
        Binding("ctrl+o", "preview", "Image", priority=True),
        Binding("ctrl+t", "compare", "Compare", priority=True),
        Binding("ctrl+l", "load_run", "Re-run cfg", priority=True),
        Binding("ctrl+f", "filter", "Filter", show=False, priority=True),
        Binding("ctrl+n", "sweep", "Sweep", show=False, priority=True),
        Binding("ctrl+y", "throughput", "Throughput", show=False, priority=True),
        # ctrl+k: in the form's fields this replaces "delete to end of line", as ctrl+e
        # replaces "end"; every other ctrl+letter is taken by the terminal or another key
        Binding("ctrl+k", "image_compare", "Image vs baseline", show=False, priority=True),
        Binding("f2", "pick_model", "Models", show=False),
        # plain letters, not priority: a focused text field keeps them for typing
        Binding("l", "show_tab('tab_log')", "Log", show=False),
        Binding("p", "show_tab('tab_charts')", "Charts", show=False),
        Binding("g", "show_tab('tab_gpu')", "GPU", show=False),
        Binding("f1", "help", "Help"),
        Binding("question_mark", "help", "Help", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, engine: Optional[EngineFn] = None,
                 history: Any = None, in_process: bool = False,
                 export_dir: Optional[Path] = None) -> None:
        super().__init__()
        self._engine = engine
        self._in_process = in_process
        self._history = history
        self.export_dir = Path(export_dir) if export_dir else None
        self._tokens = itertools.count(1)
        self.run_token = 0  # token of the run in progress (0: none)
        self.running_cfg: Optional[RunConfig] = None
        self.current_phase: Optional[str] = None
        self.cancel_event: Optional[threading.Event] = None
        self.config_error: Optional[str] = None
        self.last_result: Optional[RunResult] = None
        self.last_exported: Optional[Path] = None
        self.session_run_ids: set[str] = set()  # runs started here (their log is on show)
        self._button_state: Optional[tuple[bool, bool]] = None
        self._validated = False
        self._validation_queued = False
        # background checks (their threads compete with the first paint) wait for this
        self.first_painted = False
        self._heap_frozen = False
        # filled by worker threads after start-up (diffbench.tui.checks); None = not known yet
        self.device: Optional[str] = None
        self.backends: dict[str, tuple[bool, str]] = {}
        self.model_problems: dict[str, Optional[str]] = {}
        self.gpu_available = False
        self._labeled_device: Optional[str] = None
        self.all_backends: dict[str, dict[str, tuple[bool, str]]] = {}
        self.quantize_modes: dict[str, dict[str, tuple[bool, str]]] = {}
        # quit during a run: "asked" while the confirm dialog is up, "cancelling" while the
        # cancelled run is being recorded, None otherwise
        self.quit_state: Optional[str] = None

    # ------------------------------------------------------------------ layout
    def get_default_screen(self) -> Screen:
        # born with its breakpoint classes: set at the first resize instead, they would
        # restyle every widget once more before the first paint
        width, height = self.size
        classes = [next(name for edge, name in reversed(points) if value >= edge)
                   for points, value in ((DashboardScreen.HORIZONTAL_BREAKPOINTS, width),
                                         (DashboardScreen.VERTICAL_BREAKPOINTS, height))]
        return DashboardScreen(id="_default", classes=" ".join(classes))

    def update_styles(self, node: DOMNode, animate: bool = True) -> None:
        """Textual's restyle on a class change, skipped for a widget not mounted yet: it is
        styled when it is mounted anyway (widgets built with compact=True and the like
        would otherwise be styled twice before the first paint)."""
        if node is not self and not node.is_attached:
            return
        super().update_styles(node, animate=animate)

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield SettingsForm(store.list_profiles(), id="settings")
                # every problem in full: long ones (a model's download hint, the list of
                # built-in names) wrap and scroll instead of being cut
                with VerticalScroll(id="validation_box"):
                    yield Static("", id="validation")
                yield Button("Run  ctrl+r", id="run", variant="success", compact=True)
            with Vertical(id="right"):
                yield LivePanel(id="live")
                yield ResultPanels(id="results")
                history = Vertical(
                    Input(placeholder="filter: model, accelerator, status... (ctrl+f)",
                          id="filter", compact=True),
                    Static("", id="filter_note", classes="note"),
                    HistoryTable(id="history"), id="tab_history", classes="pane")
                # the RichLog is created with the first log line (see log_widget)
                log = Vertical(Static("No run started in this session yet: ctrl+r runs "
                                      "the form's settings.", id="log_note", classes="note"),
                               id="tab_log", classes="pane")
                # Charts and GPU: built when first shown (plotext stays out of start-up)
                charts = LazyPane("diffbench.tui.widgets.charts:ChartsView",
                                  self._charts_built, id="tab_charts")
                gpu = LazyPane("diffbench.tui.widgets.telemetry:TelemetryPanel",
                               self._telemetry_built, id="tab_gpu")
                yield ViewTabs(("History", history), ("Log", log), ("Charts", charts),
                               ("GPU", gpu), id="tabs")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#left").border_title = "Settings"
        if self._history is None:
            self._history = store.open_history()
        self.refresh_history()
        remembered = form_memory.load()
        if remembered:  # the settings of the last run started, as the user left them
            self.form().load(remembered, profile=remembered.get("profile"))
        self.validate_form()
        # focused now, not after the first paint: a key typed before it would move on from
        # wherever Textual put the focus, then the focus would jump
        self.query_one("#model", Input).focus()
        self.call_after_refresh(self._after_first_paint)
        try:  # SIGTERM quits as a second ctrl+q does: the run cancelled, its child stopped
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self._quit_now)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, not main thread
            pass

    def _after_first_paint(self) -> None:
        self.first_painted = True
        self._probe_worker()
        self.validate_form()  # starts the model check held back until now
        # the first screen's light stand-ins become the real widgets (see their modules)
        self.form().upgrade_selects()
        self.query_one(ViewTabs).upgrade()
        self._freeze_heap()

    def _freeze_heap(self) -> None:
        """Move the objects alive after start-up (modules, widgets, styles: ~70,000) out of
        the garbage collector's reach until the app ends. A full collection walks every
        tracked object: during a run at 1,000 step events/s one came every few seconds and
        stalled key presses; with the start-up heap frozen it is short (both timed:
        benchmarks/RESULTS.md, "Responsiveness"). Not collected first (a stall of its own):
        only ~500 objects are garbage at this point, and on_unmount unfreezes."""
        if not self._heap_frozen:
            gc.freeze()
            self._heap_frozen = True

    # ------------------------------------------------------------------ accessors
    @property
    def history(self) -> Any:
        return self._history

    @property
    def running(self) -> bool:
        return self.run_token != 0

    def form(self) -> SettingsForm:
        return self.query_one(SettingsForm)

    def table(self) -> HistoryTable:
        return self.query_one(HistoryTable)

    def live(self) -> LivePanel:
        return self.query_one(LivePanel)

    def log_widget(self) -> Any:
        """The log pane's RichLog, created on first use: it is hidden at start-up, and
        textual's RichLog pulls in rich.pretty and attrs (tens of ms before the first screen).
        """
        from textual.widgets import RichLog

        found = self.query("#log")
        if found:
            return found.first(RichLog)
        log = RichLog(id="log", wrap=True, markup=False, max_lines=2000)
        self.query_one("#tab_log").mount(log)
        return log

    def log_line(self, level: str, text: str) -> None:
        style = {"warning": "yellow", "error": "bold red"}.get(level, "")
        from rich.text import Text

        self.log_widget().write(Text(f"[{level}] {text}", style=style))

    def refresh_history(self) -> None:
        try:
            runs = list(self._history.list())
        except Exception as exc:  # a broken store must not take the dashboard down
            self.notify(f"cannot read history: {exc}", severity="error")
            runs = []
        self.table().set_runs(runs)

    # ------------------------------------------------------------------ validation
    @on(SettingsForm.Changed)
    def _form_changed(self) -> None:
        # coalesce: a profile load or start-up fires many changes; validate once after them
        if not self._validation_queued:
            self._validation_queued = True
            self.call_after_refresh(self.validate_form)

    @on(SettingsForm.ProfileChosen)
    def load_profile(self, event: SettingsForm.ProfileChosen) -> None:
        try:
            data = store.load_profile(event.name)
        except DiffbenchError as exc:
            self.notify(str(exc), severity="error")
            return
        self.form().load(data, profile=event.name)
        self.notify(f"loaded profile {event.name}", timeout=2)

    # ------------------------------------------------------------------ running
    @on(Button.Pressed, "#run")
    def action_run(self) -> None:
        """Validate the form and start the run worker."""
        if self.running:
            self.notify("a run is already in progress; ctrl+g cancels it", severity="warning")
            return
        try:
            # the form as typed (task "auto" stays auto), remembered for the next start
            values = self.form().values()
            cfg = RunConfig(**values)
        except ConfigError as exc:
            self.notify(str(exc), severity="error")
            return
        # The background model check may not have answered yet (it waits for typing to
        # stop): ask now, as the CLI's preflight does (cheap: no torch, a few file checks).
        from diffbench.tui import checks

        problem = checks.model_problem(cfg.model)
        if problem:
            self.model_problems[cfg.model] = problem
            self._validated = False
            self.validate_form()
            self.notify(problem, severity="error")
            return
        self.start_run(cfg, remember=values)

    # ------------------------------------------------------------------ history events
    @on(HistoryTable.RowHighlighted)
    def _on_row(self, event: HistoryTable.RowHighlighted) -> None:
        try:
            self._show_selected()
        except NoMatches:  # a late highlight while the app shuts down
            pass

    @on(HistoryTable.HeaderSelected)
    def _on_header(self, event: HistoryTable.HeaderSelected) -> None:
        table = self.table()
        key = str(event.column_key.value)
        if key in ("mark",):
            return
        table.sort_reverse = not table.sort_reverse if key == table.sort_key else True
        table.sort_key = key
        table.rebuild()

    @on(Input.Changed, "#filter")
    def _on_filter(self, event: Input.Changed) -> None:
        event.stop()
        self.table().filter_text = event.value
        self.table().rebuild()
        self._update_filter_note()

    def on_unmount(self) -> None:
        try:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
        if self.cancel_event is not None:  # however the app ends, let the worker finish
            self.cancel_event.set()
        if self._heap_frozen:  # the app's objects become collectable again
            self._heap_frozen = False
            gc.unfreeze()


def main() -> int:
    """Entry point used by `diffbench` with no arguments. Returns the exit code."""
    from diffbench.tui.widgets.image import detect_graphics

    detect_graphics()  # must ask the terminal before the app takes it over
    app = DiffbenchApp()
    app.run()
    return int(app.return_code or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
