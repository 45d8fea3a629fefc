"""Sweeps: a grid over RunConfig fields, each cell a normal run recorded in the history.

A sweep is a base :class:`~diffbench.engine.config.RunConfig` plus a grid ``{field: [values...]}``; the
cells are the cartesian product in grid order (first key slowest). Each cell is a full run —
its own load, warmups (so every resolution is warmed before it is measured) and measured call,
its own seeded generator and its own recompile count — unlike OneDiff's
``--run_multiple_resolutions``, which reused one warmed pipeline and one generator.

Results are tagged in ``RunResult.config`` with ``sweep_id`` and ``sweep_cell`` (the cell key,
``"compiler=compile,height=256"``). Running the same sweep again resumes it: cells already
finished under that sweep id are skipped; failed or cancelled cells run again. A cell that
fails is recorded (status "failed", the reason in ``error``) and the sweep goes on.

The pseudo-field ``size`` sets height and width together: ``size=512`` or ``size=768x512``
(width x height).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Sequence

from diffbench.engine import catalog
from diffbench.engine.config import RunConfig
from diffbench.engine.errors import AcceleratorUnavailableError, ConfigError, DiffbenchError
from diffbench.engine.result import RunResult

#: Config keys added to RunResult.config by a sweep.
SWEEP_ID_KEY = "sweep_id"
SWEEP_CELL_KEY = "sweep_cell"
#: Pseudo-field setting height and width at once.
SIZE_KEY = "size"
#: RunConfig fields a sweep may vary (the catalog's sweepable settings); the others
#: control the run, not the pipeline.
SWEEPABLE = frozenset(catalog.sweepable_keys())

RunFn = Callable[..., RunResult]


# ------------------------------------------------------------------ grid parsing
def coerce_value(name: str, text: Any) -> Any:
    """Convert one grid (or ``--set``) value given as text to the type of RunConfig field
    ``name``, through the catalog's one coercion (diffbench.engine.catalog.coerce).

    ints/floats parse as numbers, bools accept true/false/yes/no/1/0, dict fields parse JSON,
    Optional fields take "none"/"null" as None (string fields keep "none": it is a compiler
    name). Non-string values (from a TOML sweep file) pass through unchanged.

    Raises:
        ConfigError: unknown field, or a value that does not parse, in one line
            (``.field`` = ``name`` for a setting).
    """
    if name == SIZE_KEY:
        return parse_size(text)
    if name not in catalog.BY_NAME:
        raise ConfigError(f"cannot sweep {name!r}: not a run setting (see `diffbench run "
                          f"--help`; 'size' sets height and width together)")
    if name not in SWEEPABLE:
        raise ConfigError(f"cannot sweep {name!r}: it controls the run, not the pipeline",
                          field=name)
    try:
        return catalog.coerce(name, text)
    except ConfigError:
        setting = catalog.BY_NAME[name]
        raise ConfigError(f"grid value {text.strip()!r} for {name} is not a valid "
                          f"{setting.kind_name}", field=name) from None


def parse_size(value: Any) -> str:
    """Normalise a size value to "WxH" text (512 -> "512x512")."""
    text = str(value).strip().lower()
    parts = text.split("x")
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ConfigError(f"size must be N or WIDTHxHEIGHT in pixels, got {value!r}")
    return f"{int(parts[0])}x{int(parts[1])}"


def parse_grid(specs: Sequence[str]) -> dict[str, list]:
    """Parse ``--grid`` flags (``"compiler=none,compile"``, ``"height=256,512"``) to a grid.

    A field given twice has its values appended. Values keep their order; a repeated value
    counts once.

    Raises:
        ConfigError: a spec without ``=``, an empty value list, or a bad value.
    """
    grid: dict[str, list] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise ConfigError(f"--grid wants FIELD=V1,V2,..., got {spec!r}")
        items = [v for v in values.split(",") if v.strip() != ""] if values.strip() else []
        if not items:
            raise ConfigError(f"--grid {name}= has no values")
        for item in items:
            value = coerce_value(name, item)
            bucket = grid.setdefault(name, [])
            if value not in bucket:
                bucket.append(value)
    return grid


def normalise_grid(grid: dict[str, Any]) -> dict[str, list]:
    """Check a grid from a sweep file: every key a sweepable field, values a non-empty list."""
    result: dict[str, list] = {}
    for name, values in grid.items():
        key = name.replace("-", "_")
        if not isinstance(values, list):
            values = [values]
        if not values:
            raise ConfigError(f"grid {key} has no values")
        result[key] = []
        for value in values:
            value = coerce_value(key, value)
            if value not in result[key]:
                result[key].append(value)
    return result


def load_sweep_file(path: str) -> tuple[dict, dict[str, list], dict]:
    """Read a TOML sweep file: ``[base]`` (RunConfig fields), ``[grid]`` (field = [values])
    and optionally ``[sweep]`` (``id``, ``rows``, ``cols``, ``baseline`` like the flags).

    Example::

        [base]
        model = "tiny-sd15"
        steps = 4
        [grid]
        compiler = ["none", "compile"]
        size = [256, 512]
        [sweep]
        rows = ["compiler"]
        cols = ["size"]

    Returns:
        (base fields, grid, sweep options).

    Raises:
        ConfigError: unreadable file, TOML syntax error, unknown table/field, empty grid.
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read sweep file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"sweep file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"base", "grid", "sweep"})
    if unknown:
        raise ConfigError(f"sweep file {path}: unknown table(s) {', '.join(unknown)}; "
                          f"use [base], [grid] and [sweep]")
    grid = normalise_grid(data.get("grid") or {})
    if not grid:
        raise ConfigError(f"sweep file {path} has an empty [grid]")
    options = dict(data.get("sweep") or {})
    extra = sorted(set(options) - {"id", "rows", "cols", "baseline"})
    if extra:
        raise ConfigError(f"sweep file {path}: unknown [sweep] key(s) {', '.join(extra)}")
    return dict(data.get("base") or {}), grid, options


