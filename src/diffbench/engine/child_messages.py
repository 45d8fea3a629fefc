"""Reading a child run's event stream: each stdout line of ``python -m
diffbench.engine.worker`` is one JSON object — hello, an engine event, job progress or the
result. A line that breaks the protocol stops the child (SIGKILL) and fails the run.

:class:`ChildMessages` is a mixin of diffbench.engine.client's child run: it reads and sets
the run's state (``hello``, ``result``, ``terminal``, ``failure``, ``heard_at``, ...)
and calls its ``_signal``. Every line but a telemetry sample resets the stall watchdog
(``heard_at``): samples come from a thread of their own, see :meth:`_handle_telemetry`.
"""

from __future__ import annotations

import json
import signal
import time

from diffbench.engine import events as ev
from diffbench.engine.child_process import _TRUNCATED
from diffbench.engine.worker import PROTOCOL

#: The event kind the child's telemetry sampler thread sends (diffbench.engine.telemetry).
TELEMETRY_KIND = ev.TelemetrySample.__name__


class ChildMessages:
    """Handles each line the child writes (see the module docstring)."""

    def _handle_line(self, line: str) -> None:
        if self.failure and self.failure.startswith("protocol error"):
            return
        if line.startswith(_TRUNCATED):
            self._protocol_error(f"the event stream ended mid-line (truncated): "
                                 f"{clip(line[len(_TRUNCATED):])!r}")
            return
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except ValueError:
            self._protocol_error(f"child wrote a line that is not a JSON object: "
                                 f"{clip(line)!r}")
            return
        kind = data.get("type")
        if kind == TELEMETRY_KIND:
            self._handle_telemetry(data)
            return
        self.heard_at = time.monotonic()  # a sign of life for the stall watchdog
        if kind == "hello":
            self.hello = data
            if data.get("protocol") != PROTOCOL:
                self._protocol_error(f"child speaks protocol {data.get('protocol')!r}, this "
                                     f"diffbench speaks {PROTOCOL}; use matching versions")
            return
        if kind == "result":
            if isinstance(data.get("result"), dict):
                self.result = data["result"]
                self.baseline_checked = data.get("baseline_checked") is True
                if isinstance(data.get("job_result"), dict):
                    self.job_result = data["job_result"]
                if isinstance(data.get("error_kind"), str):
                    self.error_kind = data["error_kind"]
            else:
                self._protocol_error("child sent a result that is not an object")
            return
        if kind == "job_progress":
            self.run_begun = True
            if self.on_progress is not None and isinstance(data.get("data"), dict):
                self.on_progress(data["data"])
            return
        try:
            event = ev.event_from_dict(data)
        except ValueError as exc:
            # A newer child may add event types or fields: skip them, say so once.
            notice = f"ignored an event the child sent: {exc}"
            if notice not in self.notices:
                self.notices.append(notice)
            return
        self.run_begun = True
        # What the stall watchdog allows next (diffbench.engine.client._ChildRun._stalled);
        # other events (logs, compile progress) leave it as it was.
        if isinstance(event, (ev.StepFinished, ev.PhaseStarted, ev.PhaseFinished)):
            self.between_steps = isinstance(event, ev.StepFinished) and \
                event.index < event.total
        if isinstance(event, ev.PhaseStarted):
            self.phase = event.phase
        elif isinstance(event, ev.StepFinished):
            self.phase = f"{event.call} step {event.index + 1}/{event.total}"
        if isinstance(event, ev.PhaseFinished):
            self.phase_times[event.phase] = event.elapsed_s
        if isinstance(event, (ev.RunFinished, ev.RunFailed)):
            self.terminal = event
        self.on_event(event)

    def _handle_telemetry(self, data: dict) -> None:
        """A TelemetrySample line: passed on, but neither a sign of life for the stall
        watchdog nor the run's start. The child's sampler thread sends it (from before the
        run's imports on), so it keeps coming while the run's own thread is deadlocked or
        still importing; only the run's lines reset ``heard_at`` or set ``run_begun``."""
        try:
            event = ev.event_from_dict(data)
        except ValueError as exc:
            notice = f"ignored an event the child sent: {exc}"
            if notice not in self.notices:
                self.notices.append(notice)
            return
        self.on_event(event)

    def _protocol_error(self, reason: str) -> None:
        self.failure = f"protocol error: {reason}"
        self._signal(signal.SIGKILL)
        self.killed = True


def clip(text: str, limit: int = 120) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``limit`` characters (the
    cut marked "...")."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
