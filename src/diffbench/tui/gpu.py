"""Live GPU memory and utilisation from NVML (nvidia-ml-py), when a GPU and driver exist.

Reads device-wide figures (all processes), which is what a user watching a run over SSH
compares with ``nvidia-smi``. Everything here is optional: without NVML the sampler reports
itself unavailable and the dashboard hides the line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class GpuSample:
    """One reading: memory used/total in GiB, GPU utilisation in percent (0-100)."""

    name: str
    used_gib: float
    total_gib: float
    util_pct: int


class GpuSampler:
    """Samples GPU ``index`` through NVML. Construct and call from a worker thread."""

    def __init__(self, index: int = 0) -> None:
        self.index = index
        self.handle = None
        self.name = ""
        self.error: Optional[str] = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(self.handle)
            self.name = name.decode() if isinstance(name, bytes) else str(name)
        except Exception as exc:  # no driver / no GPU / no nvidia-ml-py: simply unavailable
            self.error = str(exc) or type(exc).__name__
            self.handle = None

    @property
    def available(self) -> bool:
        return self.handle is not None

    def sample(self) -> Optional[GpuSample]:
        """The current reading, or None when NVML is unavailable or fails."""
        if self.handle is None:
            return None
        try:
            memory = self._nvml.nvmlDeviceGetMemoryInfo(self.handle)
            util = self._nvml.nvmlDeviceGetUtilizationRates(self.handle)
        except Exception:
            return None
        gib = 1024 ** 3
        return GpuSample(self.name, memory.used / gib, memory.total / gib, int(util.gpu))

    def close(self) -> None:
        if self.handle is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
            self.handle = None
