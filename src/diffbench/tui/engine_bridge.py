"""The dashboard's only door into the engine.

Everything heavy (diffbench.engine.runner, diffbench.engine.client, and through them torch and diffusers) is
imported lazily inside :func:`run_engine`, which runs in a Textual thread worker; the rest of
this module uses only the cheap engine modules (config, events, result, errors) so the
dashboard opens without importing torch.

Runs go to a child process (diffbench.engine.client.run_in_child) by default, so a crash or an
out-of-memory kill cannot take the dashboard down; ``in_process=True`` or a missing
diffbench.engine.client falls back to diffbench.engine.runner.run in this process.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Optional

from diffbench.engine import events as ev
from diffbench.engine.config import RunConfig
from diffbench.engine.errors import DiffbenchError
from diffbench.engine.result import RunResult
from diffbench.tui import messages as msg

#: Step times kept for the live sparkline (newest last).
SPARK_POINTS = 120

#: An engine entry point: (cfg, on_event, cancel) -> RunResult, as diffbench.engine.runner.run.
EngineFn = Callable[[RunConfig, Callable[[Any], None], threading.Event], RunResult]


def _optional_module(name: str) -> Any:
    """Import ``name`` or return None when that module does not exist (yet)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


# ----------------------------------------------------------------------------- running
class EventTranslator:
    """Turns engine events into dashboard messages posted with ``post`` (thread-safe).

    Keeps the step history of the current call so every StepProgress message is complete on
    its own (older ones may be dropped by Textual's ``can_replace``).
    """

    def __init__(self, post: Callable[[Any], Any], token: int) -> None:
        self.post = post
        self.token = token
        self._call_key: Optional[tuple[str, int]] = None
        self._recent: deque[float] = deque(maxlen=SPARK_POINTS)
        self._sum_after_first_ms = 0.0

    def __call__(self, event: Any) -> None:
        token = self.token
        if isinstance(event, ev.StepFinished):
            self._on_step(event)
        elif isinstance(event, ev.PhaseStarted):
            self.post(msg.PhaseChanged(token, event.phase, event.detail, None, event.t_s))
        elif isinstance(event, ev.PhaseFinished):
            self.post(msg.PhaseChanged(token, event.phase, "", event.elapsed_s, event.t_s))
        elif isinstance(event, ev.CompileProgress):
            self.post(msg.CompileUpdate(token, event.frames, event.graphs, event.kernels,
                                        event.recompiles, event.elapsed_s, event.message))
            if event.message:
                self.post(msg.LogLine(token, "info", event.message))
        elif isinstance(event, ev.LogMessage):
            self.post(msg.LogLine(token, event.level, event.text))
        # RunFinished / RunFailed: the returned RunResult is authoritative; see run_engine.

    def _on_step(self, event: "ev.StepFinished") -> None:
        key = (event.call, event.warmup_index)
        if key != self._call_key or event.index == 1:
            self._call_key = key
            self._recent.clear()
            self._sum_after_first_ms = 0.0
        it_per_s = eta_s = None
        if event.index > 1:
            # step 1 includes prompt encoding: kept out of the sparkline, as out of step_ms
            self._recent.append(float(event.step_ms))
            # OneDiff's definition: steps 2..N over the time since step 1's end.
            self._sum_after_first_ms += float(event.step_ms)
            if self._sum_after_first_ms > 0:
                it_per_s = (event.index - 1) / (self._sum_after_first_ms / 1000.0)
                eta_s = max(0, event.total - event.index) / it_per_s
        self.post(msg.StepProgress(self.token, event.call, event.index, event.total,
                                   float(event.step_ms), tuple(self._recent), it_per_s, eta_s,
                                   event.warmup_index))


def default_engine(in_process: bool = False) -> tuple[EngineFn, str]:
    """The engine entry point and a short label ("child process" / "in process").

    Imported here, inside the worker thread: diffbench.engine.runner pulls in torch.
    """
    if not in_process and os.environ.get("DIFFBENCH_IN_PROCESS") != "1":
        client = _optional_module("diffbench.engine.client")
        if client is not None and hasattr(client, "run_in_child"):
            return client.run_in_child, "child process"
    runner = importlib.import_module("diffbench.engine.runner")

    def run_in_process(cfg: RunConfig, on_event: Any, cancel: threading.Event) -> Any:
        # The child path enforces cfg.timeout_s in the client; in process the runner does.
        return runner.run(cfg, on_event, cancel, timeout_s=cfg.timeout_s)

    return run_in_process, "in process"


