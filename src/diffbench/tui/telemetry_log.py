"""The telemetry of the run on screen: its samples (diffbench.engine.events.TelemetrySample)
kept for the GPU tab's charts, and the one-line summary the live panel shows.

No plotext here: the live line is drawn from the first sample, the charts only when the GPU
tab is opened (diffbench.tui.widgets.telemetry).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Optional

from rich.text import Text

#: Samples kept per run (at one a second: the last ten minutes).
MAX_SAMPLES = 600
#: A run looks host-bound when the GPU is busy less than this (%) ...
HOST_BOUND_GPU_PCT = 50.0
#: ... while its process keeps at least this much of one core busy (%).
HOST_BOUND_PROC_PCT = 90.0


class TelemetryLog:
    """The samples of run ``token`` (newest last, at most :data:`MAX_SAMPLES`)."""

    def __init__(self, token: int = 0, title: str = "") -> None:
        self.token = token
        self.title = title
        self.samples: deque[Any] = deque(maxlen=MAX_SAMPLES)

    def add(self, sample: Any) -> None:
        """Keep one TelemetrySample."""
        self.samples.append(sample)

    @property
    def latest(self) -> Optional[Any]:
        """The newest sample, or None before the first."""
        return self.samples[-1] if self.samples else None

    @property
    def has_gpu(self) -> bool:
        """True when the samples carry GPU figures."""
        latest = self.latest
        return latest is not None and latest.gpu_name is not None

    def series(self, key: str) -> tuple[list[float], list[float]]:
        """(t_s, value) of field ``key`` over the samples that have it."""
        xs, ys = [], []
        for sample in self.samples:
            value = getattr(sample, key, None)
            if value is not None:
                xs.append(float(sample.t_s))
                ys.append(float(value))
        return xs, ys


def host_bound(sample: Any) -> bool:
    """True when ``sample`` shows a GPU mostly idle while the run's process keeps a CPU core
    busy: the host (Python, the scheduler, data movement) limits the run."""
    util, proc = sample.gpu_util_pct, sample.proc_cpu_pct
    return (util is not None and proc is not None and util < HOST_BOUND_GPU_PCT
            and proc >= HOST_BOUND_PROC_PCT)


def _fmt(value: Optional[float], spec: str, unit: str) -> str:
    return "?" if value is None else f"{value:{spec}}{unit}"


def host_text(sample: Any) -> str:
    """"host load 1.9/2 CPU 97% run 180%": load average over logical CPUs, all CPUs busy,
    the run's process (100% = one core)."""
    parts = []
    if sample.load1 is not None:
        parts.append(f"load {sample.load1:.1f}/{sample.cpus or '?'}")
    if sample.cpu_pct is not None:
        parts.append(f"CPU {sample.cpu_pct:.0f}%")
    if sample.proc_cpu_pct is not None:
        parts.append(f"run {sample.proc_cpu_pct:.0f}%")
    return "host " + " ".join(parts) if parts else "host: no figures"


def summary_line(sample: Any) -> Text:
    """The live panel's telemetry line for one TelemetrySample."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if sample.gpu_name is None:
        text.append(sample.gpu_note or "no GPU telemetry", style="dim")
        text.append("  " + host_text(sample))
        return text
    text.append("GPU ", style="bold")
    text.append(f"{_fmt(sample.gpu_util_pct, '.0f', '%')} · "
                f"{_fmt(sample.mem_used_gib, '.1f', '')}/"
                f"{_fmt(sample.mem_total_gib, '.0f', ' GiB')} · "
                f"{_fmt(sample.power_w, '.0f', ' W')} · "
                f"{_fmt(sample.sm_clock_mhz, '.0f', ' MHz')} · "
                f"{_fmt(sample.temp_c, '.0f', '°C')} │ ")
    text.append(host_text(sample))
    if host_bound(sample):
        text.append("  host-bound?", style="bold yellow")
    return text
