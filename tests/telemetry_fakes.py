"""A scripted GPU source for telemetry tests (the stand-in for NVML), and a FakeEngine that
sends telemetry samples from a real diffbench.engine.telemetry.TelemetrySampler over it."""

from __future__ import annotations

from typing import Optional, Sequence

from diffbench.engine import events as ev
from diffbench.engine.telemetry import TelemetrySampler
from fakes import FakeEngine


class FakeGpuSource:
    """GPU readings from lists (the last value repeats): ``util`` (%), ``used_gib``."""

    name = "Fake H100"
    index = 0

    def __init__(self, util: Sequence[float] = (90.0,),
                 used_gib: Sequence[float] = (10.0,)) -> None:
        self.util, self.used = list(util), list(used_gib)
        self.reads = 0
        self.closed = False

    def read(self) -> dict:
        i = self.reads
        self.reads += 1
        return {"gpu_util_pct": self.util[min(i, len(self.util) - 1)],
                "mem_used_gib": self.used[min(i, len(self.used) - 1)],
                "mem_total_gib": 80.0, "power_w": 500.0, "power_limit_w": 700.0,
                "sm_clock_mhz": 1980.0, "temp_c": 61.0}

    def close(self) -> None:
        self.closed = True


class TelemetryEngine(FakeEngine):
    """FakeEngine that also emits one TelemetrySample after every denoising step, read
    through ``source`` (None: a CPU-only run, host figures only)."""

    def __init__(self, source: Optional[FakeGpuSource] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        note = "" if source is not None else "CPU-only run: no GPU telemetry"
        self.sampler = TelemetrySampler(lambda s: None, source, note)

    def __call__(self, cfg, on_event, cancel=None):
        def emit(event):
            on_event(event)
            if isinstance(event, ev.StepFinished):
                on_event(self.sampler.sample())
        return super().__call__(cfg, emit, cancel)
