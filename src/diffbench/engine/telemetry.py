"""Device and host telemetry during a run: GPU utilisation, memory used, power, SM clock and
temperature from NVML (nvidia-ml-py, imported lazily), and the host's CPU load, sampled in a
background thread and sent as :class:`diffbench.engine.events.TelemetrySample` events.

Why a thread at a low rate: the measured call must not wait on it. Each sample is a handful
of NVML queries (driver calls: no CUDA context, no torch call) and one protocol line, and the
thread sleeps between samples, so it holds the GIL only briefly once a period.

The child run (diffbench.engine.worker) starts a sampler when its environment has
:data:`TELEMETRY_ENV` (the dashboard sets it; ``diffbench run`` does not, so its event stream
is unchanged). A CPU run, or a machine without NVML, still sends host samples, with
``gpu_note`` saying why no GPU figures come.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Callable, Optional, Protocol

from diffbench.engine import events as ev

#: Environment variable that turns child telemetry on: "1" (every
#: :data:`DEFAULT_INTERVAL_S`) or a sampling period in seconds ("0.5").
TELEMETRY_ENV = "DIFFBENCH_TELEMETRY"
#: Seconds between two samples unless :data:`TELEMETRY_ENV` gives another period.
DEFAULT_INTERVAL_S = 1.0
#: The shortest period accepted (faster adds load and tells nothing NVML does not average).
MIN_INTERVAL_S = 0.2
_GIB = float(1024 ** 3)


class GpuSource(Protocol):
    """What the sampler reads a GPU through (NVML here; a fake in tests)."""

    name: str
    index: int

    def read(self) -> dict[str, Optional[float]]:
        """The current figures, keys as TelemetrySample's GPU fields (None: not reported)."""

    def close(self) -> None:
        """Release the library (no-op when nothing is held)."""


class NvmlSource:
    """GPU ``index`` (NVML's numbering) or the one with ``uuid``, read through pynvml.

    Raises:
        RuntimeError: NVML cannot be loaded or the device not found (one line).
    """

    def __init__(self, index: int = 0, uuid: Optional[str] = None) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception as exc:  # noqa: BLE001 - no package, no driver: no GPU figures
            raise RuntimeError(f"NVML not available ({_reason(exc)})") from None
        self._nvml = pynvml
        try:
            if uuid:
                self.handle = pynvml.nvmlDeviceGetHandleByUUID(uuid)
                index = int(pynvml.nvmlDeviceGetIndex(self.handle))
            else:
                self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(self.handle)
        except Exception as exc:  # noqa: BLE001
            self.close()
            raise RuntimeError(f"NVML has no GPU {uuid or index} ({_reason(exc)})") from None
        self.index = index
        self.name = name.decode() if isinstance(name, bytes) else str(name)

    def read(self) -> dict[str, Optional[float]]:
        """One reading; a query the board does not support gives None for its field."""
        nv, h = self._nvml, self.handle
        out: dict[str, Optional[float]] = {}

        def query(key: str, fn: Callable[[], Any]) -> None:
            try:
                out[key] = fn()
            except Exception:  # noqa: BLE001 - NVMLError_NotSupported and the like
                out[key] = None

        query("gpu_util_pct", lambda: float(nv.nvmlDeviceGetUtilizationRates(h).gpu))
        memory: dict[str, Any] = {}
        query("mem_used_gib", lambda: memory.setdefault("m", nv.nvmlDeviceGetMemoryInfo(h))
              .used / _GIB)
        query("mem_total_gib", lambda: memory["m"].total / _GIB)
        query("power_w", lambda: nv.nvmlDeviceGetPowerUsage(h) / 1000.0)  # mW
        query("power_limit_w", lambda: nv.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0)
        query("sm_clock_mhz", lambda: float(nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)))
        query("temp_c", lambda: float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)))
        return out

    def close(self) -> None:
        """Shut NVML down (each nvmlInit is paired with one nvmlShutdown)."""
        nvml, self._nvml = getattr(self, "_nvml", None), None
        if nvml is not None:
            try:
                nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001
                pass


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:120] or type(exc).__name__


def gpu_for_device(device: str, visible: Optional[str] = None,
                   cuda_build: Optional[bool] = None) -> tuple[Optional[GpuSource], str]:
    """The GPU a run on ``device`` ("cpu", "auto", "cuda", "cuda:N") uses, opened through
    NVML, or (None, why not) for a CPU run or a machine without NVML.

    ``visible``: CUDA_VISIBLE_DEVICES (default: this process's); its N-th entry, a number
    or a GPU-/MIG- UUID, is cuda:N's NVML device. ``cuda_build``: whether torch was built
    with CUDA (decides "auto"; default: asks an already imported torch, never imports it).
    """
    device = (device or "auto").strip().lower()
    if device == "cpu" or device.startswith("mps"):
        return None, "CPU-only run: no GPU telemetry"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES") if visible is None else visible
    if visible is not None and visible.strip() in ("", "-1"):
        return None, "CPU-only run (CUDA_VISIBLE_DEVICES hides every GPU): no GPU telemetry"
    if device == "auto":
        if cuda_build is None:
            torch = sys.modules.get("torch")  # not imported here: see the docstring
            if torch is not None:
                cuda_build = bool(getattr(getattr(torch, "version", None), "cuda", None))
        if cuda_build is False:
            return None, "CPU-only run (torch has no CUDA): no GPU telemetry"
    ordinal = 0
    if ":" in device:
        tail = device.split(":", 1)[1]
        ordinal = int(tail) if tail.isdigit() else 0
    index, uuid = ordinal, None
    if visible:
        entries = [e.strip() for e in visible.split(",") if e.strip()]
        if ordinal < len(entries):
            entry = entries[ordinal]
            if entry.isdigit():
                index = int(entry)
            elif entry.startswith(("GPU-", "MIG-")):
                uuid = entry
    try:
        return NvmlSource(index, uuid), ""
    except RuntimeError as exc:
        return None, f"no GPU telemetry: {exc}"


