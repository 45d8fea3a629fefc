"""One session: launch a run or a measurement, record it, attach its baseline, export it.

Every way of running goes through :class:`Session` — ``diffbench run`` (cli/run.py), the
dashboard (tui/bridge), sweeps (engine/sweep/, one worker per device in
engine/multi_device.py), the throughput fit and the parameter check — so a run started
anywhere gets the same record: the same RunResult fields, PSNR/SSIM against the baseline of
diffbench.engine.baseline, the same history row.

Where a run executes is decided here and nowhere else (:meth:`Session.launch_mode`):

- an injected ``engine`` (a callable with diffbench.engine.runner.run's signature: test
  fakes, a remote worker) runs as given;
- ``in_process=True`` (or, with ``in_process=None``, the environment variable
  ``DIFFBENCH_IN_PROCESS=1``): in this process (diffbench.engine.runner.run in a thread; events still arrive in the caller's
  thread);
- otherwise a child process (diffbench.engine.client), so a crash, an out-of-memory kill or a
  hang cannot take the caller down, and torch is never imported here.

This module imports no torch: the engine's heavy modules load inside the calls.
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from diffbench.engine.errors import DiffbenchError
from diffbench.engine.result import RunResult

#: ``run(cfg, on_event, cancel) -> RunResult``: diffbench.engine.runner.run's signature.
RunFn = Callable[..., RunResult]
#: ``DIFFBENCH_IN_PROCESS=1`` runs everything in process (debugging with pdb, profilers).
IN_PROCESS_ENV = "DIFFBENCH_IN_PROCESS"

CHILD, IN_PROCESS, ENGINE = "child process", "in process", "engine"


class Session:
    """Launch, record, compare and export runs with one set of rules (module docstring).

    Args:
        history: where runs are recorded and baselines are looked up: a
            diffbench.engine.history.History, or any object with ``add`` and ``list`` (and
            optionally ``find_baseline``); None opens ``History()`` (the data folder's) when
            first needed.
        record: False (``--no-history``): nothing is recorded and no baseline is looked up.
        keep_image: a child keeps the image of a run without output_image in the data
            folder (default: ``record``; no record would ever point at the file).
        in_process: True: run in this process; False: in a child; None: in a child unless
            ``DIFFBENCH_IN_PROCESS=1`` (see :meth:`launch_mode`).
        engine: a run function to use instead of the runner or the child.
        python: interpreter for child processes (default: each config's ``python``, else
            this one).
        env: extra environment variables for child processes.
        timeout_s: wall-clock limit per run in seconds (default: each config's timeout_s).
        on_warning: called with one-line warnings (history not available or not updated,
            no baseline comparison); default: appended to the result's notices.
        stall_timeout_s: the child-run stall watchdog's bound in seconds
            (diffbench.engine.client.STALL_TIMEOUT_S when None; 0 turns it off).
    """

    def __init__(self, history: Any = None, *, record: bool = True,
                 keep_image: Optional[bool] = None,
                 in_process: Optional[bool] = False, engine: Optional[RunFn] = None,
                 python: Optional[str] = None, env: Optional[dict[str, str]] = None,
                 timeout_s: Optional[float] = None,
                 on_warning: Optional[Callable[[str], Any]] = None,
                 stall_timeout_s: Optional[float] = None) -> None:
        self._history = history
        self.record_runs = record
        self.keep_image = record if keep_image is None else keep_image
        self.in_process = in_process
        self.engine = engine
        self.python = python
        self.env = dict(env or {})
        self.timeout_s = timeout_s
        self.on_warning = on_warning
        self.stall_timeout_s = stall_timeout_s
        self.history_error: Optional[str] = None

    # ------------------------------------------------------------------ where it runs
    def launch_mode(self) -> str:
        """Where runs of this session execute: "engine" (the injected one), "in process" or
        "child process" — the one place this is decided."""
        if self.engine is not None:
            return ENGINE
        if self.in_process or (self.in_process is None
                               and os.environ.get(IN_PROCESS_ENV) == "1"):
            return IN_PROCESS
        return CHILD

    def start_child(self, cfg: Any) -> Any:
        """Start the child for ``cfg`` now, before the caller's own checks (its imports then
        overlap them); hand it to :meth:`run` / :meth:`launch` as ``child``. None when runs
        do not go to a child, or for another interpreter (``cfg.python``: the caller's
        preflight checks it before anything starts it)."""
        if self.launch_mode() != CHILD or (self.python or cfg.python) is not None:
            return None
        from diffbench.engine import child_process

        return child_process.start_child(env=self._child_env())

    def preflight(self, cfg: Any) -> Any:
        """diffbench.engine.preflight.preflight: model source, input image, compiler
        available.

        Raises:
            ConfigError / ModelNotFoundError / AcceleratorUnavailableError: one line.
        """
        from diffbench.engine import preflight

        return preflight.preflight(cfg)

    def _child_env(self) -> dict[str, str]:
        from diffbench.engine.worker import KEEP_IMAGE_ENV

        env = dict(self.env)
        if not self.keep_image:
            env[KEEP_IMAGE_ENV] = "0"
        return env

    # ------------------------------------------------------------------ running
    def launch(self, cfg: Any, on_event: Optional[Callable[[Any], Any]] = None,
               cancel: Optional[threading.Event] = None, child: Any = None,
               begun: Optional[RunResult] = None) -> RunResult:
        """Run ``cfg`` (a RunConfig) where :meth:`launch_mode` says; record nothing.

        This is the run function sweeps deal cells to. A child compares the image with the
        baseline itself when the session records (numpy and PIL are loaded there); the
        result then has ``baseline_checked`` True. Ctrl-C in this thread cancels the run
        (between steps) and still returns its result. Never raises for a failed run, except
        what the injected engine raises.

        ``begun``: the row :meth:`begin` recorded; the result takes its run id and start time
        so it replaces that row.
        """
        cancel = cancel if cancel is not None else threading.Event()
        mode = self.launch_mode()
        if mode == CHILD:
            from diffbench.engine import client

            extra: dict[str, Any] = {}
            if child is not None:
                extra["child"] = child
            if self.record_runs:
                extra.update(baseline=True, history=self.history_path())
            if begun is not None:
                extra.update(run_id=begun.run_id, started_at=begun.started_at)
            if self.stall_timeout_s is not None:
                extra["stall_timeout_s"] = self.stall_timeout_s
            return client.run_in_child(cfg, on_event, cancel, python=self.python,
                                       timeout_s=self.timeout_s, env=self._child_env(),
                                       **extra)
        if mode == ENGINE:
            assert self.engine is not None
            result = self.engine(cfg, on_event, cancel)
        else:
            result = _run_here(cfg, on_event, cancel, self.timeout_s)
        if begun is not None:
            result.run_id, result.started_at = begun.run_id, begun.started_at
        return result

    def begin(self, cfg: Any) -> Optional[RunResult]:
        """Record ``cfg`` as a run in progress (status "running", owned by this process;
        diffbench.engine.history.History.begin), so a run whose process is killed still
        leaves a row. Hand the returned placeholder to :meth:`launch` as ``begun``; the
        result replaces it through :meth:`record`.

        Returns:
            The placeholder RunResult, or None (not recording, a history without ``begin``,
            or the history could not be opened or written: :attr:`history_error` says why).
        """
        history = self.history if self.record_runs else None
        if history is None or not hasattr(history, "begin"):
            return None
        begun = RunResult(status="running", config=cfg.to_dict())
        try:
            history.begin(begun)
        except Exception as exc:  # noqa: BLE001 - the run goes on; record() reports it
            self.history_error = str(exc)
            return None
        return begun

    def interrupted(self, begun: Optional[RunResult], reason: str) -> None:
        """Mark the row :meth:`begin` recorded as "interrupted" with ``reason`` (when the
        caller is stopped before the run returned a result). Never raises."""
        history = self._history
        if begun is None or history is None:
            return
        try:
            history.mark_interrupted(begun.run_id, reason)
        except Exception as exc:  # noqa: BLE001 - the next start marks it instead
            self._warn(None, f"history not updated: {exc}")

    def run(self, cfg: Any, on_event: Optional[Callable[[Any], Any]] = None,
            cancel: Optional[threading.Event] = None, child: Any = None) -> RunResult:
        """:meth:`launch` then :meth:`finish`: the run with its baseline, recorded. A failure
        to record is a warning (see ``on_warning``), never a lost result."""
        result = self.launch(cfg, on_event, cancel, child)
        self.finish(result)
        return result

    def finish(self, result: RunResult) -> Optional[str]:
        """Attach the baseline (unless the child did) and record ``result``.

        Returns:
            The reason the run could not be recorded, or None.
        """
        if not self.record_runs:
            return None
        if result.status == "finished" and not getattr(result, "baseline_checked", False):
            self.attach_baseline(result)
        return self.record(result)

    # ------------------------------------------------------------------ history
    @property
    def history(self) -> Any:
        """The history object (``History()`` opened on first use); None when it cannot be
        opened (warned) or the session does not record."""
        if self._history is None and self.record_runs:
            from diffbench.engine.history import History

            try:
                self._history = History()
            except DiffbenchError as exc:
                self._warn(None, f"history not available: {exc}")
                self.history_error = str(exc)
                self.record_runs = False
        return self._history

    def history_path(self) -> Optional[str]:
        """The history file the child should look baselines up in (None: the data
        folder's, or a history without a file)."""
        if self._history is None:
            return None
        path = getattr(self._history, "path", None)
        return os.fspath(path) if path is not None else None

    def attach_baseline(self, result: RunResult) -> bool:
        """PSNR/SSIM against ``result``'s baseline in the history
        (diffbench.engine.baseline.attach). A problem is a warning; returns True when
        similarity was attached."""
        history = self.history
        if history is None:
            return False
        from diffbench.engine.baseline import attach

        try:
            return attach(result, history)
        except DiffbenchError as exc:
            self._warn(result, f"no baseline comparison: {exc}")
        except Exception as exc:  # noqa: BLE001 - similarity is a bonus; keep the run
            self._warn(result, f"baseline similarity not computed: {exc}")
        return False

    def record(self, result: RunResult) -> Optional[str]:
        """Add ``result`` to the history. Returns None, or the reason it failed (also warned
        as "history not updated: <reason>")."""
        history = self.history
        if history is None:
            return None if not self.record_runs else "history not available"
        try:
            history.add(result)
        except Exception as exc:  # noqa: BLE001 - keep the result even if the store fails
            self._warn(None, f"history not updated: {exc}")
            return str(exc)
        return None

    def _warn(self, result: Optional[RunResult], text: str) -> None:
        if self.on_warning is not None:
            self.on_warning(text)
        elif result is not None:
            result.notices.append(text)

    # ------------------------------------------------------------------ export
    @staticmethod
    def export(results: Sequence[RunResult], path: Any) -> Path:
        """Write ``results`` as one TOML file (diffbench.engine.export.write_toml).

        Raises:
            DiffbenchError / OSError: the file cannot be written.
        """
        from diffbench.engine.export import write_toml

        return Path(write_toml(list(results), os.fspath(path)))

    # ------------------------------------------------------------------ measurements
    def throughput(self, cfg: Any, steps: Sequence[int], repeats: int,
                   on_point: Optional[Callable[[int, int, float], Any]] = None,
                   on_event: Optional[Callable[[Any], Any]] = None,
                   cancel: Optional[threading.Event] = None, threads: Optional[int] = None,
                   timer: Optional[Callable[[int], float]] = None) -> Any:
        """The throughput fit (diffbench.engine.throughput.run_throughput) where
        :meth:`launch_mode` says (``timer``, a stand-in for the pipeline, runs here).

        Returns:
            diffbench.engine.throughput.ThroughputResult.

        Raises:
            DiffbenchError (ConfigError, ...; RunCancelled when cancelled): as the
            measurement raises it, or a child that crashed or timed out (one line).
        """
        from diffbench.engine import throughput

        if timer is not None or self.launch_mode() != CHILD:
            return throughput.run_throughput(cfg, steps, repeats, timer=timer,
                                             on_event=on_event, on_point=on_point,
                                             cancel=cancel, threads=threads)

        def progress(data: dict) -> None:
            if on_point is not None and isinstance(data.get("point"), list):
                done, total, seconds = data["point"]
                on_point(int(done), int(total), float(seconds))

        args = {"steps": [int(s) for s in steps], "repeats": int(repeats), "threads": threads}
        return self._job("throughput", cfg, args, on_event, progress, cancel)

    def check_params(self, cfg: Any, argument: str, values: Optional[Sequence[Any]] = None,
                     on_event: Optional[Callable[[Any], Any]] = None,
                     on_stage: Optional[Callable[[str], Any]] = None,
                     cancel: Optional[threading.Event] = None) -> Any:
        """The parameter check (diffbench.engine.check_params.check_param) where
        :meth:`launch_mode` says.

        Returns:
            diffbench.engine.check_params.ParamCheck.

        Raises:
            DiffbenchError: as :meth:`throughput`.
        """
        if self.launch_mode() != CHILD:
            from diffbench.engine.check_params import check_param

            return check_param(cfg, argument, values, on_event=on_event, on_stage=on_stage,
                               cancel=cancel)

        def progress(data: dict) -> None:
            if on_stage is not None and isinstance(data.get("stage"), str):
                on_stage(data["stage"])

        args = {"argument": argument, "values": list(values) if values is not None else None}
        return self._job("check_params", cfg, args, on_event, progress, cancel)

    def _job(self, name: str, cfg: Any, args: dict, on_event: Any, progress: Any,
             cancel: Optional[threading.Event]) -> Any:
        from diffbench.engine import client, jobs
        from diffbench.engine import events as ev

        def forward(event: Any) -> None:
            # the client closes every child with RunFinished/RunFailed; a job has no run
            if on_event is not None and not isinstance(event, (ev.RunFinished, ev.RunFailed)):
                on_event(event)

        result, job_result, error_kind = client.run_job_in_child(
            name, cfg, args, forward, progress, cancel, python=self.python,
            timeout_s=self.timeout_s, env=self._child_env())
        return jobs.decode(name, result, job_result, error_kind)


def _run_here(cfg: Any, on_event: Optional[Callable[[Any], Any]],
              cancel: threading.Event, timeout_s: Optional[float]) -> RunResult:
    """diffbench.engine.runner.run in a worker thread; its events are delivered in this
    thread, and Ctrl-C here cancels the run (between steps)."""
    from diffbench.engine import runner

    events: "queue.Queue[Any]" = queue.Queue()
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = runner.run(cfg, events.put, cancel, timeout_s=timeout_s
                                       if timeout_s is not None else cfg.timeout_s)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=work, name="diffbench-run", daemon=True)
    thread.start()
    deliver = on_event or (lambda event: None)
    while thread.is_alive() or not events.empty():
        try:
            deliver(events.get(timeout=0.1))
        except queue.Empty:
            continue
        except KeyboardInterrupt:
            cancel.set()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]
