"""Textual messages the run worker posts to the app (one per engine event kind).

The worker thread translates engine events (engine/events.py) into these messages; the app
handles them on its own thread. Every message carries ``token``, the run it belongs to, so a
late message from a finished or cancelled run can be told apart and dropped.

Step and compile progress are *replaceable* (``can_replace``): when a burst of them is
waiting in the queue, Textual keeps only the newest, so 1,000 step events per second cost
the screen one update per frame, not 1,000. That is why a step message carries the recent
step_ms history itself instead of one value: dropping older messages loses nothing.
"""

from __future__ import annotations

from typing import Any, Optional

from textual.message import Message


class RunMessage(Message):
    """Base: a message about run ``token`` (an int the app gives each run it starts)."""

    def __init__(self, token: int) -> None:
        super().__init__()
        self.token = token


class PhaseChanged(RunMessage):
    """A phase (diffbench.engine.events.PHASES) started (``elapsed_s`` None) or finished."""

    def __init__(self, token: int, phase: str, detail: str = "",
                 elapsed_s: Optional[float] = None, t_s: float = 0.0) -> None:
        super().__init__(token)
        self.phase = phase
        self.detail = detail
        self.elapsed_s = elapsed_s
        self.t_s = t_s

    @property
    def finished(self) -> bool:
        return self.elapsed_s is not None


class StepProgress(RunMessage):
    """Denoising step ``index`` of ``total`` ended in the ``call`` ("warmup"/"measured").

    ``recent_ms`` holds the step_ms of this call's latest steps after step 1 (newest last, at
    most diffbench.tui.bridge.events.SPARK_POINTS; step 1 includes prompt encoding);
    ``live_it_per_s`` is steps/s over the steps after step 1
    (the engine's own it/s definition, on host wall time); ``eta_s`` the seconds left in this
    call at that rate (None before two steps). ``steps_skipped``: steps of this call a
    diffusers step cache skipped so far (None: no cache, or one that gives no count).
    """

    def __init__(self, token: int, call: str, index: int, total: int, step_ms: float,
                 recent_ms: tuple[float, ...] = (), live_it_per_s: Optional[float] = None,
                 eta_s: Optional[float] = None, warmup_index: int = 0,
                 steps_skipped: Optional[int] = None) -> None:
        super().__init__(token)
        self.steps_skipped = steps_skipped
        self.call = call
        self.index = index
        self.total = total
        self.step_ms = step_ms
        self.recent_ms = recent_ms
        self.live_it_per_s = live_it_per_s
        self.eta_s = eta_s
        self.warmup_index = warmup_index

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StepProgress) and message.token == self.token


class CompileUpdate(RunMessage):
    """Cumulative compiler counters (diffbench.engine.events.CompileProgress), with the
    stage the compiler is in and the compile-cache hits / misses so far."""

    def __init__(self, token: int, frames: int, graphs: int, kernels: int, recompiles: int,
                 elapsed_s: float, message: str = "", stage: str = "", cache_hits: int = 0,
                 cache_misses: int = 0) -> None:
        super().__init__(token)
        self.stage = stage
        self.cache_hits = cache_hits
        self.cache_misses = cache_misses
        self.frames = frames
        self.graphs = graphs
        self.kernels = kernels
        self.recompiles = recompiles
        self.elapsed_s = elapsed_s
        self.message = message

    def can_replace(self, message: Message) -> bool:
        # Counters are cumulative, so the newest supersedes older ones -- unless the older
        # one carries a text the log should still show.
        return (isinstance(message, CompileUpdate) and message.token == self.token
                and not message.message)


class LogLine(RunMessage):
    """A notice, warning or error line for the log pane."""

    def __init__(self, token: int, level: str, text: str) -> None:
        super().__init__(token)
        self.level = level
        self.text = text


class RunEnded(RunMessage):
    """The run is over. ``result`` is an diffbench.engine.result.RunResult (status finished, failed or
    cancelled) or None when the engine produced none; ``reason`` is a one-line explanation for
    failed/cancelled runs. ``save_error`` is set (one line) when storing ``result`` in the
    history failed; the run worker stores it before posting this message."""

    def __init__(self, token: int, status: str, result: Any = None, reason: str = "") -> None:
        super().__init__(token)
        self.status = status
        self.result = result
        self.reason = reason
        self.save_error: Optional[str] = None


class GpuUpdate(RunMessage):
    """An NVML reading during run ``token`` (see diffbench.tui.gpu.GpuSample)."""

    def __init__(self, token: int, sample: Any) -> None:
        super().__init__(token)
        self.sample = sample

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, GpuUpdate)


class TelemetryUpdate(RunMessage):
    """A telemetry reading of run ``token``'s child (diffbench.engine.events.TelemetrySample
    in ``sample``): GPU utilisation, memory, power, clock, temperature and host load. Not
    replaceable: each one is a point of the panel's time series."""

    def __init__(self, token: int, sample: Any) -> None:
        super().__init__(token)
        self.sample = sample