def format_value(value: Any) -> str:
    """A grid value as it appears in a cell key and in tables."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def cell_key(cell: dict) -> str:
    """The cell's identity in its sweep: ``"compiler=compile,height=256"`` (grid order)."""
    return ",".join(f"{k}={format_value(v)}" for k, v in cell.items())


# ------------------------------------------------------------------ the sweep
@dataclass
class Sweep:
    """A base config and a grid. ``baseline`` is a partial cell naming the reference each cell
    is compared with (default: ``{"compiler": "none"}`` when the grid sweeps compilers over
    "none", else the first value of the first grid field)."""

    base: RunConfig
    grid: dict[str, list]
    sweep_id: str = ""
    baseline: dict = field(default_factory=dict)
    #: Folder for the cells' images when the base config names no output image (run_sweep
    #: sets it next to the history: <history folder>/images/<sweep id>/), so every cell has a
    #: PNG to compare with its baseline.
    image_dir: Optional[str] = None

    def __post_init__(self) -> None:
        if not self.grid:
            raise ConfigError("a sweep needs at least one --grid FIELD=V1,V2")
        self.grid = normalise_grid(self.grid)
        if not self.sweep_id:
            self.sweep_id = default_sweep_id(self.base, self.grid)
        if not self.baseline:
            self.baseline = default_baseline(self.grid)
        for name, value in self.baseline.items():
            if name not in self.grid or value not in self.grid[name]:
                raise ConfigError(f"baseline {name}={format_value(value)} is not in the grid")

    def cells(self) -> list[dict]:
        """Every cell as an ordered dict {field: value}, first grid field slowest."""
        names = list(self.grid)
        return [dict(zip(names, combo)) for combo in itertools.product(*self.grid.values())]

    def config_for(self, cell: dict) -> RunConfig:
        """The RunConfig of one cell (validated).

        Raises:
            ConfigError: the combination is invalid; the message names the cell.
        """
        changes = {}
        for name, value in cell.items():
            if name == SIZE_KEY:
                width, height = (int(p) for p in value.split("x"))
                changes.update(width=width, height=height)
            else:
                changes[name] = value
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in cell_key(cell))
        if self.base.output_image:  # one image per cell, never overwritten by the next
            stem, ext = os.path.splitext(self.base.output_image)
            changes["output_image"] = f"{stem}-{safe}{ext or '.png'}"
        elif self.image_dir:
            os.makedirs(self.image_dir, exist_ok=True)
            changes["output_image"] = os.path.join(self.image_dir, f"{safe}.png")
        try:
            return self.base.replace(**changes)
        except ConfigError as exc:
            raise ConfigError(f"cell {cell_key(cell)}: {exc}") from None

    def baseline_cell(self, cell: dict) -> dict:
        """The reference cell of ``cell``: the same cell with the baseline values put in."""
        ref = dict(cell)
        ref.update(self.baseline)
        return ref


