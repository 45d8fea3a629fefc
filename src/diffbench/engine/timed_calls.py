"""The timed part of a run: the warmup calls (compilation happens here; compile progress
and cache state recorded) then the measured call, timed by StepTimer with the device
synchronised at the end and peak memory reset before it; fills the run's Metrics.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional

from diffbench.engine import events as ev
from diffbench.engine.config import RunConfig
from diffbench.engine.errors import RunCancelled
from diffbench.engine.events import EventCallback
from diffbench.engine.prepare import Prepared, call_kwargs
from diffbench.engine.result import Metrics


def warmup_and_measure(cfg: RunConfig, prepared: Prepared, emit: EventCallback,
                       cancel: Optional[threading.Event], metrics: Metrics,
                       phase: list) -> list:
    """Warmup calls then the measured call; fills ``metrics``; returns the measured images.

    ``phase`` is the run's one-item list naming the current phase (set to "measure" here),
    so a failure is reported in the phase it happened in. Raises RunCancelled when
    ``cancel`` is set (between steps and between calls), and whatever the pipeline raises.
    """
    import torch

    from diffbench.engine import measure

    pipe, device = prepared.pipe, prepared.device
    watcher = _compile_watcher(cfg, emit)
    try:
        measure.reset_peak_memory(device)
        emit(ev.PhaseStarted("warmup", detail=f"{cfg.warmups} call(s)"))
        t0 = time.perf_counter()
        with torch.inference_mode():
            for index in range(1, cfg.warmups + 1):
                check_cancel(cancel)
                emitter = _step_emitter(emit, "warmup", index, cfg, prepared.spec,
                                          prepared.state)
                timer = measure.StepTimer(device, emitter, cancel)
                timer.start()
                pipe(**call_kwargs(cfg, pipe, device, prepared.height, prepared.width,
                                   prepared.image, prepared.control_image,
                                   callback_on_step_end=timer))
            measure.synchronize(device)
        # No warmup call, no warmup time (not the microseconds of an empty loop).
        metrics.warmup_s = time.perf_counter() - t0 if cfg.warmups else None
    except BaseException:
        if watcher is not None:  # a failed or cancelled warmup must not leave it listening
            watcher.stop()
        raise
    if watcher is not None:
        watcher.stop()
        metrics.compile_s = watcher.compile_s
        if metrics.compile_s is not None and metrics.warmup_s is not None:
            # The watcher's clock starts a moment before the warmup's: never more than it.
            metrics.compile_s = min(metrics.compile_s, metrics.warmup_s)
    from diffbench.engine import accelerators

    if cfg.warmups:
        accelerators.after_warmup(prepared.state, emit)
    metrics.warmup_cache = prepared.state.warmup_cache() if prepared.state else None
    metrics.warmup_peak_allocated_gib = measure.cuda_peak_gib(device)[0]
    emit(ev.PhaseFinished("warmup", metrics.warmup_s or 0.0))
    check_cancel(cancel)

    phase[0] = "measure"
    emit(ev.PhaseStarted("measure", detail=f"{cfg.steps} steps"))
    measure.reset_peak_memory(device)
    mark = watcher.mark() if watcher is not None else None
    timer = measure.StepTimer(device, _step_emitter(emit, "measured", 0, cfg, prepared.spec,
                                                  prepared.state), cancel)
    from diffbench.engine.phase_memory import PhasePeaks

    phases = PhasePeaks(pipe, device)  # text encoders / denoiser / VAE peaks (CUDA)
    with torch.inference_mode():
        measure.synchronize(device)
        t1 = time.perf_counter()
        timer.start()
        with phases:
            output = pipe(**call_kwargs(cfg, pipe, device, prepared.height, prepared.width,
                                        prepared.image, prepared.control_image,
                                        callback_on_step_end=phases.wrap(timer)))
        measure.synchronize(device)
        metrics.inference_s = time.perf_counter() - t1
    metrics.steps_run = timer.steps
    stats = getattr(prepared.state, "cache_stats", None)
    if stats is not None:  # None counts (a cache without a step count) stay None: "n/a"
        metrics.steps_computed, metrics.steps_skipped = stats.computed(), stats.skipped()
    metrics.step_ms = [round(x, 4) for x in timer.step_ms()]
    metrics.first_step_ms = timer.first_step_ms()
    metrics.it_per_s = (len(metrics.step_ms) / (sum(metrics.step_ms) / 1000.0)
                        if metrics.step_ms and sum(metrics.step_ms) > 0 else None)
    for key, value in measure.step_stats(metrics.step_ms).items():
        setattr(metrics, key, value)
    metrics.peak_allocated_gib, metrics.peak_reserved_gib = \
        phases.overall_gib() if phases.active else measure.cuda_peak_gib(device)
    for key, value in phases.metrics().items():
        setattr(metrics, key, value)
    metrics.peak_rss_gib = measure.peak_rss_gib()
    metrics.nvml_used_gib = measure.nvml_used_gib(device)
    if watcher is not None and mark is not None:
        metrics.recompiles = watcher.recompiles_since(mark)
        metrics.graph_breaks = watcher.graph_breaks()
    emit(ev.PhaseFinished("measure", metrics.inference_s))
    return list(output.images)


def _compile_watcher(cfg: RunConfig, emit: EventCallback) -> Any:
    if cfg.compiler == "none":
        return None
    try:
        from diffbench.engine.compile_progress import CompileWatcher
    except ImportError:
        return None
    return CompileWatcher(emit).start()


def _step_emitter(emit: EventCallback, call: str, warmup_index: int, cfg: RunConfig,
                  spec: Any = None, state: Any = None) -> Callable[[int, float], None]:
    # Expected total (img2img runs fewer steps, counted per family); the observed count is
    # what RunResult reports.
    from diffbench.engine.effective import steps_to_run

    total = steps_to_run(cfg, spec)
    stats = getattr(state, "cache_stats", None)  # the step cache's counts, if any

    def on_step(index: int, step_ms: float) -> None:
        emit(ev.StepFinished(call, index, max(total, index), round(step_ms, 3), warmup_index,
                             steps_skipped=stats.skipped() if stats is not None else None))

    return on_step


def check_cancel(cancel: Optional[threading.Event]) -> None:
    """Raise RunCancelled when ``cancel`` is set."""
    if cancel is not None and cancel.is_set():
        raise RunCancelled("cancelled")
