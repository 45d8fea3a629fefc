"""Charts in the terminal (textual-plotext): the per-step time of one run, warmup calls and
the measured call apart, and it/s across runs grouped by accelerator with the eager baseline
marked.

Imported only when the Charts tab is first shown (diffbench.tui.widgets.lazy_pane): plotext
costs start-up time the first screen must not pay.
"""

from __future__ import annotations

import statistics
from typing import Any, Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from diffbench.engine.result import RunResult
from diffbench.tui.chart_data import MEASURED, StepSeries, throughput_groups

#: Colours of the step chart's calls: the measured call, then warmup 1, 2, ...
MEASURED_COLOR = "green"
WARMUP_COLORS = ("orange", "magenta", "cyan", "yellow", "blue")
#: plotext colour -> Rich colour of the same hue (Rich has no plain "orange").
RICH_COLOR = {"orange": "dark_orange", "green": "green", "magenta": "magenta", "cyan": "cyan",
              "yellow": "yellow", "blue": "blue", "white": "white"}


def _plot_steps(plt: Any, series: StepSeries) -> dict[str, str]:
    """Draw ``series`` on a textual-plotext Plot: x = denoising step (2..N), y = ms.
    Returns the colour of each call drawn (the caption is the legend: plotext's legend box
    would hide the top rows)."""
    plt.clear_data()
    plt.clear_figure()
    plt.title("step time (ms) by denoising step")
    colors = iter(WARMUP_COLORS)
    used: dict[str, str] = {}
    for key, values in series.calls.items():
        if not values:
            continue
        first = series.first.get(key, 2)  # step 1 includes prompt encoding: left out
        xs = list(range(first, first + len(values)))
        color = MEASURED_COLOR if key == MEASURED else next(colors, "white")
        plt.plot(xs, values, color=color, marker="braille")
        used[key] = color
    return used


class StepChart(Vertical):
    """Step-time chart with a one-line caption; :meth:`show` draws a :class:`StepSeries`."""

    DEFAULT_CSS = """
    StepChart { height: auto; }
    StepChart > PlotextPlot { height: 12; min-height: 8; }
    StepChart > .caption { height: auto; }
    """

    def compose(self) -> ComposeResult:
        yield Static("", classes="caption", id="step_chart_caption")
        yield PlotextPlot(id="step_plot")

    def show(self, series: Optional[StepSeries]) -> None:
        """Draw ``series`` (None or empty: say there is nothing to draw)."""
        caption = self.query_one("#step_chart_caption", Static)
        plot = self.query_one("#step_plot", PlotextPlot)
        self.series = series
        if series is None or series.empty:
            caption.update("step time: no steps recorded for this run")
            plot.plt.clear_data()
            plot.plt.clear_figure()
            plot.refresh()
            return
        colors = _plot_steps(plot.plt, series)
        text = Text(f"{series.title}: " if series.title else "", no_wrap=False)
        for key, values in series.calls.items():
            if values:
                text.append(f"{key} ", style=RICH_COLOR.get(colors.get(key, ""), "bold"))
                reached = series.first.get(key, 2) + len(values) - 1  # the step index
                text.append(f"{reached}/{series.totals.get(key, '?')} steps, "
                            f"p50 {statistics.median(values):.1f} ms  ")
        if MEASURED not in series.calls:
            text.append("measured: pending", style="dim")
        caption.update(text)
        plot.refresh()


class ThroughputChart(Vertical):
    """it/s per accelerator over a set of runs (bars), the eager baseline marked."""

    DEFAULT_CSS = """
    ThroughputChart { height: auto; }
    ThroughputChart > PlotextPlot { height: 12; min-height: 8; }
    ThroughputChart > .caption { height: auto; color: $text-muted; }
    """

    #: The rows drawn last (throughput_groups), None before the first draw.
    rows: Optional[list] = None

    def compose(self) -> ComposeResult:
        yield Static("", classes="caption", id="tp_chart_caption")
        yield PlotextPlot(id="tp_plot")

    def show(self, runs: list[RunResult], scope: str) -> None:
        """Draw it/s of ``runs`` grouped by accelerator; ``scope`` names which runs these are
        ("3 marked runs", "12 runs shown")."""
        caption = self.query_one("#tp_chart_caption", Static)
        plot = self.query_one("#tp_plot", PlotextPlot)
        rows = throughput_groups(runs)
        self.rows = rows
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        if not rows:
            caption.update(f"it/s: no finished runs with it/s among {scope}")
            plot.refresh()
            return
        models = {str(r.config.get("model", "?")) for r in runs if r.status == "finished"}
        note = f"  (mixed: {len(models)} models)" if len(models) > 1 else ""
        base = next((row for row in rows if row[3]), None)
        caption.update(
            f"it/s by accelerator, median of {scope}{note}; "
            + (f"eager baseline {base[1]:.2f} it/s (*)" if base else "no eager run among them"))
        labels = [f"{label}{' *' if is_eager else ''} (n={n})"
                  for label, _, n, is_eager in rows]
        values = [round(value, 3) for _, value, _, _ in rows]
        plot.styles.height = max(6, min(14, 4 + 2 * len(rows)))  # a bar is 2 rows at most
        plt.title("it/s (higher is faster)")
        plt.bar(labels, values, orientation="horizontal", width=0.4,
                color=["green" if row[3] else "orange" for row in rows])
        if base is not None:
            plt.vline(base[1], "green")
        plot.refresh()


class ChartsView(Horizontal):
    """The Charts tab: the step chart beside the throughput chart."""

    DEFAULT_CSS = """
    ChartsView { height: auto; }
    ChartsView > StepChart, ChartsView > ThroughputChart { width: 1fr; }
    """

    #: Below this many columns the charts stack (each would be too narrow to read).
    STACK_BELOW = 70

    def compose(self) -> ComposeResult:
        yield StepChart(id="step_chart")
        yield ThroughputChart(id="tp_chart")

    def on_resize(self) -> None:
        stacked = self.size.width < self.STACK_BELOW
        self.styles.layout = "vertical" if stacked else "horizontal"
        for chart in self.children:
            chart.styles.width = "100%" if stacked else "1fr"
