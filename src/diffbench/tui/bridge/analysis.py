"""Sweeps, the throughput fit and image similarity for the dashboard's analysis screens.

Planning is cheap (diffbench.engine.sweep imports no torch); running happens in thread
workers, through diffbench.engine.session.Session: sweep cells and the throughput fit run in
child processes by default, so torch never loads into the dashboard's process.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

from diffbench.engine import events as ev
from diffbench.engine.config import RunConfig
from diffbench.engine.result import RunResult
from diffbench.engine.session import IN_PROCESS, Session
from diffbench.tui.bridge.running import EngineFn, session_for


def plan_sweep(base: RunConfig, specs: list[str]) -> tuple[Any, list[dict[str, str]],
                                                           dict[str, str]]:
    """A sweep of ``base`` over ``--grid``-style specs (``"compiler=none,compile"``).

    Returns:
        (diffbench.engine.sweep.plan.Sweep, its cells as {field: value text} in grid order, the
        baseline cell's values as text).

    Raises:
        ConfigError: a bad spec, field or value, or an invalid cell (named).
    """
    from diffbench.engine.sweep.grid import format_value, parse_grid
    from diffbench.engine.sweep.plan import Sweep

    sweep = Sweep(base=base, grid=parse_grid(specs))
    for cell in sweep.cells():  # validate every cell before anything runs
        sweep.config_for(cell)
    cells = [{k: format_value(v) for k, v in cell.items()} for cell in sweep.cells()]
    baseline = {k: format_value(v) for k, v in sweep.baseline.items()}
    return sweep, cells, baseline


def check_axes(sweep: Any, rows: list[str], cols: list[str]) -> tuple[list[str], list[str]]:
    """diffbench.engine.sweep.report.split_axes: the matrix rows/cols (ConfigError for a
    field not swept)."""
    from diffbench.engine.sweep.report import split_axes

    return split_axes(sweep, rows, cols)


def run_sweep(sweep: Any, history: Any, on_cell: Callable[..., Any],
              on_step: Callable[[str, int, int], Any], stop: threading.Event,
              cancel: threading.Event, engine: Optional[EngineFn] = None,
              in_process: bool = False) -> None:
    """Run (or resume) ``sweep``, recording each cell in ``history``. Call from a worker.

    Cells run one at a time, launched by the dashboard's Session (``engine`` in tests, else
    one child process per cell, or in process), as single runs are.

    Args:
        on_cell: ``(key, status, result, resumed)`` when a cell starts (status "running",
            result None) and when it is recorded (result a RunResult).
        on_step: ``(key, index, total)`` for each denoising step of a cell's measured call.
        stop: no new cell starts once set (the running cell finishes and is recorded).
        cancel: cancels the running cell too (recorded as cancelled; runs again on resume).

    Raises:
        DiffbenchError: bad input before any cell ran (one line).
    """
    from diffbench.engine.sweep import run

    session = session_for(history, engine, in_process)
    preflight = session.preflight if session.launch_mode() == IN_PROCESS else None

    def on_event(outcome: Any, event: Any) -> None:
        if isinstance(event, ev.StepFinished) and event.call == "measured":
            on_step(outcome.key, event.index, event.total)

    run.run_sweep(sweep, history, session.launch, preflight=preflight, on_event=on_event,
                  on_cell_start=lambda o, total: on_cell(o.key, "running", None, False),
                  on_cell_done=lambda o, total: on_cell(o.key, o.status, o.result, o.resumed),
                  stop=stop, cancel=cancel, session=session)


def parse_steps(text: str) -> list[int]:
    """Step counts for the throughput fit: ``"2,4,8"`` or ``"2:20:2"`` (ConfigError)."""
    from diffbench.engine.throughput import parse_steps as parse

    return parse(text)


def run_throughput(cfg: RunConfig, steps: list[int], repeats: int,
                   on_point: Callable[[int, int, float], Any],
                   on_status: Callable[[str], Any], cancel: threading.Event,
                   threads: Optional[int] = None, timer: Optional[Callable[[int], float]] = None,
                   in_process: bool = False) -> Any:
    """The throughput fit through the dashboard's Session (call from a worker): in a child
    process by default (torch stays out of the dashboard), in process with ``in_process``
    or ``DIFFBENCH_IN_PROCESS=1``; ``timer`` replaces the pipeline (tests) and runs here.

    Returns:
        diffbench.engine.throughput.ThroughputResult (``fit``: base_s, per_step_s, r2).

    Raises:
        DiffbenchError: bad input, a failed or crashed measurement (one line), or
        RunCancelled.
    """
    session: Session = session_for(None, None, in_process)
    if timer is None and session.launch_mode() == IN_PROCESS:
        session.preflight(cfg)

    def on_event(event: Any) -> None:
        if isinstance(event, ev.PhaseStarted):
            on_status(f"{event.phase}: {event.detail}" if event.detail else event.phase)

    return session.throughput(cfg, steps, repeats, on_point=on_point, on_event=on_event,
                              cancel=cancel, threads=threads, timer=timer)


def throughput_plot(result: Any, width: int = 60, height: int = 12) -> list[str]:
    """diffbench.engine.plot.text_scatter of the measured points and the fitted line."""
    from diffbench.engine.plot import text_scatter

    fit = result.fit
    return text_scatter(result.steps, result.times_s, fit.per_step_s if fit else None,
                        fit.base_s if fit else None, width=width, height=height,
                        x_label="denoising steps", y_label="pipeline time (s)")


def find_image_baseline(run: RunResult, history: Any) -> Optional[RunResult]:
    """The run ``run`` should be compared with: its ``metrics.baseline_run_id`` when stored,
    else diffbench.engine.baseline.find_baseline (the one rule: same settings, eager,
    finished, image on disk)."""
    wanted = run.metrics.baseline_run_id
    if wanted:
        try:
            found = history.get(wanted)
        except Exception:  # deleted since: look for another baseline
            found = None
        if found is not None:
            return found
    from diffbench.engine.baseline import find_baseline

    return find_baseline(run, history)


def compare_images(image: str, reference: str) -> tuple[float, float]:
    """(PSNR dB, SSIM) of ``image`` against ``reference`` (diffbench.engine.quality.
    compare_images; numpy and scikit-image load here, in the worker). Raises OSError /
    ValueError."""
    from diffbench.engine.quality import compare_images as compare

    return compare(image, reference)
