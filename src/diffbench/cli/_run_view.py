"""Terminal view of a run for `diffbench run`: rich progress while it runs, then the table.

Progress goes to stderr (so stdout carries only the results table / JSON); one bar per
phase, the warmup and measured bars count denoising steps.
"""

from __future__ import annotations

from typing import Any, Optional

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn)
from rich.table import Table

from diffbench.engine import events as ev
from diffbench.engine.baseline import accel_label
from diffbench.engine.metrics import summary_rows
from diffbench.cli._console import make_console

_PHASE_LABELS = {"load": "Load model", "accelerate": "Accelerate", "warmup": "Warmup",
                 "measure": "Measured call", "save": "Save"}


class RunView:
    """Context manager showing live progress; feed it events with :meth:`on_event`."""

    def __init__(self, cfg: Any, console: Optional[Console] = None,
                 out: Optional[Console] = None) -> None:
        self.cfg = cfg
        self.err = console or make_console(stderr=True)
        self.out = out or make_console(highlight=False)
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
            MofNCompleteColumn(), TimeElapsedColumn(), console=self.err, transient=False)
        self._tasks: dict[str, Any] = {}
        self._compile_note = ""
        self._measured_ms = 0.0  # running sum of the measured call's host step times
        self._measured_calls = 0  # measured calls started (--repeat)

    def __enter__(self) -> "RunView":
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    # ------------------------------------------------------------------ events
    def _task(self, phase: str, total: Optional[float] = None) -> Any:
        if phase not in self._tasks:
            self._tasks[phase] = self.progress.add_task(_PHASE_LABELS.get(phase, phase),
                                                        total=total)
        return self._tasks[phase]

    def on_event(self, event: Any) -> None:
        """Update the display for one engine event."""
        if isinstance(event, ev.PhaseStarted):
            total = None
            if event.phase == "warmup":
                total = max(1, self.cfg.warmups) * self._expected_steps() \
                    if self.cfg.warmups else 1
            elif event.phase == "measure":
                total = self._expected_steps()
            task = self._task(event.phase, total)
            if total is None:
                self.progress.update(task, total=1)
        elif isinstance(event, ev.PhaseFinished):
            task = self._task(event.phase)
            total = self.progress.tasks[self._index(task)].total or 1
            self.progress.update(task, completed=total, total=total)
        elif isinstance(event, ev.StepFinished):
            phase = "warmup" if event.call == "warmup" else "measure"
            task = self._task(phase)
            if phase == "warmup":
                per_call = event.total
                total = max(1, self.cfg.warmups) * per_call
                done = (event.warmup_index - 1) * per_call + event.index
                label = f"Warmup {event.warmup_index}/{self.cfg.warmups}{self._compile_note}"
            else:
                total, done = event.total, event.index
                label = self._measured_label(event.index, event.step_ms)
            label += self._cache_note(event)
            self.progress.update(task, total=total, completed=done, description=label)
        elif isinstance(event, ev.CompileProgress):
            self._compile_note = (f" — compiling: {event.graphs} graphs, {event.kernels} "
                                  f"kernels, {event.recompiles} recompiles")
            task = self._task("warmup")
            self.progress.update(task, description=f"Warmup{self._compile_note}")
        elif isinstance(event, ev.LogMessage):
            style = {"warning": "yellow", "error": "red"}.get(event.level, "cyan")
            # soft_wrap: a message stays one line however narrow the terminal or log
            self.progress.console.print(f"[{style}]{event.level}:[/] {escape(event.text)}",
                                        markup=True, highlight=False, soft_wrap=True)
        elif isinstance(event, ev.RunFailed):
            self._drop_unfinished()

    def _measured_label(self, index: int, step_ms: float) -> str:
        """The measured bar's label: the running mean of the host step times so far over
        steps 2..N (step 1 also holds the prompt encoding, as RunResult.step_ms leaves it
        out). Display only; the result reports the synchronised figures."""
        name = "Measured call"
        if index <= 1:
            self._measured_ms = 0.0
            self._measured_calls += 1
        if self._measured_calls > 1:  # --repeat: which call this is
            name = f"Measured call {self._measured_calls}"
        if index <= 1:
            return f"{name} (first step {step_ms:.0f} ms)"
        self._measured_ms += step_ms
        return f"{name} (mean {self._measured_ms / (index - 1):.0f} ms/step so far)"

    def _cache_note(self, event: Any) -> str:
        """" · computed 7 / skipped 3" under a diffusers step cache (" · skipped n/a" for a
        cache that gives no step count); "" without one."""
        if getattr(self.cfg, "cache", "none") == "none":
            return ""
        skipped = getattr(event, "steps_skipped", None)
        if skipped is None:
            return " · skipped n/a"
        return f" · computed {event.index - skipped} / skipped {skipped}"

    def _index(self, task_id: Any) -> int:
        for i, task in enumerate(self.progress.tasks):
            if task.id == task_id:
                return i
        return 0

    def _expected_steps(self) -> int:
        if self.cfg.task == "i2i":
            return max(1, int(self.cfg.steps * self.cfg.strength))
        return self.cfg.steps

    # ------------------------------------------------------------------ output
    def _drop_unfinished(self) -> None:
        # A failed run leaves its phase unfinished: remove it rather than leave a frozen
        # spinner ("⠋ Load model 0/1") above the error line.
        for task in list(self.progress.tasks):
            if not task.finished:
                self.progress.remove_task(task.id)

    def note(self, text: str) -> None:
        """Print ``text`` as one plain line on stderr (no markup, never wrapped)."""
        self.err.print(text, highlight=False, markup=False, soft_wrap=True)

    def warn(self, text: str) -> None:
        """Print ``text`` as one "warning: ..." line on stderr (never wrapped)."""
        self.err.print(f"[yellow]warning:[/] {escape(text)}", highlight=False, soft_wrap=True)

    def print_summary(self, result: Any) -> None:
        """The seed's block (Warmup time, Inference time, Iterations per second, Max used
        memory) plus load time, steps, per-step spread and the image, as a rich table."""
        if result.status != "finished":
            error = escape(str(result.error))
            self.err.print(f"[red]diffbench: run {result.status}:[/] {error}",
                           highlight=False, soft_wrap=True)
        table = summary_table(result)
        if table.row_count:
            self.out.print(table)