class TelemetrySampler:
    """Samples ``source`` (None: host only, ``note`` says why) and the host every
    ``interval_s`` seconds in a daemon thread, calling ``emit`` with a TelemetrySample.

    ``t_s`` counts from :meth:`start`. :meth:`summary` gives the run's mean utilisation,
    peak memory used and mean power over the samples taken. Exceptions from ``emit`` end
    the thread quietly (a closed event stream must not break the run).
    """

    def __init__(self, emit: Callable[[ev.TelemetrySample], Any],
                 source: Optional[GpuSource] = None, note: str = "",
                 interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self.emit = emit
        self.source = source
        self.note = note
        self.interval_s = max(MIN_INTERVAL_S, float(interval_s))
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._t0 = time.monotonic()
        self._process: Any = None
        self.samples: list[ev.TelemetrySample] = []

    def _host(self) -> dict[str, Any]:
        host: dict[str, Any] = {"cpus": os.cpu_count()}
        try:
            host["load1"] = round(os.getloadavg()[0], 2)
        except (AttributeError, OSError):  # Windows
            host["load1"] = None
        try:
            import psutil

            if self._process is None:  # the first call primes the counters (reads 0)
                self._process = psutil.Process()
                self._process.cpu_percent(None)
                psutil.cpu_percent(None)
            host["cpu_pct"] = float(psutil.cpu_percent(None))
            host["proc_cpu_pct"] = float(self._process.cpu_percent(None))
        except Exception:  # noqa: BLE001 - psutil missing or refused: load average only
            pass
        return host

    def sample(self) -> ev.TelemetrySample:
        """One reading now (GPU fields None without a source or when NVML fails)."""
        gpu: dict[str, Any] = {}
        note = self.note
        if self.source is not None:
            try:
                gpu = dict(self.source.read())
                gpu.update(gpu_name=self.source.name, gpu_index=self.source.index)
            except Exception as exc:  # noqa: BLE001 - a driver hiccup: say so, go on
                note = f"NVML read failed: {_reason(exc)}"
        fields = {f: gpu.get(f) for f in ("gpu_name", "gpu_index", "gpu_util_pct",
                                          "mem_used_gib", "mem_total_gib", "power_w",
                                          "power_limit_w", "sm_clock_mhz", "temp_c")}
        sample = ev.TelemetrySample(**fields, **self._host(), gpu_note=note,
                                    t_s=round(time.monotonic() - self._t0, 3))
        self.samples.append(sample)
        return sample

    def start(self) -> "TelemetrySampler":
        """Take the first sample at once, then one every ``interval_s``; returns self."""
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name="diffbench-telemetry")
        self._thread.start()
        return self

    def _loop(self) -> None:
        try:
            while True:
                self.emit(self.sample())
                if self._stop.wait(self.interval_s):
                    return
        except Exception:  # noqa: BLE001 - see the class docstring
            return

    def stop(self) -> None:
        """End the thread (waits for a sample in progress) and close the source."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        if self.source is not None:
            self.source.close()

    def summary(self) -> dict[str, Optional[float]]:
        """Mean GPU utilisation (%), peak memory used (GiB) and mean power (W) over the
        samples so far; None where no sample had the figure."""
        def values(key: str) -> list[float]:
            return [v for s in self.samples if (v := getattr(s, key)) is not None]

        util, mem, power = values("gpu_util_pct"), values("mem_used_gib"), values("power_w")
        return {"gpu_util_mean_pct": sum(util) / len(util) if util else None,
                "mem_used_peak_gib": max(mem) if mem else None,
                "power_mean_w": sum(power) / len(power) if power else None}


class TerminalGate:
    """Wraps an event callback shared by the run and a sampler thread: once the run's
    terminal event (RunFinished / RunFailed) has passed, telemetry samples are dropped, so
    the terminal event stays the stream's last engine event. Thread-safe."""

    def __init__(self, emit: Callable[[Any], Any]) -> None:
        self.emit = emit
        self.ended = False
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        with self._lock:
            if isinstance(event, (ev.RunFinished, ev.RunFailed)):
                self.ended = True
            elif self.ended and isinstance(event, ev.TelemetrySample):
                return
            self.emit(event)


def interval_from_env(value: Optional[str]) -> Optional[float]:
    """The sampling period :data:`TELEMETRY_ENV`'s ``value`` asks for: None (off) for an
    empty value or "0", :data:`DEFAULT_INTERVAL_S` for "1" or anything unreadable, else the
    number of seconds (at least :data:`MIN_INTERVAL_S`)."""
    value = (value or "").strip()
    if value in ("", "0"):
        return None
    if value == "1":
        return DEFAULT_INTERVAL_S
    try:
        seconds = float(value)
    except ValueError:
        return DEFAULT_INTERVAL_S
    return max(MIN_INTERVAL_S, seconds) if seconds > 0 else None


def start_for_run(device: str, emit: Callable[[ev.TelemetrySample], Any],
                  env_value: Optional[str] = None) -> Optional[TelemetrySampler]:
    """A started sampler for a run on ``device`` when :data:`TELEMETRY_ENV` (or
    ``env_value``) asks for one, else None. Never raises."""
    interval = interval_from_env(os.environ.get(TELEMETRY_ENV) if env_value is None
                                 else env_value)
    if interval is None:
        return None
    try:
        source, note = gpu_for_device(device)
        return TelemetrySampler(emit, source, note, interval).start()
    except Exception:  # noqa: BLE001 - telemetry is never worth a failed run
        return None
