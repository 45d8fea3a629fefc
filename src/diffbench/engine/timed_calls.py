"""The timed part of a run: the warmup calls (compilation happens here; compile progress
and cache state recorded) then the measured calls (``--repeat``), each timed by StepTimer
with the device synchronised at its end, peak memory reset before the first; fills the run's
Metrics. On CUDA one more call, untimed and after the measured ones, is profiled for the GPU
busy fraction (diffbench.engine.busy): the profiler never slows a timed step.
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
    """Warmup calls then the measured calls (``cfg.repeat``, resolved by
    diffbench.engine.repeats.resolve_repeat); fills ``metrics`` (medians over the calls with
    their range, diffbench.engine.repeats.fill_metrics; on CUDA the GPU busy fraction, see
    :func:`_measure_busy`); returns the first measured call's images.

    ``phase`` is the run's one-item list naming the current phase (set to "measure" here),
    so a failure is reported in the phase it happened in. Raises RunCancelled when
    ``cancel`` is set (between steps and between calls), and whatever the pipeline raises.
    """
    import torch

    from diffbench.engine import measure, repeats

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
    repeat = repeats.resolve_repeat(cfg.repeat, device)
    detail = f"{cfg.steps} steps" + (f" x {repeat} calls" if repeat > 1 else "")
    emit(ev.PhaseStarted("measure", detail=detail))
    measure.reset_peak_memory(device)
    mark = watcher.mark() if watcher is not None else None
    from diffbench.engine.busy import NvmlUtilisation
    from diffbench.engine.phase_memory import PhasePeaks

    phases = PhasePeaks(pipe, device)  # text encoders / denoiser / VAE peaks (CUDA)
    calls: list[repeats.CallFigures] = []
    images: list = []
    timer = None
    with torch.inference_mode(), NvmlUtilisation(device) as nvml:
        for _ in range(repeat):
            check_cancel(cancel)
            timer = measure.StepTimer(device, _step_emitter(emit, "measured", 0, cfg,
                                                            prepared.spec, prepared.state),
                                      cancel)
            measure.synchronize(device)
            t1 = time.perf_counter()
            timer.start()
            with phases:
                output = pipe(**call_kwargs(cfg, pipe, device, prepared.height,
                                            prepared.width, prepared.image,
                                            prepared.control_image,
                                            callback_on_step_end=phases.wrap(timer)))
            measure.synchronize(device)
            wall_s = time.perf_counter() - t1
            step_ms = [round(x, 4) for x in timer.step_ms()]
            it_per_s = len(step_ms) / (sum(step_ms) / 1000.0) if sum(step_ms) > 0 else None
            calls.append(repeats.CallFigures(it_per_s, wall_s, step_ms, timer.first_step_ms()))
            if not images:  # same seed every call: the first call's images stand for all
                images = list(output.images)
            del output
    metrics.steps_run = timer.steps if timer is not None else None
    repeats.fill_metrics(metrics, calls)
    stats = getattr(prepared.state, "cache_stats", None)
    if stats is not None:  # None counts (a cache without a step count) stay None: "n/a"
        metrics.steps_computed, metrics.steps_skipped = stats.computed(), stats.skipped()
    metrics.peak_allocated_gib, metrics.peak_reserved_gib = \
        phases.overall_gib() if phases.active else measure.cuda_peak_gib(device)
    for key, value in phases.metrics().items():
        setattr(metrics, key, value)
    metrics.peak_rss_gib = measure.peak_rss_gib()
    metrics.nvml_used_gib = measure.nvml_used_gib(device)
    if watcher is not None and mark is not None:
        metrics.recompiles = watcher.recompiles_since(mark)
        metrics.graph_breaks = watcher.graph_breaks()
    _measure_busy(cfg, prepared, cancel, metrics, nvml.fraction())
    emit(ev.PhaseFinished("measure", sum(c.inference_s for c in calls)))
    return images


def _measure_busy(cfg: RunConfig, prepared: Prepared, cancel: Optional[threading.Event],
                  metrics: Metrics, nvml_fraction: Optional[float]) -> None:
    """GPU busy fraction of the measured calls (diffbench.engine.busy): kernel time per step
    from one extra profiled call, untimed, over the measured mean step time (1000 / it/s);
    NVML's sampled
    utilisation when the profiler gives nothing. No-op off CUDA."""
    if not str(prepared.device).startswith("cuda"):
        return
    import torch

    from diffbench.engine import busy
    from diffbench.engine.effective import steps_to_run

    pipe, device = prepared.pipe, prepared.device

    def call(callback: Any) -> None:
        def on_step_end(p: Any, step: int, t: Any, kwargs: dict) -> dict:
            kwargs = callback(p, step, t, kwargs)
            check_cancel(cancel)
            return kwargs

        with torch.inference_mode():
            pipe(**call_kwargs(cfg, pipe, device, prepared.height, prepared.width,
                               prepared.image, prepared.control_image,
                               callback_on_step_end=on_step_end))

    kernel_ms = busy.profiled_kernel_ms(call, steps_to_run(cfg, prepared.spec))
    # mean step time of the measured calls (steps 2..N, as the profiled window)
    step_ms = 1000.0 / metrics.it_per_s if metrics.it_per_s else None
    metrics.busy_fraction = busy.busy_fraction(kernel_ms, step_ms)
    metrics.busy_source = "profiler" if metrics.busy_fraction is not None else None
    if metrics.busy_fraction is None and nvml_fraction is not None:
        metrics.busy_fraction, metrics.busy_source = min(1.0, nvml_fraction), "nvml"


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
