"""The Charts and GPU tabs and the live telemetry line: fed from the run's messages and the
history table's selection.

A mixin of :class:`diffbench.tui.app.DiffbenchApp`. The data (step series, telemetry
samples) is kept from a run's first message on, whether or not a tab is open; the tabs'
widgets (plotext) are built the first time they are shown (diffbench.tui.widgets.lazy_pane)
and redrawn at most :data:`REDRAW_S` apart during a run.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from textual.css.query import NoMatches
from textual.widget import Widget
from textual.widgets import Static

from diffbench.tui import messages as msg
from diffbench.tui.chart_data import StepSeries
from diffbench.tui.telemetry_log import TelemetryLog, summary_line

#: Shortest time between two redraws of a chart during a run (s): plotext draws in Python.
REDRAW_S = 0.25
#: Step series of finished runs kept, so the run just watched shows its warmup calls too.
KEEP_SERIES = 8


class ChartActions:
    """Mixin: ``telemetry_token`` is the run whose child sends telemetry (0: none yet)."""

    telemetry_token = 0
    _live_series: Optional[StepSeries] = None
    _telemetry: Optional[TelemetryLog] = None
    _chart_drawn_at = 0.0
    _chart_timer_armed = False

    # ------------------------------------------------------------------ run messages
    def _series_for(self, token: int) -> StepSeries:
        series = self._live_series
        if series is None or getattr(series, "token", None) != token:
            cfg = self.running_cfg
            title = f"{cfg.model} {cfg.compiler}" if cfg is not None else ""
            series = StepSeries("", f"running: {title}" if title else "running")
            series.token = token  # type: ignore[attr-defined]
            self._live_series = series
        return series

    def on_step_progress(self, message: msg.StepProgress) -> None:
        if message.token != self.run_token:
            return
        self._series_for(message.token).add(message)
        self._redraw_charts_soon()

    def on_telemetry_update(self, message: msg.TelemetryUpdate) -> None:
        if message.token != self.run_token:
            return
        log = self._telemetry
        if log is None or log.token != message.token:
            cfg = self.running_cfg
            log = TelemetryLog(message.token, f"{cfg.model} {cfg.compiler}" if cfg else "")
            self._telemetry = log
        log.add(message.sample)
        self.telemetry_token = message.token
        line = self.live().query_one("#gpu_text", Static)
        if not line.display:  # one line whatever the width: the host figures go first
            line.styles.text_wrap, line.styles.text_overflow = "nowrap", "ellipsis"
            line.display = True
        line.update(summary_line(message.sample))
        self._redraw_telemetry()

    def on_run_ended(self, message: msg.RunEnded) -> None:
        series = self._live_series
        if series is None or getattr(series, "token", None) != message.token:
            return
        result = message.result
        if result is not None:
            series.run_id = result.run_id
            series.title = f"run {result.run_id}"
            kept = getattr(self, "_watched_series", {})
            kept[result.run_id] = series
            while len(kept) > KEEP_SERIES:
                kept.pop(next(iter(kept)))
            self._watched_series = kept
        self._redraw_charts()

    # ------------------------------------------------------------------ the tabs
    def _pane_content(self, pane_id: str) -> Optional[Widget]:
        found = self.query(f"#{pane_id}")
        return getattr(found.first(), "content", None) if found else None

    def _charts_built(self, _widget: Widget) -> None:
        self._redraw_charts()

    def _telemetry_built(self, _widget: Widget) -> None:
        self._redraw_telemetry()

    def _redraw_charts_soon(self) -> None:
        wait = self._chart_drawn_at + REDRAW_S - time.monotonic()
        if wait <= 0:
            self._redraw_charts()
        elif not self._chart_timer_armed:
            self._chart_timer_armed = True
            self.set_timer(wait, self._redraw_charts)

    def step_series_for_view(self) -> Optional[StepSeries]:
        """The series the step chart shows: the run in progress, else the selected run's
        (with its warmup calls when it was watched here)."""
        if self.running and self._live_series is not None and \
                getattr(self._live_series, "token", None) == self.run_token:
            return self._live_series
        run = self.table().selected_run() or self.last_result
        if run is None:
            return None
        kept = getattr(self, "_watched_series", {})
        return kept.get(run.run_id) or StepSeries.from_run(run)

    def runs_for_throughput(self) -> tuple[list[Any], str]:
        """(runs, scope): the marked runs when two or more are marked, else the runs the
        filter shows."""
        table = self.table()
        marked = table.marked_runs()
        if len(marked) >= 2:
            return marked, f"{len(marked)} marked runs"
        shown = table.visible_runs()
        return shown, (f"{len(shown)} runs matching the filter" if table.filter_text
                       else f"{len(shown)} runs")

    def _redraw_charts(self) -> None:
        self._chart_timer_armed = False
        self._chart_drawn_at = time.monotonic()
        try:
            view = self._pane_content("tab_charts")
            if view is None or not view.is_mounted:
                return
            from diffbench.tui.widgets.charts import StepChart, ThroughputChart

            view.query_one(StepChart).show(self.step_series_for_view())
            throughput = view.query_one(ThroughputChart)
            # the history does not change during a run: drawn once then, not at every step
            if not self.running or getattr(throughput, "rows", None) is None:
                throughput.show(*self.runs_for_throughput())
        except NoMatches:  # a dialog is up, or the app is closing
            return

    def _redraw_telemetry(self) -> None:
        try:
            panel = self._pane_content("tab_gpu")
            if panel is not None and panel.is_mounted:
                panel.show(self._telemetry)
        except NoMatches:
            return

    def on_data_table_row_highlighted(self, _event: Any) -> None:
        if not self.running:
            self._redraw_charts()