def kill_child_runs() -> None:
    """Stop every child-process run of this interpreter now (SIGKILL to each child's process
    group), for a quit that will not wait: the run worker then returns at once instead of
    keeping the dashboard's shutdown waiting for a graceful cancel (up to the client's grace
    period). Uses diffbench.engine.client.kill_all_children, the exit hook that guarantees no orphan at
    interpreter exit; a no-op when no child run was ever started (module not imported).
    """
    client = sys.modules.get("diffbench.engine.client")
    kill = getattr(client, "kill_all_children", None)
    if kill is not None:
        kill()


def run_engine(cfg: RunConfig, post: Callable[[Any], Any], token: int,
               cancel: threading.Event, engine: Optional[EngineFn] = None,
               in_process: bool = False) -> None:
    """Run ``cfg`` to the end and post messages; always posts exactly one RunEnded last.

    Call from a worker thread. Never raises: bad input (DiffbenchError) and engine bugs end
    as a failed RunEnded with a one-line reason, so nothing is lost and no traceback reaches
    the screen.
    """
    translate = EventTranslator(post, token)
    try:
        if engine is None:
            engine, where = default_engine(in_process)
            post(msg.LogLine(token, "info", f"running {cfg.model} ({where})"))
            if where == "in process":  # the child process runs its own preflight
                preflight = getattr(_optional_module("diffbench.engine.runner"), "preflight", None)
                if preflight is not None:
                    preflight(cfg)
        result = engine(cfg, translate, cancel)
    except DiffbenchError as exc:
        post(msg.RunEnded(token, "failed", None, str(exc)))
        return
    except Exception as exc:  # an engine bug: report it in one line, keep the dashboard up
        post(msg.RunEnded(token, "failed", None, f"{type(exc).__name__}: {exc}"))
        return
    if isinstance(result, dict):
        result = RunResult.from_dict(result)
    reason = (result.error or "") if result is not None else "the engine returned no result"
    status = result.status if result is not None else "failed"
    if status == "finished" and cancel.is_set():
        reason = "cancel came after the run finished"
    post(msg.RunEnded(token, status, result, reason))


# ----------------------------------------------------------------------------- profiles
def _profile_dirs() -> list[Path]:
    here = Path(__file__).resolve().parent.parent
    return [here / "profiles", here / "engine" / "profiles"]


def list_profiles() -> list[str]:
    """Names of the shipped profiles: the ``*.toml`` files of the ``profiles`` package.

    Only file names are read (diffbench.engine.profiles.list_profiles parses and validates every file,
    which the first screen should not wait for); :func:`load_profile` validates the profile
    the user picks and reports a broken one in one line.
    """
    import importlib.util

    spec = importlib.util.find_spec("profiles")  # finds the folder without importing
    folders = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    names = set()
    for folder in folders + _profile_dirs():
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.toml"))
    return sorted(names)


def load_profile(name_or_path: str) -> dict[str, Any]:
    """RunConfig fields of a profile (name or .toml path) as a dict.

    Raises:
        ConfigError: unknown profile or unreadable TOML (one line).
    """
    profiles = _optional_module("diffbench.engine.profiles")
    for fn_name in ("load_profile",):
        fn = getattr(profiles, fn_name, None) if profiles is not None else None
        if fn is not None:
            data = fn(name_or_path)
            if isinstance(data, RunConfig):
                return data.to_dict()
            if hasattr(data, "settings"):  # diffbench.engine.profiles.Profile
                return dict(data.settings)
            return dict(data)
    path = Path(name_or_path)
    if not path.suffix:
        path = next((d / f"{name_or_path}.toml" for d in _profile_dirs()
                     if (d / f"{name_or_path}.toml").is_file()), path)
    return read_profile_file(path)


def read_profile_file(path: Path) -> dict[str, Any]:
    """A profile TOML's settings: flat keys, or the [config]/[run] table if present.

    Raises:
        ConfigError: missing file or invalid TOML.
    """
    import tomllib

    from diffbench.engine.errors import ConfigError

    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"profile not found: {path}") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read profile {path}: {exc}") from None
    for table in ("config", "run"):
        if isinstance(data.get(table), dict) and "model" in data[table]:
            data = data[table]
            break
    return {k: v for k, v in data.items() if not isinstance(v, dict) or k in (
        "extra_call_kwargs", "compiler_config", "quantize_config")}