def default_baseline(grid: dict[str, list]) -> dict:
    """{"compiler": "none"} when the grid sweeps compilers including none, else the first
    value of the first grid field."""
    if "none" in grid.get("compiler", []):
        return {"compiler": "none"}
    first = next(iter(grid))
    return {first: grid[first][0]}


def default_sweep_id(base: RunConfig, grid: dict[str, list]) -> str:
    """A stable id from the base config and grid, so rerunning the same sweep resumes it."""
    payload = json.dumps({"base": base.to_dict(), "grid": grid}, sort_keys=True, default=str)
    return "sweep-" + hashlib.sha1(payload.encode()).hexdigest()[:10]


@dataclass
class CellOutcome:
    """One cell's outcome. ``resumed`` = finished in an earlier pass and not run again;
    ``device`` names the device that ran it (multi-device sweeps), else ""."""

    index: int
    cell: dict
    key: str
    result: Optional[RunResult] = None
    resumed: bool = False
    device: str = ""

    @property
    def status(self) -> str:
        return self.result.status if self.result is not None else "pending"


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


def _failed_result(cfg_dict: dict, message: str, status: str = "failed") -> RunResult:
    return RunResult(status=status, config=dict(cfg_dict), error=message)


def prepare(sweep: Sweep, preflight: Optional[Callable[[RunConfig], Any]] = None
            ) -> list[tuple[dict, RunConfig, Optional[str]]]:
    """Validate every cell before anything runs.

    Returns:
        [(cell, config, unavailable_reason)] — the reason is set when the cell's accelerator
        cannot run here (that cell is recorded as failed; the others still run).

    Raises:
        ConfigError / ModelNotFoundError: bad input in any cell, naming the cell.
    """
    prepared = []
    for cell in sweep.cells():
        cfg = sweep.config_for(cell)
        reason = None
        if preflight is not None:
            try:
                preflight(cfg)
            except AcceleratorUnavailableError as exc:
                reason = str(exc)
            except DiffbenchError as exc:
                raise type(exc)(f"cell {cell_key(cell)}: {exc}") from None
        prepared.append((cell, cfg, reason))
    return prepared


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
            preflight, diffbench.engine.runner.preflight, when run_fn is the default); see
            :func:`prepare`.
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
        _run_parallel(todo, workers, record, on_event, on_cell_start, stop, cancel, total,
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
            record(outcome, _run_cell(run_fn, cfg, reason, outcome, on_event, cancel))
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


def _run_cell(run_fn: RunFn, cfg: RunConfig, reason: Optional[str], outcome: CellOutcome,
              on_event: Optional[Callable[[CellOutcome, Any], None]],
              cancel: Optional[threading.Event]) -> RunResult:
    """Run one cell; any exception becomes a failed result (never lose the sweep)."""
    if reason is not None:
        return _failed_result(cfg.to_dict(), reason)
    callback = (lambda event: on_event(outcome, event)) if on_event else None
    try:
        result = run_fn(cfg, callback, cancel)
    except DiffbenchError as exc:
        return _failed_result(cfg.to_dict(), str(exc))
    except Exception as exc:  # a bug or crash in one cell must not end the sweep
        return _failed_result(cfg.to_dict(), f"{type(exc).__name__}: {exc}")
    if not isinstance(result, RunResult):
        return _failed_result(cfg.to_dict(), "run returned no result")
    if not result.config:
        result.config = cfg.to_dict()
    return result


#: A device whose cells fail this many times in a row stops taking cells (while another
#: device is still working): a broken GPU must not fail the rest of the sweep.
RETIRE_AFTER_FAILURES = 2
_WAIT = object()


class _Dealer:
    """Hands cells to free workers. A cell that fails on one device goes back to the queue
    once per other device still working (an OOM or crash there may be that GPU's fault);
    ``take`` never gives a worker a cell it already failed while another could run it."""

    def __init__(self, todo: list, devices: list[str]) -> None:
        self.lock = threading.Lock()
        self.items = [(outcome, cfg, reason, frozenset()) for outcome, cfg, reason in todo]
        self.active = set(devices)
        self.in_flight = 0
        self.failures_in_row = {d: 0 for d in devices}
        self.notes: dict[int, list[str]] = {}

    def take(self, device: str) -> Any:
        """The next cell for ``device``; _WAIT to poll again later; None when done."""
        with self.lock:
            for i, item in enumerate(self.items):
                if device not in item[3]:
                    self.in_flight += 1
                    return self.items.pop(i)
            if self.items and not any(self.active - item[3] for item in self.items):
                self.in_flight += 1  # every working device failed it: run it anyway
                return self.items.pop(0)
            return _WAIT if self.items or self.in_flight else None

    def done(self, device: str, item: tuple, result: RunResult) -> tuple[bool, bool]:
        """Book a result: (record it now?, retire this device?)."""
        outcome, cfg, reason, tried = item
        with self.lock:
            self.in_flight -= 1
            if result.status != "failed" or reason is not None:
                self.failures_in_row[device] = 0
                return True, False
            self.failures_in_row[device] += 1
            retire = (self.failures_in_row[device] >= RETIRE_AFTER_FAILURES
                      and len(self.active) > 1)
            if retire:
                self.active.discard(device)
            tried = tried | {device}
            if self.active - tried:
                self.notes.setdefault(outcome.index, []).append(
                    f"failed on {device} ({result.error}); retried on another device")
                self.items.insert(0, (outcome, cfg, reason, tried))
                return False, retire
            return True, retire


def _run_parallel(todo, workers, record, on_event, on_cell_start, stop, cancel, total,
                  on_notice=None) -> None:
    """Deal cells to free workers (one thread each); record results in this thread."""
    dealer = _Dealer(todo, [device for device, _ in workers])
    finished: "queue.Queue" = queue.Queue()

    def work(device: str, fn: RunFn) -> None:
        while not (stop is not None and stop.is_set()):
            item = dealer.take(device)
            if item is None:
                break
            if item is _WAIT:
                time.sleep(0.05)
                continue
            outcome, cfg, reason, _ = item
            outcome.device = device
            finished.put(("start", outcome, None))
            result = _run_cell(fn, cfg, reason, outcome, on_event, cancel)
            keep, retire = dealer.done(device, item, result)
            if keep:
                result.notices.extend(dealer.notes.pop(outcome.index, []))
                finished.put(("done", outcome, result))
            if retire:
                finished.put(("notice", None, f"{device} failed {RETIRE_AFTER_FAILURES} "
                                              f"cells in a row; no more cells go to it"))
                break
        finished.put(("exit", None, None))

    threads = [threading.Thread(target=work, args=(device, fn), daemon=True,
                                name=f"sweep-{device}") for device, fn in workers]
    for thread in threads:
        thread.start()
    alive = len(threads)
    while alive:
        kind, outcome, payload = finished.get()
        if kind == "exit":
            alive -= 1
        elif kind == "start":
            if on_cell_start:
                on_cell_start(outcome, total)
        elif kind == "notice":
            if on_notice:
                on_notice(payload)
        else:
            record(outcome, payload)
    for thread in threads:
        thread.join()


# ------------------------------------------------------------------ summary
def peak_gib(result: RunResult) -> Optional[float]:
    """Peak memory of the measured call (GiB): torch allocated on GPU, process RSS on CPU
    (diffbench.engine.metrics.peak_gib)."""
    from diffbench.engine.metrics import peak_gib as metric_peak_gib

    return metric_peak_gib(result.metrics)


def summarise(sweep: Sweep, outcomes: Iterable[CellOutcome]) -> list[dict]:
    """Per-cell figures: key, values, status, run_id, it_per_s, ratio (it/s over the
    baseline cell's), warmup_s, inference_s, peak_gib, recompiles, psnr_db, ssim, device,
    error. Missing figures are None."""
    outcomes = list(outcomes)
    by_key = {o.key: o for o in outcomes}
    rows = []
    for outcome in outcomes:
        result = outcome.result
        row: dict[str, Any] = {"key": outcome.key, "values": dict(outcome.cell),
                               "status": outcome.status, "device": outcome.device}
        if result is not None:
            m = result.metrics
            row.update(run_id=result.run_id, it_per_s=m.it_per_s, warmup_s=m.warmup_s,
                       inference_s=m.inference_s, peak_gib=peak_gib(result),
                       recompiles=m.recompiles, psnr_db=m.psnr_db, ssim=m.ssim,
                       image_flag=m.image_flag, error=result.error)
            ref = by_key.get(cell_key(sweep.baseline_cell(outcome.cell)))
            ref_ips = (ref.result.metrics.it_per_s
                       if ref is not None and ref.result is not None
                       and ref.result.status == "finished" else None)
            if m.it_per_s and ref_ips and result.status == "finished":
                row["ratio"] = m.it_per_s / ref_ips
        rows.append(row)
    return rows


def split_axes(sweep: Sweep, rows: Sequence[str] = (), cols: Sequence[str] = ()
               ) -> tuple[list[str], list[str]]:
    """Choose table axes: the user's rows/cols (grid fields), default rows = first field,
    cols = second; fields on neither axis join the rows.

    Raises:
        ConfigError: a named field is not in the grid, or on both axes.
    """
    names = list(sweep.grid)
    rows = [r.replace("-", "_") for r in rows]
    cols = [c.replace("-", "_") for c in cols]
    for name in [*rows, *cols]:
        if name not in names:
            raise ConfigError(f"{name!r} is not a grid field; the grid has {', '.join(names)}")
    if set(rows) & set(cols):
        raise ConfigError(f"{', '.join(sorted(set(rows) & set(cols)))} cannot be both a row "
                          f"and a column")
    if not rows and not cols:
        rows, cols = names[:1], names[1:2]
    elif not cols and len(names) > len(rows):
        cols = [n for n in names if n not in rows][:1]
    rows = rows + [n for n in names if n not in rows and n not in cols]
    return rows, cols


def to_toml_dict(sweep: Sweep, outcomes: Iterable[CellOutcome], rows: Sequence[str],
                 cols: Sequence[str]) -> dict:
    """The sweep summary as a TOML-ready dict: [sweep] (id, base, grid, baseline, rows, cols)
    and one [[cells]] table per cell. None values are left out (TOML has no null)."""
    return drop_none({
        "sweep": {"id": sweep.sweep_id, "rows": list(rows), "cols": list(cols),
                  "baseline": dict(sweep.baseline), "base": sweep.base.to_dict(),
                  "grid": dict(sweep.grid)},
        "cells": summarise(sweep, outcomes),
    })


def drop_none(value: Any) -> Any:
    """``value`` with None entries removed from dicts and lists, recursively (TOML has no
    null)."""
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [drop_none(v) for v in value if v is not None]
    return value


def write_toml(path: str, data: dict) -> str:
    """Write ``data`` to ``path`` as TOML atomically (diffbench.engine.atomic); return the path.
    None values are left out.

    Raises:
        ConfigError: the folder is missing or not writable.
    """
    import tomli_w

    from diffbench.engine.atomic import write_bytes

    return write_bytes(path, tomli_w.dumps(drop_none(data)).encode())


def check_output_path(path: Optional[str]) -> None:
    """Fail before a long sweep when ``-o`` cannot be written (ConfigError)."""
    if path:
        from diffbench.engine.atomic import check_writable_target

        check_writable_target(path)

