"""Run (or resume) a sweep: skip cells finished under the same sweep id, run the others
serially or in parallel, tag and record each result, attach baseline similarity."""

from __future__ import annotations

import os
import threading
from typing import Any, Callable, Optional, Sequence

from diffbench.engine.config import RunConfig
from diffbench.engine.result import RunResult
from diffbench.engine.sweep.cell import CellOutcome, RunFn, run_cell
from diffbench.engine.sweep.grid import cell_key
from diffbench.engine.sweep.parallel import run_parallel
from diffbench.engine.sweep.plan import Sweep, prepare

#: Config keys added to RunResult.config by a sweep.
SWEEP_ID_KEY = "sweep_id"
SWEEP_CELL_KEY = "sweep_cell"


def _tag(result: RunResult, sweep: Sweep, key: str, device: str = "") -> RunResult:
    result.config[SWEEP_ID_KEY] = sweep.sweep_id
    result.config[SWEEP_CELL_KEY] = key
    if device and not result.config.get("sweep_device"):  # Ray cells name their node
        result.config["sweep_device"] = device
    return result


def finished_cells(history: Any, sweep: Sweep) -> dict[str, RunResult]:
    """Cells of ``sweep`` already finished in ``history``: cell key -> newest result."""
    lister = history.list
    try:
        runs = lister(sweep_id=sweep.sweep_id)  # a history that can filter by sweep
    except TypeError:
        runs = lister(model=sweep.base.model)
    found: dict[str, RunResult] = {}
    for run in runs:
        if run.config.get(SWEEP_ID_KEY) != sweep.sweep_id or run.status != "finished":
            continue
        key = run.config.get(SWEEP_CELL_KEY)
        if key and (key not in found or run.started_at > found[key].started_at):
            found[key] = run
    return found


def run_sweep(sweep: Sweep, history: Any, run_fn: Optional[RunFn] = None, *,
              preflight: Optional[Callable[[RunConfig], Any]] = None,
              on_event: Optional[Callable[[CellOutcome, Any], None]] = None,
              on_cell_start: Optional[Callable[[CellOutcome, int], None]] = None,
              on_cell_done: Optional[Callable[[CellOutcome, int], None]] = None,
              stop: Optional[threading.Event] = None,
              cancel: Optional[threading.Event] = None,
              workers: Optional[Sequence[tuple[str, RunFn]]] = None,
              attach_baseline: bool = True,
              on_notice: Optional[Callable[[str], None]] = None,
              session: Any = None) -> list[CellOutcome]:
    """Run (or resume) ``sweep``, recording every cell in ``history``.

    Args:
        sweep: the grid.
        history: an :class:`diffbench.engine.history.History` (``add``, ``list``); results are added
            from the calling thread only.
        run_fn: ``run(cfg, on_event, cancel) -> RunResult``; used when ``workers`` is not
            given. Default: ``session.launch`` (diffbench.engine.session.Session: a child per
            cell, or in process, as the session decides); without a session, an in-process
            Session's.
        preflight: checks a RunConfig before anything loads (default the session's
            preflight, diffbench.engine.preflight.preflight, when run_fn is the default); see
            :func:`diffbench.engine.sweep.plan.prepare`.
        on_event: ``(outcome, event)`` for every event of the running cell (progress).
        on_cell_start / on_cell_done: ``(outcome, total_cells)``; resumed cells get only
            on_cell_done with ``outcome.resumed`` True.
        stop: when set, no new cell starts; the running cell(s) finish and are recorded.
        cancel: passed to run_fn: setting it cancels the running cell (recorded as cancelled,
            run again on resume).
        workers: ``[(device_name, run_fn)]``: run cells in parallel, one at a time per worker,
            each cell dealt to the next free worker. A cell that fails on one device is tried
            once on each other working device before it is recorded as failed; a device that
            fails RETIRE_AFTER_FAILURES cells in a row gets no more cells (while another
            works). Other devices' results are never affected.
        attach_baseline: fill PSNR/SSIM against each cell's eager baseline
            (diffbench.engine.quality.attach_baseline) before recording.
        on_notice: one-line notes for the user (a device retired).
        session: the diffbench.engine.session.Session that launches cells (see run_fn).

    Returns:
        One CellOutcome per cell, in grid order (``result`` None = not run: stopped early).

    Raises:
        ConfigError / ModelNotFoundError: bad input (before any cell runs).
    """
    from diffbench.engine.session import Session

    if run_fn is None and not workers:
        launcher = session if session is not None else Session(history, in_process=True)
        run_fn = launcher.launch
        if preflight is None:
            preflight = launcher.preflight
    compare = Session(history)
    history_path = getattr(history, "path", None)
    if sweep.image_dir is None and not sweep.base.output_image and history_path:
        sweep.image_dir = os.path.join(os.path.dirname(os.fspath(history_path)), "images",
                                       sweep.sweep_id)
    prepared = prepare(sweep, preflight)
    done = finished_cells(history, sweep)
    total = len(prepared)
    outcomes = [CellOutcome(i, cell, cell_key(cell)) for i, (cell, _, _) in enumerate(prepared)]
    todo: list[tuple[CellOutcome, RunConfig, Optional[str]]] = []
    for outcome, (_, cfg, reason) in zip(outcomes, prepared):
        if outcome.key in done:
            outcome.result, outcome.resumed = done[outcome.key], True
            if on_cell_done:
                on_cell_done(outcome, total)
        else:
            todo.append((outcome, cfg, reason))

    def record(outcome: CellOutcome, result: RunResult) -> None:
        outcome.result = _tag(result, sweep, outcome.key, outcome.device)
        outcome.device = result.config.get("sweep_device", outcome.device)  # Ray: node + GPU
        if attach_baseline and result.status == "finished" and \
                not getattr(result, "baseline_checked", False):  # else its child compared
            compare.attach_baseline(result)  # a problem becomes a notice, never a lost run
        history.add(result)
        if on_cell_done:
            on_cell_done(outcome, total)

    if workers and len(workers) > 1:
        run_parallel(todo, workers, record, on_event, on_cell_start, stop, cancel, total,
                     on_notice)
    else:
        device, run_fn = workers[0] if workers else ("", run_fn)
        assert run_fn is not None
        for outcome, cfg, reason in todo:
            if stop is not None and stop.is_set():
                break
            outcome.device = device
            if on_cell_start:
                on_cell_start(outcome, total)
            record(outcome, run_cell(run_fn, cfg, reason, outcome, on_event, cancel))
    if attach_baseline:
        _late_baselines(outcomes, history)
    return outcomes


def _late_baselines(outcomes: list[CellOutcome], history: Any) -> None:
    """Attach similarity to cells that finished before their baseline cell (parallel
    devices, or a grid listing the compiler before "none") and update them in the history."""
    from diffbench.engine.quality import attach_baseline as attach

    for outcome in outcomes:
        result = outcome.result
        if (result is None or outcome.resumed or result.status != "finished"
                or result.metrics.baseline_run_id):
            continue
        try:
            if attach(result, history):
                history.add(result)
        except Exception as exc:  # a bonus figure; the run itself is already recorded
            result.notices.append(f"baseline similarity not computed: {exc}")
