"""How busy the GPU was during the measured calls, and how far a step is from the FLOP floor.

GPU busy fraction = device time of the kernels (and copies) of one denoising step / the
measured mean step time (1000 / it/s, the median over the measured calls), capped at 1: the
summed kernel time over the wall time of steps 2..N. The kernel time comes from
torch.profiler (CUPTI) in one extra, untimed call after the measured ones
(:func:`profiled_kernel_ms`): profiling adds host work to every kernel launch, so it never
runs during a timed call; kernel durations are device-side and do not depend on how fast the
host launches them, so the profiled call's kernel time per step over the timed calls' step
time is the busy fraction of the timed calls. When the profiler gives nothing (no CUPTI, a
failure, kernels it could not see), NVML's utilisation sampled during the timed calls
(:class:`NvmlUtilisation`: the share of time one or more kernels ran, as nvidia-smi) stands
in. Off CUDA there is no figure: None, shown as "-".

Below :data:`HOST_BOUND_BELOW` the GPU waits for the host (kernel launches, Python): the
remedy is to launch less (CUDA graphs: ``--compiler cudagraph``, or torch.compile with CUDA
graphs: ``--compiler compile --compiler-config '{"mode": "reduce-overhead"}'``).

Dense bf16 peaks (:data:`DENSE_BF16_TFLOPS`) give the fraction of the FLOP floor a step
reaches: tflop_per_step x it/s / peak.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterable, Optional

#: GPU busy fraction below which a run is host-bound.
HOST_BOUND_BELOW = 0.90

#: Dense bf16 matmul rate in TFLOP/s by GPU name fragment (first match, lower case). H100 and
#: H200: the rate measured on an H200 (benchmarks/RESULTS.md, "FLOP floor"); A100: NVIDIA's
#: datasheet (312, dense). Unknown GPUs get None ("-").
DENSE_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("h200", 790.0), ("h100", 790.0), ("gh200", 790.0), ("a100", 312.0),
)


def dense_peak_tflops(gpu_name: Optional[str]) -> Optional[float]:
    """Dense bf16 TFLOP/s of the GPU called ``gpu_name`` (torch's device name, e.g. "NVIDIA
    H100 80GB HBM3"); None when unknown or None."""
    if not gpu_name:
        return None
    low = str(gpu_name).lower()
    for fragment, tflops in DENSE_BF16_TFLOPS:
        if fragment in low:
            return tflops
    return None


def busy_fraction(kernel_ms_per_step: Optional[float],
                  step_ms: Optional[float]) -> Optional[float]:
    """Kernel time per step (ms) over the measured step time (ms), capped at 1.0 (kernels on
    several streams can overlap); None when either is missing or not positive."""
    if not kernel_ms_per_step or not step_ms or kernel_ms_per_step <= 0 or step_ms <= 0:
        return None
    return min(1.0, kernel_ms_per_step / step_ms)


def device_time_ms(events: Iterable[Any]) -> float:
    """Summed duration (ms) of the device events among a profiler's raw kineto events
    (``prof.profiler.kineto_results.events()``: objects with ``device_type()`` and
    ``duration_ns()``): kernels, copies and fills on the GPU. Host-side events are left out."""
    from torch.autograd import DeviceType

    total_ns = 0
    for event in events:
        if event.device_type() == DeviceType.CUDA:
            total_ns += max(0, int(event.duration_ns()))
    return total_ns / 1e6


class StepWindowProfiler:
    """A ``callback_on_step_end`` wrapper that profiles the device work launched in steps
    2..N of one call (the steps it/s counts): torch.profiler starts at step 1's end and stops
    at the last step's end, after a device synchronisation so every kernel has finished.

    Args:
        callback: the wrapped step-end callback (a StepTimer).
        steps: the steps the call runs (N).
        start: a function returning a started profiler (tests pass a fake); default
            torch.profiler with CUDA activity only.
    """

    def __init__(self, callback: Callable, steps: int,
                 start: Optional[Callable[[], Any]] = None) -> None:
        self.callback = callback
        self.steps = steps
        self._start = start or _start_cuda_profiler
        self.profiler: Any = None
        self.kernel_ms: Optional[float] = None
        self.window_steps = 0
        self._seen = 0

    def __call__(self, pipe: Any, step: int, timestep: Any, callback_kwargs: dict) -> dict:
        """diffusers' callback_on_step_end signature; returns the wrapped callback's result."""
        self._seen += 1
        if self._seen == 1 and self.steps > 1:
            self.profiler = self._start()
        elif self.profiler is not None and self._seen == self.steps:
            self.stop()
        return self.callback(pipe, step, timestep, callback_kwargs)

    def stop(self) -> None:
        """Stop the profiler (if running) and sum its device time over the window."""
        if self.profiler is None:
            return
        profiler, self.profiler = self.profiler, None
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
        profiler.stop()
        self.window_steps = self._seen - 1
        self.kernel_ms = device_time_ms(profiler.profiler.kineto_results.events())

    def kernel_ms_per_step(self) -> Optional[float]:
        """Device time (ms) per profiled step; None when nothing was seen."""
        if self.kernel_ms is None or self.window_steps < 1 or self.kernel_ms <= 0:
            return None
        return self.kernel_ms / self.window_steps


def _start_cuda_profiler() -> Any:
    import torch.profiler as tp

    profiler = tp.profile(activities=[tp.ProfilerActivity.CUDA])
    profiler.start()
    return profiler


def profiled_kernel_ms(call: Callable[[Callable], Any], steps: int) -> Optional[float]:
    """Run ``call(callback)`` (one pipeline call taking a step-end callback) under a
    :class:`StepWindowProfiler` of ``steps`` steps; return the device time per step in ms, or
    None when profiling failed or saw no device work (never raises for the profiler's sake;
    a cancel, RunCancelled, passes through)."""
    from diffbench.engine.errors import RunCancelled

    window = StepWindowProfiler(lambda pipe, step, t, kwargs: kwargs, steps)
    try:
        call(window)
        window.stop()
    except RunCancelled:
        _quiet_stop(window)
        raise
    except Exception:  # noqa: BLE001 - a profiler problem costs the figure, not the run
        _quiet_stop(window)
        return None
    return window.kernel_ms_per_step()


def _quiet_stop(window: StepWindowProfiler) -> None:
    try:
        window.stop()
    except Exception:  # noqa: BLE001
        pass


class NvmlUtilisation:
    """NVML's GPU utilisation (percent of time a kernel ran, per the driver's sample period)
    sampled every ``interval_s`` in a daemon thread while in the ``with`` block; ``fraction()``
    is their mean / 100, or None without NVML or samples. The thread takes the GIL only for
    one NVML call per sample (ctypes releases it during the call)."""

    def __init__(self, device: str, interval_s: float = 0.1) -> None:
        self.device = str(device)
        self.interval_s = interval_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> "NvmlUtilisation":
        if self.device.startswith("cuda"):
            self._thread = threading.Thread(target=self._sample, daemon=True,
                                            name="diffbench-nvml-util")
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def _sample(self) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception:  # noqa: BLE001 - no NVML: no fallback figure
            return
        try:
            index = int(self.device.split(":")[1]) if ":" in self.device else 0
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            while not self._stop.wait(self.interval_s):
                self.samples.append(float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu))
        except Exception:  # noqa: BLE001
            return
        finally:
            try:
                pynvml.nvmlShutdown()
            except Exception:  # noqa: BLE001
                pass

    def fraction(self) -> Optional[float]:
        """Mean sampled utilisation as a fraction 0..1; None without samples."""
        if not self.samples:
            return None
        return sum(self.samples) / len(self.samples) / 100.0
