"""Run one benchmark in this process: preflight -> load -> accelerate -> warmup -> measure ->
save, as one RunResult.

:func:`run` never raises for run failures: it returns a RunResult with status "finished",
"failed" or "cancelled" and emits RunFinished or RunFailed last. Its steps live beside it:
diffbench.engine.preflight (the cheap checks, one-line errors before anything loads),
diffbench.engine.prepare (load and accelerate; the keyword arguments of one call),
diffbench.engine.timed_calls (warmups and the measured call) and diffbench.engine.run_outcome
(the saved image, the image flag, the failure reason).
"""

from __future__ import annotations

import threading
import time
import traceback
from typing import Any, Optional

from diffbench.engine import events as ev
from diffbench.engine.config import RunConfig
from diffbench.engine.errors import DiffbenchError, RunCancelled
from diffbench.engine.events import EventCallback
from diffbench.engine.pipeline_warnings import PipelineWarnings
from diffbench.engine.prepare import prepare
from diffbench.engine.repeats import resolve_repeat
from diffbench.engine.preflight import preflight
from diffbench.engine.result import RunResult
from diffbench.engine.run_outcome import image_flag, one_line, safe_dict, save_image
from diffbench.engine.timed_calls import check_cancel, warmup_and_measure

#: Fewer denoising steps than this in the measured call earn a warning (it/s then rests on
#: one or two step intervals).
MIN_RELIABLE_STEPS = 3

#: Lines of traceback kept in RunFailed.log_tail (for bug reports; never printed by default).
LOG_TAIL_LINES = 40


class _Clock:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.t0


def _stamped(emit: EventCallback, clock: _Clock) -> EventCallback:
    """Wrap ``emit`` so every event carries t_s (seconds since the run began)."""
    import dataclasses

    def send(event: Any) -> None:
        if getattr(event, "t_s", None) == 0.0:
            event = dataclasses.replace(event, t_s=round(clock(), 4))
        emit(event)

    return send


class _Deadline:
    """A cancel flag that is also set ``timeout_s`` seconds after :meth:`start` (a daemon
    timer), so an in-process run honours RunConfig.timeout_s the way cancel is honoured:
    between denoising steps and between calls."""

    def __init__(self, cancel: Optional[threading.Event], timeout_s: Optional[float]) -> None:
        self.cancel = cancel
        self.timeout_s = timeout_s
        self.expired = threading.Event()
        self._timer: Optional[threading.Timer] = None

    def start(self) -> "_Deadline":
        if self.timeout_s is not None:
            self._timer = threading.Timer(self.timeout_s, self.expired.set)
            self._timer.daemon = True
            self._timer.start()
        return self

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def is_set(self) -> bool:
        """True once the caller cancelled or the deadline passed."""
        return self.expired.is_set() or (self.cancel is not None and self.cancel.is_set())


def _record_effective(cfg: RunConfig, prepared: Any, result: RunResult) -> None:
    """Put what the call runs with in the record: the T5 budget and scheduler the model kept
    (config), guidance used, denoiser rows and FLOPs per step (metrics); see
    diffbench.engine.effective."""
    from diffbench.engine import effective

    spec = effective.family_of(prepared.pipe)
    result.config.update(effective.resolved_config(cfg, prepared.pipe, spec))
    for key, value in effective.effective_metrics(cfg, prepared.pipe, spec, prepared.height,
                                                  prepared.width).items():
        setattr(result.metrics, key, value)


def _diagnose(result: RunResult, emit: EventCallback) -> None:
    """The peak the FLOP fraction is taken against, then the spread and host-bound notices
    (diffbench.engine.repeats.diagnosis), each also sent as a warning."""
    from diffbench.engine.busy import dense_peak_tflops
    from diffbench.engine.repeats import diagnosis

    if str(result.config.get("device", "")).startswith("cuda"):
        result.metrics.peak_tflops = dense_peak_tflops(result.environment.get("gpu"))
    for line in diagnosis(result.metrics, result.environment):
        result.notices.append(line)
        emit(ev.LogMessage("warning", line))


