"""The RunResult of a child run, however the child ended: its own result, the result of a
run that finished before the child died, or a failed / cancelled result naming the signal,
exit code, protocol error or timeout, with the child's last output in ``log_tail``. Also
makes sure RunFinished / RunFailed is the last event the caller sees.

:class:`ChildOutcome` is a mixin of diffbench.engine.client's child run: it reads the run's
state (``result``, ``terminal``, ``failure``, ``hello``, ``log``, ...).
"""

from __future__ import annotations

from typing import Optional

from diffbench.engine import events as ev
from diffbench.engine.child_messages import clip
from diffbench.engine.child_process import _EXITING, LOG_TAIL_CHARS, _signal_name
from diffbench.engine.result import RunResult

_SIGNAL_REASONS = {
    "SIGKILL": "child killed by SIGKILL (out of memory? the kernel's OOM killer sends it)",
    "SIGSEGV": "child crashed with SIGSEGV (segmentation fault)",
    "SIGABRT": "child aborted (SIGABRT)",
    "SIGBUS": "child crashed with SIGBUS (bus error)",
    "SIGILL": "child crashed with SIGILL (illegal instruction)",
    "SIGFPE": "child crashed with SIGFPE (arithmetic error)",
    "SIGTERM": "child terminated by SIGTERM",
}


class ChildOutcome:
    """Turns how the child ended into the run's RunResult (see the module docstring)."""

    def _outcome(self, returncode: Optional[int]) -> RunResult:
        tail = self._log_tail()
        if self.result is not None and self.failure is None:
            try:
                result = RunResult.from_dict(self.result)
            except (TypeError, ValueError) as exc:
                self.failure = f"protocol error: child sent a bad result ({exc})"
            else:
                result.notices = list(result.notices) + self.notices
                if result.status != "finished" and not result.log_tail:
                    result.log_tail = tail
                result.baseline_checked = self.baseline_checked  # type: ignore[attr-defined]
                self._ensure_terminal_event(result)
                return result
        reason = self.failure or self._exit_reason(returncode)
        finished = self.terminal.result if isinstance(self.terminal, ev.RunFinished) else None
        if finished and self.failure is None and not _EXITING.is_set():
            # The run completed and said so; only the last line was lost (a crash at exit).
            try:
                result = RunResult.from_dict(finished)
            except (TypeError, ValueError):
                pass
            else:
                result.notices = list(result.notices) + self.notices + [
                    f"the child ended badly after the run finished: {reason}"]
                result.log_tail = tail
                return result
        if _EXITING.is_set():
            return self._failed("cancelled: diffbench exited during the run", "cancelled",
                                tail)
        cancelled = self.cancel.is_set() and not (self.failure or "").startswith(
            ("timed out", "protocol"))
        return self._failed(reason if not cancelled else f"cancelled ({reason})",
                            "cancelled" if cancelled else "failed", tail)

    def _exit_reason(self, returncode: Optional[int]) -> str:
        if returncode is None:
            return "child did not exit"
        if returncode < 0:
            name = _signal_name(-returncode)
            reason = _SIGNAL_REASONS.get(name, f"child killed by {name}")
            if name == "SIGKILL" and self.killed:
                reason = "child killed by SIGKILL"
        elif returncode > 0:
            reason = f"child exited with code {returncode}"
        else:
            reason = "child exited without sending a result (event stream truncated)"
        if self.hello is None and returncode != 0:
            reason += f" before it started ({self.python})"
        last = self._last_error_line() if returncode and returncode > 0 else ""
        return f"{reason}: {last}" if last else reason

    def _last_error_line(self) -> str:
        for line in reversed(self.log):
            line = line.strip()
            if line and not line.startswith(("File ", "Traceback", "^", "~")):
                return clip(line, 200)
        return ""

    def _failed(self, reason: str, status: str, tail: str) -> RunResult:
        data = self.base.to_dict()
        partial = None
        if self.terminal is not None and getattr(self.terminal, "result", None):
            partial = self.terminal.result
        if partial:
            data.update({k: v for k, v in partial.items() if k in ("config", "environment",
                                                                     "metrics", "image_path")})
        result = RunResult.from_dict(data)
        result.status, result.error, result.log_tail = status, reason, tail
        if not partial:
            for phase, field in (("load", "load_s"), ("accelerate", "accelerate_s"),
                                 ("warmup", "warmup_s")):
                if phase == "warmup" and not self.cfg.warmups:
                    continue  # no warmup calls: warmup_s stays None, as the runner reports
                if phase in self.phase_times:
                    setattr(result.metrics, field, self.phase_times[phase])
        if self.hello and not result.environment:
            result.environment = dict(self.hello.get("environment") or {})
        result.notices = list(result.notices) + self.notices
        self._ensure_terminal_event(result, force=True)
        return result

    def _finish_without_child(self, reason: str) -> RunResult:
        return self._failed(reason, "failed", "")

    def _ensure_terminal_event(self, result: RunResult, force: bool = False) -> None:
        """Send RunFinished/RunFailed last if the child did not, or if its one is stale."""
        if self.terminal is not None and not force:
            return
        if self.terminal is not None and isinstance(self.terminal, ev.RunFailed) and \
                self.terminal.status == result.status and self.terminal.reason == result.error:
            return
        if result.status == "finished":
            self.on_event(ev.RunFinished(result=result.to_dict()))
        else:
            self.on_event(ev.RunFailed(reason=result.error or result.status,
                                       status=result.status, result=result.to_dict(),
                                       log_tail=result.log_tail or ""))

    def _log_tail(self) -> str:
        text = "\n".join(self.log)
        return text[-LOG_TAIL_CHARS:]