def save_profile(cfg: RunConfig, path: Path) -> Path:
    """Write ``cfg``'s non-default settings as a profile TOML (flat keys) to ``path``.

    Raises:
        OSError: the file cannot be written.
    """
    import tomli_w

    defaults = RunConfig().to_dict()
    data = {k: v for k, v in cfg.to_dict().items()
            if v is not None and (v != defaults.get(k) or k == "model")}
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(tomli_w.dumps(data).encode())
    os.replace(tmp, path)
    return path


# ----------------------------------------------------------------------------- history
class MemoryHistory:
    """In-memory stand-in for diffbench.engine.history.History (used when that module is absent)."""

    persistent = False

    def __init__(self) -> None:
        self._runs: dict[str, RunResult] = {}

    def add(self, result: RunResult) -> None:
        self._runs[result.run_id] = result

    def get(self, run_id: str) -> Optional[RunResult]:
        return self._runs.get(run_id)

    def list(self, model: Optional[str] = None, compiler: Optional[str] = None,
             status: Optional[str] = None, limit: Optional[int] = None) -> list[RunResult]:
        runs = [r for r in reversed(self._runs.values())
                if (model is None or r.config.get("model") == model)
                and (compiler is None or r.config.get("compiler") == compiler)
                and (status is None or r.status == status)]
        return runs[:limit] if limit else runs

    def delete(self, run_id: str) -> bool:
        return self._runs.pop(run_id, None) is not None


def open_history() -> Any:
    """diffbench.engine.history.History() (SQLite, persists across starts) or a MemoryHistory."""
    history = _optional_module("diffbench.engine.history")
    if history is not None and hasattr(history, "History"):
        store = history.History()
        if not hasattr(store, "persistent"):
            try:
                store.persistent = True
            except AttributeError:
                pass
        return store
    return MemoryHistory()


# ----------------------------------------------------------------------------- export
def export_toml(results: list[RunResult], path: Path) -> Path:
    """Write ``results`` as one TOML file (diffbench.engine.export.write_toml); returns the path.

    Raises:
        OSError: the file cannot be written. ConfigError/ValueError from the exporter.
    """
    export = importlib.import_module("diffbench.engine.export")
    export.write_toml(list(results), str(path))
    return Path(path)


def default_export_path(results: list[RunResult], folder: Optional[Path] = None) -> Path:
    """``diffbench-<run_id>.toml`` for one run, ``diffbench-<N>-runs-<time>.toml`` for more."""
    folder = Path(folder or os.getcwd())
    if len(results) == 1:
        return folder / f"diffbench-{results[0].run_id}.toml"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return folder / f"diffbench-{len(results)}-runs-{stamp}.toml"


# ----------------------------------------------------------------------------- analysis
# Sweeps, the throughput fit and image similarity (diffbench.engine.sweep / throughput / quality / plot).
# Planning is cheap (diffbench.engine.sweep imports no torch); running happens in thread workers.
def plan_sweep(base: RunConfig, specs: list[str]) -> tuple[Any, list[dict[str, str]],
                                                           dict[str, str]]:
    """A sweep of ``base`` over ``--grid``-style specs (``"compiler=none,compile"``).

    Returns:
        (diffbench.engine.sweep.Sweep, its cells as {field: value text} in grid order, the baseline
        cell's values as text).

    Raises:
        ConfigError: a bad spec, field or value, or an invalid cell (named).
    """
    from diffbench.engine import sweep as sw

    sweep = sw.Sweep(base=base, grid=sw.parse_grid(specs))
    for cell in sweep.cells():  # validate every cell before anything runs
        sweep.config_for(cell)
    cells = [{k: sw.format_value(v) for k, v in cell.items()} for cell in sweep.cells()]
    baseline = {k: sw.format_value(v) for k, v in sweep.baseline.items()}
    return sweep, cells, baseline


def check_axes(sweep: Any, rows: list[str], cols: list[str]) -> tuple[list[str], list[str]]:
    """diffbench.engine.sweep.split_axes: the matrix rows/cols (ConfigError for a field not swept)."""
    from diffbench.engine import sweep as sw

    return sw.split_axes(sweep, rows, cols)


