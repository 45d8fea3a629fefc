"""Events emitted by :func:`diffbench.engine.runner.run` while a run progresses.

Every event is a frozen dataclass that serialises to one JSON object (``to_dict`` /
``event_from_dict``) with a ``"type"`` key naming the class, so the same stream can travel
as JSON lines from a child process (diffbench.engine.worker) to the CLI or the dashboard.

Times are seconds (``*_s``) or milliseconds (``*_ms``); ``t_s`` is seconds since the run began.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

#: Phases of a run, in order. "warmup" includes compilation (as OneDiff's script counts it).
PHASES = ("load", "accelerate", "warmup", "measure", "save")


@dataclass(frozen=True)
class PhaseStarted:
    """A phase began. ``detail`` is a short human note ("warmup 1/2", "torch.compile UNet")."""

    phase: str
    t_s: float = 0.0
    detail: str = ""


@dataclass(frozen=True)
class PhaseFinished:
    """A phase ended after ``elapsed_s`` seconds of wall time."""

    phase: str
    elapsed_s: float
    t_s: float = 0.0


@dataclass(frozen=True)
class StepFinished:
    """A denoising step ended.

    ``call`` is "warmup" or "measured"; ``index`` is 1-based, ``total`` the steps this call
    will run (img2img: fewer, per family: diffbench.engine.effective.steps_to_run).
    ``step_ms`` is host wall time since the previous step end (or the call start) — a live
    estimate; the measured figures in RunResult come from CUDA events on GPU.
    ``warmup_index`` is 1-based for warmup calls, 0 for the measured call.
    ``steps_skipped``: steps of this call a diffusers step cache (``--cache``) skipped so far,
    this one included (``index - steps_skipped`` were computed); None without a step cache or
    for a cache that gives no step count (fastercache, pab: shown as "n/a").
    """

    call: str
    index: int
    total: int
    step_ms: float
    warmup_index: int = 0
    t_s: float = 0.0
    steps_skipped: Optional[int] = None


@dataclass(frozen=True)
class CompileProgress:
    """Compiler activity, cumulative since the accelerator was applied.

    ``frames``: Dynamo frames traced; ``graphs``: graphs compiled; ``kernels``: kernels
    autotuned/generated; ``recompiles``: recompilations; ``elapsed_s`` since compile began.
    ``stage``: what the compiler is doing at this event (one of
    diffbench.engine.compile_progress.STAGES: "Dynamo tracing", "AOT autograd", "inductor
    codegen", "kernel builds"; "" when unknown or between compiles); ``cache_hits`` /
    ``cache_misses``: compile-cache lookups so far (inductor's FX-graph cache plus
    AOTAutograd's cache). The last three were added later: older streams lack them and
    read as "", 0, 0.
    """

    frames: int = 0
    graphs: int = 0
    kernels: int = 0
    recompiles: int = 0
    elapsed_s: float = 0.0
    message: str = ""
    t_s: float = 0.0
    stage: str = ""
    cache_hits: int = 0
    cache_misses: int = 0


@dataclass(frozen=True)
class LogMessage:
    """A notice or warning for the user (e.g. "ignoring nexfort-only key 'mode'")."""

    level: str  # "info" | "warning" | "error"
    text: str
    t_s: float = 0.0


@dataclass(frozen=True)
class RunFinished:
    """The run completed; ``result`` is :meth:`diffbench.engine.result.RunResult.to_dict`."""

    result: dict = field(default_factory=dict)
    t_s: float = 0.0


@dataclass(frozen=True)
class RunFailed:
    """The run ended without a result. ``status`` is "failed" or "cancelled".

    ``result`` holds what was measured before the end (a RunResult dict with that status).
    """

    reason: str
    status: str = "failed"
    result: dict = field(default_factory=dict)
    log_tail: str = ""
    t_s: float = 0.0


@dataclass(frozen=True)
class TelemetrySample:
    """One reading of the device and the host during a run (diffbench.engine.telemetry),
    sent about once a second by a child run that was asked for it. Consumers that do not know
    this kind skip it (diffbench.engine.child_messages), so older readers are unaffected.

    GPU fields are None when there is no GPU to read (``gpu_note`` says why: a CPU run, no
    NVML) or NVML does not report them on this board. ``gpu_util_pct``: percent of the last
    sample period a kernel ran (NVML utilization.gpu, 0-100); ``mem_used_gib`` /
    ``mem_total_gib``: device memory of all processes (NVML, GiB = 2**30 bytes), as
    ``nvidia-smi`` shows; ``power_w`` / ``power_limit_w``: board power draw and enforced limit
    (W); ``sm_clock_mhz``: SM clock (MHz); ``temp_c``: GPU temperature (deg C).
    Host: ``load1``: 1-minute load average (os.getloadavg; None on Windows); ``cpus``: logical
    CPUs; ``cpu_pct``: all CPUs busy since the previous sample (0-100, psutil);
    ``proc_cpu_pct``: this process's CPU time over the same period (100 = one core busy).
    """

    gpu_name: Optional[str] = None
    gpu_index: Optional[int] = None
    gpu_util_pct: Optional[float] = None
    mem_used_gib: Optional[float] = None
    mem_total_gib: Optional[float] = None
    power_w: Optional[float] = None
    power_limit_w: Optional[float] = None
    sm_clock_mhz: Optional[float] = None
    temp_c: Optional[float] = None
    load1: Optional[float] = None
    cpus: Optional[int] = None
    cpu_pct: Optional[float] = None
    proc_cpu_pct: Optional[float] = None
    gpu_note: str = ""
    t_s: float = 0.0


Event = Union[PhaseStarted, PhaseFinished, StepFinished, CompileProgress, LogMessage,
              RunFinished, RunFailed, TelemetrySample]
EventCallback = Callable[[Event], None]

_EVENT_TYPES = {cls.__name__: cls for cls in (
    PhaseStarted, PhaseFinished, StepFinished, CompileProgress, LogMessage, RunFinished,
    RunFailed, TelemetrySample)}


def to_dict(event: Event) -> dict[str, Any]:
    """Return the event as a JSON-serialisable dict with a ``"type"`` key."""
    data = dataclasses.asdict(event)
    data["type"] = type(event).__name__
    return data


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from :func:`to_dict` output.

    Raises:
        ValueError: unknown ``type``, or fields that do not match the event class.
    """
    if not isinstance(data, dict):
        raise ValueError(f"event must be a JSON object, got {type(data).__name__}")
    payload = dict(data)
    kind = payload.pop("type", None)
    cls = _EVENT_TYPES.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"unknown event type {kind!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(payload) - names
    if unknown:
        raise ValueError(f"{kind}: unknown fields {sorted(unknown)}")
    try:
        return cls(**payload)
    except TypeError as exc:
        raise ValueError(f"{kind}: {exc}") from None


def null_callback(event: Event) -> None:  # noqa: ARG001 - the do-nothing default
    """Event sink that drops everything (the default for library callers)."""

