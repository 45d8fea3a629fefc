"""Timing and memory measurement for one pipeline call, per the measurement contract.

StepTimer is a ``callback_on_step_end`` for diffusers pipelines. On CUDA it records a
``torch.cuda.Event`` at each step end and never synchronises inside the step loop (as
OneDiff's IterationProfiler, onediff/benchmarks/text_to_image.py); the events are read after
the call, once the device is synchronised. On CPU it reads ``time.perf_counter``.

it/s follows OneDiff's IterationProfiler: (N - 1) / (t_end(step N) - t_end(step 1)), i.e. the
steps after the first over the time since the first step ended, so prompt encoding and
latent preparation (before step 1) do not count.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from typing import Any, Callable, Optional

from diffbench.engine.errors import RunCancelled

GIB = 1024 ** 3


class StepTimer:
    """Per-step timing as a diffusers ``callback_on_step_end``.

    Usage::

        timer = StepTimer(device)
        timer.start()                       # just before the pipeline call
        pipe(..., callback_on_step_end=timer)
        sync(device); timer.step_ms()       # ms between step ends (steps 2..N)

    ``on_step(index: int, host_step_ms: float)`` is called at each step end with the live
    host-side time since the previous step end (or since ``start``) in ms — for progress
    display only; it is not the measured figure on CUDA. ``cancel``: if set at a step end,
    :class:`diffbench.engine.errors.RunCancelled` is raised out of the pipeline call.
    """

    def __init__(self, device: str = "cpu",
                 on_step: Optional[Callable[[int, float], None]] = None,
                 cancel: Optional[threading.Event] = None) -> None:
        self.cuda = str(device).startswith("cuda")
        self.on_step = on_step
        self.cancel = cancel
        self._start_host = 0.0
        self._last_host = 0.0
        self._start_mark: Any = None
        self._marks: list[Any] = []  # CUDA events or perf_counter floats (s)

    def _mark(self) -> Any:
        if self.cuda:
            import torch

            event = torch.cuda.Event(enable_timing=True)
            event.record()  # queued on the current stream: no host-device synchronisation
            return event
        return time.perf_counter()

    def start(self) -> None:
        """Mark the call start (before the pipeline call)."""
        self._marks = []
        self._start_mark = self._mark()
        self._start_host = self._last_host = time.perf_counter()

    def __call__(self, pipe: Any, step: int, timestep: Any, callback_kwargs: dict) -> dict:
        """diffusers' callback_on_step_end signature; returns ``callback_kwargs`` unchanged."""
        self._marks.append(self._mark())
        now = time.perf_counter()
        host_ms = (now - self._last_host) * 1000.0
        self._last_host = now
        if self.on_step is not None:
            self.on_step(len(self._marks), host_ms)
        if self.cancel is not None and self.cancel.is_set():
            raise RunCancelled("cancelled")
        return callback_kwargs

    @property
    def steps(self) -> int:
        """Number of step ends observed (the denoising steps actually run)."""
        return len(self._marks)

    def _elapsed_ms(self, a: Any, b: Any) -> float:
        if self.cuda:
            return float(a.elapsed_time(b))  # requires both events completed (sync first)
        return (b - a) * 1000.0

    def step_ms(self) -> list[float]:
        """Intervals between consecutive step ends in ms (steps 2..N; length N - 1).

        On CUDA, call only after the device is synchronised.
        """
        return [self._elapsed_ms(a, b) for a, b in zip(self._marks, self._marks[1:])]

    def first_step_ms(self) -> Optional[float]:
        """Call start -> end of step 1 in ms (includes prompt encoding); None if no step."""
        if not self._marks or self._start_mark is None:
            return None
        return self._elapsed_ms(self._start_mark, self._marks[0])

    def it_per_s(self) -> Optional[float]:
        """OneDiff's it/s: (N - 1) / (t_end_N - t_end_1) in steps per second; None if N < 2."""
        intervals = self.step_ms()
        total_ms = sum(intervals)
        if not intervals or total_ms <= 0:
            return None
        return len(intervals) / (total_ms / 1000.0)


def percentile(values: list[float], q: float) -> Optional[float]:
    """The q-th percentile (0..100) with linear interpolation (numpy's default); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def step_stats(step_ms: list[float]) -> dict[str, Optional[float]]:
    """p50, p90 and max of per-step times (ms) as step_ms_p50 / step_ms_p90 / step_ms_max."""
    return {"step_ms_p50": percentile(step_ms, 50), "step_ms_p90": percentile(step_ms, 90),
            "step_ms_max": max(step_ms) if step_ms else None}


def synchronize(device: str) -> None:
    """Wait for queued device work (CUDA); no-op on CPU."""
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def reset_peak_memory(device: str) -> None:
    """Reset torch's CUDA peak counters (before the measured call); no-op on CPU."""
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.reset_peak_memory_stats(device)


def cuda_peak_gib(device: str) -> tuple[Optional[float], Optional[float]]:
    """(max_memory_allocated, max_memory_reserved) in GiB since the last reset; (None, None)
    off CUDA."""
    if not str(device).startswith("cuda"):
        return None, None
    import torch

    return (torch.cuda.max_memory_allocated(device) / GIB,
            torch.cuda.max_memory_reserved(device) / GIB)


def peak_rss_gib() -> float:
    """This process's peak resident set size in GiB (getrusage ru_maxrss: KiB on Linux,
    bytes on macOS). A process-lifetime peak: it never resets."""
    try:
        import resource
    except ImportError:  # Windows: psutil's peak working set
        import psutil

        return float(getattr(psutil.Process().memory_info(), "peak_wset", 0)) / GIB
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / GIB if sys.platform == "darwin" else rss * 1024 / GIB


def nvml_used_gib(device: str) -> Optional[float]:
    """Device memory used as NVML reports it (all processes) in GiB; None when unavailable."""
    if not str(device).startswith("cuda"):
        return None
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            index = int(str(device).split(":")[1]) if ":" in str(device) else 0
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            return pynvml.nvmlDeviceGetMemoryInfo(handle).used / GIB
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - NVML is optional telemetry
        return None