def run_sweep(sweep: Any, history: Any, on_cell: Callable[..., Any],
              on_step: Callable[[str, int, int], Any], stop: threading.Event,
              cancel: threading.Event, engine: Optional[EngineFn] = None,
              in_process: bool = False) -> None:
    """Run (or resume) ``sweep``, recording each cell in ``history``. Call from a worker.

    Cells run one at a time through ``engine`` (tests), else the child-process client (one
    child per cell) or diffbench.engine.runner.run in process, as single runs do.

    Args:
        on_cell: ``(key, status, result, resumed)`` when a cell starts (status "running",
            result None) and when it is recorded (result a RunResult).
        on_step: ``(key, index, total)`` for each denoising step of a cell's measured call.
        stop: no new cell starts once set (the running cell finishes and is recorded).
        cancel: cancels the running cell too (recorded as cancelled; runs again on resume).

    Raises:
        DiffbenchError: bad input before any cell ran (one line).
    """
    from diffbench.engine import sweep as sw

    preflight = None
    if engine is None:
        engine, where = default_engine(in_process)
        if where == "in process":
            preflight = getattr(_optional_module("diffbench.engine.runner"), "preflight", None)

    def on_event(outcome: Any, event: Any) -> None:
        if isinstance(event, ev.StepFinished) and event.call == "measured":
            on_step(outcome.key, event.index, event.total)

    sw.run_sweep(sweep, history, engine, preflight=preflight, on_event=on_event,
                 on_cell_start=lambda o, total: on_cell(o.key, "running", None, False),
                 on_cell_done=lambda o, total: on_cell(o.key, o.status, o.result, o.resumed),
                 stop=stop, cancel=cancel)


def parse_steps(text: str) -> list[int]:
    """Step counts for the throughput fit: ``"2,4,8"`` or ``"2:20:2"`` (ConfigError)."""
    from diffbench.engine.throughput import parse_steps as parse

    return parse(text)


def run_throughput(cfg: RunConfig, steps: list[int], repeats: int,
                   on_point: Callable[[int, int, float], Any],
                   on_status: Callable[[str], Any], cancel: threading.Event,
                   threads: Optional[int] = None, timer: Optional[Callable[[int], float]] = None
                   ) -> Any:
    """diffbench.engine.throughput.run_throughput in this process (call from a worker): loads the
    pipeline once, warms it, times every step count. ``timer`` replaces the pipeline (tests).

    Returns:
        diffbench.engine.throughput.ThroughputResult (``fit``: base_s, per_step_s, r2).

    Raises:
        DiffbenchError: bad input (before loading) or RunCancelled.
    """
    from diffbench.engine import throughput

    if timer is None:
        preflight = getattr(_optional_module("diffbench.engine.runner"), "preflight", None)
        if preflight is not None:
            preflight(cfg)

    def on_event(event: Any) -> None:
        if isinstance(event, ev.PhaseStarted):
            on_status(f"{event.phase}: {event.detail}" if event.detail else event.phase)

    return throughput.run_throughput(cfg, steps, repeats, timer=timer, on_event=on_event,
                                     on_point=on_point, cancel=cancel, threads=threads)


def throughput_plot(result: Any, width: int = 60, height: int = 12) -> list[str]:
    """diffbench.engine.plot.text_scatter of the measured points and the fitted line."""
    from diffbench.engine.plot import text_scatter

    fit = result.fit
    return text_scatter(result.steps, result.times_s, fit.per_step_s if fit else None,
                        fit.base_s if fit else None, width=width, height=height,
                        x_label="denoising steps", y_label="pipeline time (s)")


def find_image_baseline(run: RunResult, history: Any) -> Optional[RunResult]:
    """The run ``run`` should be compared with: its ``metrics.baseline_run_id`` when stored,
    else diffbench.engine.quality.find_baseline (same settings, eager, finished, image on disk)."""
    wanted = run.metrics.baseline_run_id
    if wanted:
        try:
            found = history.get(wanted)
        except Exception:  # deleted since: look for another baseline
            found = None
        if found is not None:
            return found
    from diffbench.engine.quality import find_baseline

    return find_baseline(run, history)


def compare_images(image: str, reference: str) -> tuple[float, float]:
    """(PSNR dB, SSIM) of ``image`` against ``reference`` (diffbench.engine.quality.compare_images;
    numpy and scikit-image load here, in the worker). Raises OSError / ValueError."""
    from diffbench.engine.quality import compare_images as compare

    return compare(image, reference)
