"""The GPU tab: the telemetry of the run on screen (diffbench.tui.telemetry_log) as a
summary line and two charts over time, GPU utilisation with host CPU, and memory used.

Imported when the GPU tab is first shown (diffbench.tui.widgets.lazy_pane): plotext stays out
of the first screen. On a run without GPU figures (a CPU run, no NVML) it says so in one line
and charts the host's CPU only.
"""

from __future__ import annotations

from typing import Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from diffbench.tui.telemetry_log import TelemetryLog, summary_line


class TelemetryPanel(Vertical):
    """:meth:`show` draws a :class:`TelemetryLog` (None: no run has sent telemetry yet)."""

    DEFAULT_CSS = """
    TelemetryPanel { height: auto; }
    TelemetryPanel > #tele_line, TelemetryPanel > #tele_key { height: 1; }
    TelemetryPanel > #tele_note { height: 1; color: $text-muted; }
    TelemetryPanel > Horizontal { height: 12; }
    TelemetryPanel PlotextPlot { width: 1fr; height: 12; }
    """

    def compose(self) -> ComposeResult:
        yield Static("", id="tele_note")
        yield Static("", id="tele_line")
        yield Static("", id="tele_key")
        with Horizontal():
            yield PlotextPlot(id="tele_util")
            yield PlotextPlot(id="tele_mem")

    def on_mount(self) -> None:
        self.show(None)

    def show(self, log: Optional[TelemetryLog]) -> None:
        """Redraw from ``log``."""
        note = self.query_one("#tele_note", Static)
        line = self.query_one("#tele_line", Static)
        util = self.query_one("#tele_util", PlotextPlot)
        mem = self.query_one("#tele_mem", PlotextPlot)
        for plot in (util, mem):
            plot.plt.clear_data()
            plot.plt.clear_figure()
        latest = log.latest if log is not None else None
        if latest is None:
            note.update("telemetry: none yet (a run started here samples the GPU and the "
                        "host once a second)")
            line.update("")
            self.query_one("#tele_key", Static).update("")
            util.refresh()
            mem.refresh()
            mem.display = False
            return
        note.update(f"telemetry of {log.title}, {len(log.samples)} samples"
                    if log.title else f"{len(log.samples)} samples")
        line.update(summary_line(latest))
        plt = util.plt
        plt.title("% busy over s")
        top = max([100.0] + log.series("proc_cpu_pct")[1]) if not log.has_gpu else 100.0
        plt.ylim(0, top)
        # the colour key goes in the caption: plotext's legend box would hide the top rows;
        # the run process's CPU is charted on a CPU run only (on a GPU run it would sit on
        # top of the GPU line; the summary line has it)
        key = Text("host CPU", style="dark_orange")
        drawn = [("cpu_pct", "orange")]
        if log.has_gpu:
            key.append("  GPU util", style="green")
            key.append("  memory used GiB", style="cyan")
            drawn.append(("gpu_util_pct", "green"))  # drawn last: on top
        else:
            key.append("  run process (100 = 1 core)", style="magenta")
            drawn.append(("proc_cpu_pct", "magenta"))
        self.query_one("#tele_key", Static).update(key)
        for field, color in drawn:
            xs, ys = log.series(field)
            if xs:
                plt.plot(xs, ys, color=color, marker="braille")
        util.refresh()
        mem.display = log.has_gpu
        if log.has_gpu:
            plt = mem.plt
            xs, ys = log.series("mem_used_gib")
            total = latest.mem_total_gib
            plt.title("memory used GiB" + (f" (of {total:.0f})" if total else "")
                      + " over s")
            if xs:
                plt.plot(xs, ys, color="cyan", marker="braille")
            mem.refresh()