def run(cfg: RunConfig, on_event: Optional[EventCallback] = None,
        cancel: Optional[threading.Event] = None,
        timeout_s: Optional[float] = None) -> RunResult:
    """Run ``cfg`` in this process and return its RunResult (never raises for run failures).

    Phases: load -> accelerate -> warmup (cfg.warmups calls, compilation happens here) ->
    measure (cfg.repeat calls, "auto" resolved by device and recorded in the config, each
    timed by StepTimer, device synchronised at the end, peak memory reset before the first;
    medians with min / max, spread and host-bound notices) -> save (cfg.output_image, PNG). Events: PhaseStarted/PhaseFinished per phase,
    StepFinished per denoising step (call "warmup" or "measured"), LogMessage for notices
    (warnings the pipeline logs or raises included: diffbench.engine.pipeline_warnings),
    CompileProgress from the compiler, then RunFinished or RunFailed (status "failed" or
    "cancelled") last. ``cancel`` is honoured between steps and between warmup calls.

    ``timeout_s`` (seconds; callers pass cfg.timeout_s for in-process runs, the child worker
    leaves it to its parent) stops the run at the next step or call boundary once passed; the
    result is then "failed" with "timed out after N s (--timeout / timeout_s); the run was stopped" (the
    wording of diffbench.engine.client for child runs).

    In-process runs also set ``result.image`` (the measured call's first PIL image; not a
    dataclass field, never serialised) so callers get the image without a file.
    """
    from diffbench.engine.environment import collect

    clock = _Clock()
    emit = _stamped(on_event or ev.null_callback, clock)
    result = RunResult(config=cfg.to_dict())
    metrics = result.metrics
    phase = ["preflight"]  # mutable: the phase a failure or cancel happened in
    deadline = _Deadline(cancel, timeout_s).start()
    cancel = deadline  # type: ignore[assignment] - same is_set() interface as an Event
    try:
        pre = preflight(cfg)
        result.notices = list(pre.notices)
        result.environment = collect(pre.device)
        phase[0] = "load"
        with PipelineWarnings(emit) as load_warnings:
            prepared = prepare(cfg, emit, pre)
        metrics.load_s = prepared.load_s
        result.notices = list(prepared.notices) + load_warnings.notices
        metrics.accelerate_s = prepared.accelerate_s
        result.config.update(height=prepared.height, width=prepared.width,
                             device=prepared.device, dtype=str(prepared.dtype).split(".")[-1])
        _record_effective(cfg, prepared, result)
        phase[0] = "warmup" if cfg.warmups else "measure"  # --warmups 0: no warmup phase
        check_cancel(cancel)
        result.config["repeat"] = resolve_repeat(cfg.repeat, prepared.device)
        with PipelineWarnings(emit) as pipeline_warnings:
            images = warmup_and_measure(cfg, prepared, emit, cancel, metrics, phase)
        result.notices.extend(pipeline_warnings.notices)
        _diagnose(result, emit)
        if metrics.steps_run is not None and metrics.steps_run < MIN_RELIABLE_STEPS:
            few = (f"the measured call ran only {metrics.steps_run} denoising step(s): it/s "
                   f"rests on so few step intervals; use at least {MIN_RELIABLE_STEPS} steps "
                   "for a reliable figure")
            result.notices.append(few)
            emit(ev.LogMessage("warning", few))
        phase[0] = "save"
        emit(ev.PhaseStarted("save", detail=cfg.output_image or "in memory"))
        t_save = time.perf_counter()
        metrics.image_flag = image_flag(images)
        if cfg.output_image:
            _save_output_image(images[0], cfg.output_image, result, emit)
        result.image = images[0]  # type: ignore[attr-defined] - in-memory only, not serialised
        emit(ev.PhaseFinished("save", time.perf_counter() - t_save))
    except RunCancelled:
        if deadline.expired.is_set():
            result.status = "failed"
            result.error = (f"timed out after {timeout_s:g} s (--timeout / timeout_s) during {phase[0]}; "
                            "the run was stopped")
        else:
            result.status = "cancelled"
            result.error = f"cancelled during {phase[0]}"
        emit(ev.RunFailed(result.error, status=result.status, result=safe_dict(result)))
        return result
    except BaseException as exc:  # noqa: BLE001 - the contract: never raise for a run failure
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        result.status = "failed"
        result.error = one_line(exc, phase[0])
        tail = "".join(traceback.format_exception(exc)).splitlines()[-LOG_TAIL_LINES:]
        result.log_tail = "\n".join(tail)
        emit(ev.RunFailed(result.error, status="failed", result=safe_dict(result),
                          log_tail=result.log_tail))
        return result
    finally:
        deadline.stop()
    emit(ev.RunFinished(safe_dict(result)))
    return result


def _save_output_image(image: Any, path: str, result: RunResult, emit: Any) -> None:
    """Save the run's image to ``path`` (cfg.output_image). A write that fails (the folder
    removed during the run, a full disk) costs the image, never the measurement: the run
    stays finished, with the reason as a notice."""
    try:
        result.image_path = save_image(image, path)
    except (DiffbenchError, OSError) as exc:
        text = f"image not saved: {exc}; the measurement is kept"
        result.notices.append(text)
        emit(ev.LogMessage("warning", text))
