"""Engine events -> the dashboard's Textual messages (see diffbench.tui.messages)."""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Optional

from diffbench.engine import events as ev
from diffbench.tui import messages as msg

#: Step times kept for the live sparkline (newest last).
SPARK_POINTS = 120


class EventTranslator:
    """Turns engine events into dashboard messages posted with ``post`` (thread-safe).

    Keeps the step history of the current call so every StepProgress message is complete on
    its own (older ones may be dropped by Textual's ``can_replace``).
    """

    def __init__(self, post: Callable[[Any], Any], token: int) -> None:
        self.post = post
        self.token = token
        self._call_key: Optional[tuple[str, int]] = None
        self._recent: deque[float] = deque(maxlen=SPARK_POINTS)
        self._sum_after_first_ms = 0.0

    def __call__(self, event: Any) -> None:
        token = self.token
        if isinstance(event, ev.StepFinished):
            self._on_step(event)
        elif isinstance(event, ev.PhaseStarted):
            self.post(msg.PhaseChanged(token, event.phase, event.detail, None, event.t_s))
        elif isinstance(event, ev.PhaseFinished):
            self.post(msg.PhaseChanged(token, event.phase, "", event.elapsed_s, event.t_s))
        elif isinstance(event, ev.CompileProgress):
            self.post(msg.CompileUpdate(token, event.frames, event.graphs, event.kernels,
                                        event.recompiles, event.elapsed_s, event.message,
                                        getattr(event, "stage", ""),
                                        getattr(event, "cache_hits", 0),
                                        getattr(event, "cache_misses", 0)))
            if event.message:
                self.post(msg.LogLine(token, "info", event.message))
        elif isinstance(event, ev.LogMessage):
            self.post(msg.LogLine(token, event.level, event.text))
        elif isinstance(event, ev.TelemetrySample):
            self.post(msg.TelemetryUpdate(token, event))
        # RunFinished / RunFailed: the returned RunResult is authoritative; see run_engine.

    def _on_step(self, event: "ev.StepFinished") -> None:
        key = (event.call, event.warmup_index)
        if key != self._call_key or event.index == 1:
            self._call_key = key
            self._recent.clear()
            self._sum_after_first_ms = 0.0
        it_per_s = eta_s = None
        if event.index > 1:
            # step 1 includes prompt encoding: kept out of the sparkline, as out of step_ms
            self._recent.append(float(event.step_ms))
            # OneDiff's definition: steps 2..N over the time since step 1's end.
            self._sum_after_first_ms += float(event.step_ms)
            if self._sum_after_first_ms > 0:
                it_per_s = (event.index - 1) / (self._sum_after_first_ms / 1000.0)
                eta_s = max(0, event.total - event.index) / it_per_s
        self.post(msg.StepProgress(self.token, event.call, event.index, event.total,
                                   float(event.step_ms), tuple(self._recent), it_per_s, eta_s,
                                   event.warmup_index,
                                   getattr(event, "steps_skipped", None)))
