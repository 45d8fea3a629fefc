"""Result panels: warmup, speed and memory of one run (the selected or the latest)."""

from __future__ import annotations

from typing import Optional

from rich.table import Table
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from diffbench.engine.result import RunResult
from diffbench.tui.runs import speedup
from diffbench.tui.widgets.format import fmt_num, fmt_s


def _grid(rows: list[tuple[str, str]]) -> Table:
    table = Table.grid(padding=(0, 1), expand=False)
    table.add_column(style="dim", no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    for label, value in rows:
        table.add_row(label, value)
    return table


def _ms(value: Optional[float]) -> str:
    """Milliseconds in at most 8 characters (panels are narrow at 100 columns)."""
    return fmt_num(value, 1 if value is not None and value < 100 else 0, "ms")


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
        get = (lambda name: getattr(m, name)) if m is not None else (lambda name: None)
        warm = [("load", fmt_s(get("load_s"))), ("warmup", fmt_s(get("warmup_s"))),
                ("compile", fmt_s(get("compile_s")))]
        if get("warmup_cache"):
            warm.append(("cache", str(get("warmup_cache"))))
        if get("recompiles") is not None:
            warm.append(("recompiles", str(get("recompiles"))))
        speed = [("inference", fmt_s(get("inference_s"))),
                 ("it/s", fmt_num(get("it_per_s"), 2)),
                 ("step p50", _ms(get("step_ms_p50"))),
                 ("step p90", _ms(get("step_ms_p90")))]
        if run is not None:
            ratio = speedup(run, baseline)
            if ratio is not None:
                speed.append(("vs eager", f"{ratio:.2f}x"))
            elif get("steps_run") is not None:
                speed.append(("steps run", str(get("steps_run"))))
        if get("peak_allocated_gib") is not None:
            mem = [("peak alloc", fmt_num(get("peak_allocated_gib"), 2, "GiB")),
                   ("peak resv", fmt_num(get("peak_reserved_gib"), 2, "GiB")),
                   ("warm peak", fmt_num(get("warmup_peak_allocated_gib"), 2, "GiB"))]
        else:
            mem = [("peak RSS", fmt_num(get("peak_rss_gib"), 2, "GiB"))]
        if get("nvml_used_gib") is not None:
            mem.append(("NVML used", fmt_num(get("nvml_used_gib"), 2, "GiB")))
        if run is not None and run.metrics.image_flag:
            mem.append(("image", f"[bold red]{run.metrics.image_flag}[/]"))
        self.query_one("#warmup_panel", Static).update(_grid(warm))
        self.query_one("#speed_panel", Static).update(_grid(speed))
        self.query_one("#memory_panel", Static).update(_grid(mem))
        # say which run the panels describe: during a new run they still show the old one
        caption = f"run {run.run_id}" if run is not None else ""
        if run is not None and run.status != "finished":
            caption += f" ({run.status})"
        self.query_one("#memory_panel").border_subtitle = caption
        self.shown_run_id = run.run_id if run is not None else None
        self.query_one("#speed_panel").border_subtitle = ""
        self.set_class(False, "previous")

    def mark_previous(self) -> None:
        """A new run has started: dim the panels and say they hold the previous run's
        figures (the new run's replace them when it ends)."""
        if self.shown_run_id is None:
            return
        self.set_class(True, "previous")
        # two captions: "previous run <12-char id>" does not fit one panel at 100 columns
        self.query_one("#speed_panel").border_subtitle = "previous run"