def summary_table(result: Any) -> Table:
    """A two-column rich Table of the result's metrics (rows from the metrics catalog, only
    for measured figures), then the image check, device, image path and run id."""
    m = result.metrics
    cfg = result.config
    title = (f"{cfg.get('model')} · {cfg.get('task')} · {cfg.get('width')}x{cfg.get('height')}"
             f" · {accel_label(cfg)} · {result.status}")
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    rows: list[tuple[str, str]] = [(label, escape(text)) for label, text in summary_rows(m)]
    if cfg.get("cache") not in (None, "none") and m.steps_skipped is None and \
            result.status == "finished":
        rows.append(("Steps computed / skipped (step cache)",
                     f"n/a ({escape(str(cfg['cache']))} gives no step count)"))
    if m.image_flag:
        rows.append(("Image check", f"[red]{escape(m.image_flag)}[/]"))
    env = result.environment or {}
    if env.get("device"):
        where = env.get("gpu") or f"{env['device']} ({env.get('cpu_threads', '?')} threads)"
        rows.append(("Device", f"{where} · torch {env.get('torch', '?')} · "
                               f"{cfg.get('dtype', '?')}"))
    if env.get("cpu_cores"):  # the host: figures from different hosts do not mix
        load = str(env.get("load_average") or "").split()
        rows.append(("Host", f"{escape(str(env.get('cpu_model') or 'CPU'))} · "
                             f"{env['cpu_cores']} cores"
                             + (f" · load {load[0]} at start" if load else "")))
    if result.image_path:
        rows.append(("Image", result.image_path))
    if rows:
        rows.append(("Run id", result.run_id))
    for name, value in rows:
        table.add_row(name, value)
    return table
