"""Run a benchmark in a child process (``python -m diffbench.engine.worker``) and read its events.

:func:`run_in_child` has :func:`diffbench.engine.runner.run`'s contract — events to ``on_event``,
``cancel`` honoured, a RunResult returned, never an exception for a failed run — but a crash,
an out-of-memory kill or a hang of the child cannot take the caller down: each ends as a
failed RunResult with a one-line reason and the child's last output in ``log_tail``.

Cancel escalates: a ``{"cmd": "cancel"}`` message (the child stops after the current denoising
step or warmup call), then SIGTERM to the child's process group after ``grace_s``, then
SIGKILL after :data:`TERM_GRACE_S`. The child runs in its own session/process group (a
Ctrl-C in the terminal reaches only the parent, which cancels gracefully), dies with its
parent on Linux (PR_SET_PDEATHSIG, set by the worker), and is killed at interpreter exit
(atexit) otherwise.

A caller with its own checks to do first (``diffbench run``'s preflight) can start the child
before them with :func:`start_child` and hand it to :func:`run_in_child` afterwards: the
child spends the wait importing torch and diffusers, so the checks cost no wall time. A child
that gets no run is stopped with :meth:`StartedChild.discard` (SIGKILL to its group, reaped;
also done at interpreter exit).

The process plumbing (starting, signalling, reaping) is diffbench.engine.child_process; the
child's lines are read by diffbench.engine.child_messages and the RunResult of however the
child ended is built by diffbench.engine.child_outcome.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from diffbench.engine import events as ev
from diffbench.engine.child_messages import ChildMessages
from diffbench.engine.child_outcome import ChildOutcome
from diffbench.engine.child_process import StartedChild, _signal_group, _stop_process
from diffbench.engine.result import RunResult
from diffbench.engine.worker import PROTOCOL

#: Seconds a child gets to stop after a cancel message before SIGTERM.
CANCEL_GRACE_S = 10.0
#: Seconds between SIGTERM and SIGKILL.
TERM_GRACE_S = 3.0
#: Seconds a child may take to exit after closing its event stream.
EXIT_GRACE_S = 5.0
#: Seconds to wait for the hello line; a child that cannot start says so on stderr.
HELLO_TIMEOUT_S = 120.0
#: Stall watchdog: the longest silence (no line from the child) allowed between denoising
#: steps, in seconds (``diffbench run --stall-timeout``; 0 = no watchdog). Any line counts
#: (events, compile progress, job progress) but telemetry samples: those come from the
#: child's sampler thread, which goes on while the run's thread is deadlocked.
STALL_TIMEOUT_S = 600.0
#: Loading, compiling (the first warmup call), decoding and every phase that is not between
#: two steps of a call may be silent this many times longer (downloads, cold compiles).
SLOW_PHASE_FACTOR = 6.0


def run_in_child(cfg: Any, on_event: Optional[ev.EventCallback] = None,
                 cancel: Optional[threading.Event] = None, python: Optional[str] = None,
                 timeout_s: Optional[float] = None, grace_s: float = CANCEL_GRACE_S,
                 env: Optional[dict[str, str]] = None,
                 child: Optional[StartedChild] = None, baseline: bool = False,
                 history: Optional[str] = None, run_id: Optional[str] = None,
                 started_at: Optional[str] = None,
                 stall_timeout_s: Optional[float] = None) -> RunResult:
    """Run ``cfg`` (a RunConfig) in a child interpreter; return its RunResult.

    Args:
        cfg: the validated RunConfig (sent as ``cfg.to_dict()``).
        on_event: called in this thread with every engine event, in order; a terminal
            RunFinished or RunFailed event always comes last (synthesised here when the child
            died before sending one).
        cancel: set it to stop the run: graceful, then SIGTERM after ``grace_s`` s, then
            SIGKILL. KeyboardInterrupt in this thread counts as a cancel (a second one kills).
        python: interpreter for the child (default: cfg.python, else this interpreter).
        timeout_s: wall-clock limit in seconds for the whole run (default cfg.timeout_s;
            None = no limit). Past it the child is stopped and the run fails.
        env: extra environment variables for the child.
        child: a child from :func:`start_child` to run in (then ``python`` and ``env`` are
            the ones it was started with); each can run one config.
        baseline: ask the child to fill PSNR/SSIM against the run's baseline in the history
            (diffbench.engine.quality.attach_baseline; it has numpy and PIL loaded already). The result
            then has ``baseline_checked`` True (an attribute, not serialised) when the child
            dealt with it; otherwise the caller still may.
        history: the history file the child looks for the baseline in (default: the data
            folder's).
        run_id, started_at: the run's id and start (ISO 8601) when the caller recorded it
            already (diffbench.engine.session.Session.begin); default: new ones.
        stall_timeout_s: the stall watchdog's bound in seconds (default
            :data:`STALL_TIMEOUT_S`; 0 turns it off): when the child sends nothing for that
            long between denoising steps (:data:`SLOW_PHASE_FACTOR` times that in any other
            phase) it is killed and the run fails with "stalled: ...".

    Returns:
        RunResult with status "finished", "failed" or "cancelled". Failures of the child
        (signals, exit codes, protocol errors, timeouts) give status "failed", a one-line
        ``error`` and ``log_tail``. Never raises for a failed run; exceptions raised by
        ``on_event`` propagate after the child has been stopped.

    When the main thread of this interpreter ends while a run is in progress (a quit
    dashboard), the child is killed at once and the run returns as "cancelled"; join the
    calling thread first to let a run complete.
    """
    if child is not None:
        if child.used:
            raise ValueError("this child process was already used or discarded")
        python = child.python
    run = _ChildRun(cfg, on_event or ev.null_callback, cancel or threading.Event(),
                    python or getattr(cfg, "python", None) or sys.executable,
                    timeout_s if timeout_s is not None else getattr(cfg, "timeout_s", None),
                    grace_s, env, child, baseline,
                    {"history": history} if baseline and history else None)
    if run_id:
        run.base.run_id = run_id
    if started_at:
        run.base.started_at = started_at
    if stall_timeout_s is not None:
        run.stall_timeout_s = stall_timeout_s
    return run.run()


def run_job_in_child(job: str, cfg: Any, job_args: dict,
                     on_event: Optional[ev.EventCallback] = None,
                     on_progress: Optional[Callable[[dict], None]] = None,
                     cancel: Optional[threading.Event] = None, python: Optional[str] = None,
                     timeout_s: Optional[float] = None, env: Optional[dict[str, str]] = None
                     ) -> tuple[RunResult, Optional[dict], Optional[str]]:
    """Run a job of diffbench.engine.jobs (``"throughput"``, ``"check_params"``) on ``cfg`` in
    a child interpreter, with :func:`run_in_child`'s guarantees (crash, kill, hang, timeout
    and cancel end as a failed or cancelled RunResult, never take the caller down).

    Args:
        job_args: the job's arguments (JSON-serialisable).
        on_progress: called in this thread with each job_progress message's data dict.

    Returns:
        (RunResult with the status and one-line error, the job's result dict or None, the
        name of the DiffbenchError class the job raised or None);
        diffbench.engine.jobs.decode turns them into the job's result or exception.
    """
    run = _ChildRun(cfg, on_event or ev.null_callback, cancel or threading.Event(),
                    python or getattr(cfg, "python", None) or sys.executable,
                    timeout_s if timeout_s is not None else getattr(cfg, "timeout_s", None),
                    CANCEL_GRACE_S, env, None, False, {"job": job, "job_args": job_args},
                    on_progress)
    result = run.run()
    return result, run.job_result, run.error_kind


class _ChildRun(ChildMessages, ChildOutcome):
    """State of one child run (see :func:`run_in_child`)."""

    def __init__(self, cfg: Any, on_event: ev.EventCallback, cancel: threading.Event,
                 python: str, timeout_s: Optional[float], grace_s: float,
                 env: Optional[dict[str, str]], child: Optional[StartedChild] = None,
                 baseline: bool = False, request_extra: Optional[dict] = None,
                 on_progress: Optional[Callable[[dict], None]] = None) -> None:
        self.cfg, self.on_event, self.cancel = cfg, on_event, cancel
        self.baseline = baseline
        self.request_extra = request_extra or {}
        self.on_progress = on_progress
        self.job_result: Optional[dict] = None  # a job's output (diffbench.engine.jobs)
        self.error_kind: Optional[str] = None
        self.baseline_checked = False  # the child compared the image with its baseline
        self.python, self.timeout_s, self.grace_s = python, timeout_s, grace_s
        # The child process and its readers (started here unless the caller started it).
        self.child = child if child is not None else StartedChild(python, env)
        self.proc = self.child.proc
        self.lines, self.log = self.child.lines, self.child.log
        self.stderr_done = self.child.stderr_done
        self.base = RunResult(status="failed", config=cfg.to_dict())
        self.base.started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.notices: list[str] = []
        self.result: Optional[dict] = None      # from the "result" line
        self.terminal: Optional[ev.Event] = None  # RunFinished / RunFailed seen
        self.hello: Optional[dict] = None
        self.run_begun = False                  # an engine event has arrived
        self.failure: Optional[str] = None      # our reason to stop the child
        self.cancel_sent_at: Optional[float] = None
        self.term_sent_at: Optional[float] = None
        self.killed = False
        self.phase_times: dict[str, float] = {}
        self.stall_timeout_s = STALL_TIMEOUT_S
        self.heard_at: Optional[float] = None   # the child's last line (telemetry aside)
        self.between_steps = False              # the last event was a step with more to come
        self.phase = "start-up"                 # named in a stall's reason

    # ------------------------------------------------------------------ main loop
    def run(self) -> RunResult:
        self.child.used = True
        if self.proc is None:
            return self._finish_without_child(self.child.error or "cannot start the child")
        try:
            return self._drive()
        finally:
            self._stop_now()

    def _drive(self) -> RunResult:
        proc = self.proc
        assert proc is not None and proc.stdin and proc.stdout and proc.stderr
        stderr_done = self.stderr_done
        request = {"protocol": PROTOCOL, "config": self.cfg.to_dict(),
                   "run_id": self.base.run_id, "started_at": self.base.started_at}
        if self.baseline:
            request["baseline"] = True
        request.update(self.request_extra)
        self._send(request)
        started = self.heard_at = time.monotonic()
        interrupts = 0
        stream_open = True
        while stream_open or proc.poll() is None:
            try:
                try:
                    line = self.lines.get(timeout=0.1)
                except queue.Empty:
                    line = ""
                if line is None:
                    stream_open = False
                elif line:
                    self._handle_line(line)  # sets heard_at, but not for telemetry
                self._escalate(started)
            except KeyboardInterrupt:
                interrupts += 1
                self.cancel.set()
                if interrupts > 1:
                    self._signal(signal.SIGKILL)
                    self.killed = True
            if not stream_open and proc.poll() is None:
                # stdout closed but the process lingers: give it a moment, then stop it.
                try:
                    proc.wait(timeout=EXIT_GRACE_S)
                except subprocess.TimeoutExpired:
                    if self.result is None:
                        self.failure = self.failure or "child closed its event stream but " \
                                                       "did not exit"
                    self._signal(signal.SIGKILL)
                    self.killed = True
        stderr_done.wait(timeout=2.0)
        return self._outcome(proc.returncode)

    # ------------------------------------------------------------------ cancel / timeout
    def _escalate(self, started: float) -> None:
        now = time.monotonic()
        if self.hello is None and self.failure is None and now - started > HELLO_TIMEOUT_S:
            self.failure = f"the child did not start within {HELLO_TIMEOUT_S:g} s"
            self._signal(signal.SIGKILL)
            self.killed = True
            return
        if self._stalled(now):
            return
        if self.timeout_s is not None and self.failure is None and \
                now - started > self.timeout_s and self.proc.poll() is None:
            self.failure = (f"timed out after {self.timeout_s:g} s (--timeout / timeout_s); the child was "
                            f"stopped")
            self._signal(signal.SIGTERM)
            self.term_sent_at = now
            return
        if self.cancel.is_set() and self.cancel_sent_at is None:
            self.cancel_sent_at = now
            self._send({"cmd": "cancel"})
            if not self.run_begun and self.proc.poll() is None:
                # Still importing its libraries: no run to stop between steps, nothing to
                # save, and the imports would not see the message for seconds.
                self._signal(signal.SIGTERM)
                self.term_sent_at = now
        if self.cancel_sent_at is not None and self.term_sent_at is None and \
                now - self.cancel_sent_at > self.grace_s:
            self.notices.append(f"the child did not stop within {self.grace_s:g} s of the "
                                f"cancel; it was terminated")
            self._signal(signal.SIGTERM)
            self.term_sent_at = now
        if self.term_sent_at is not None and not self.killed and \
                now - self.term_sent_at > TERM_GRACE_S:
            self._signal(signal.SIGKILL)
            self.killed = True

    def _stalled(self, now: float) -> bool:
        """The stall watchdog: kill a child that has been silent for longer than its phase
        allows (a SIGSTOPped or deadlocked child answers no cancel, so no grace period)."""
        if not self.stall_timeout_s or self.failure is not None or self.hello is None \
                or self.heard_at is None or self.proc.poll() is not None:
            return False
        bound = self.stall_timeout_s * (1.0 if self.between_steps else SLOW_PHASE_FACTOR)
        if now - self.heard_at <= bound:
            return False
        self.failure = (f"stalled: the child sent nothing for {bound:g} s during "
                        f"{self.phase} (stopped or deadlocked?); it was killed "
                        f"(--stall-timeout {self.stall_timeout_s:g})")
        self._signal(signal.SIGKILL)
        self.killed = True
        return True

    def _send(self, message: dict) -> None:
        try:
            assert self.proc is not None and self.proc.stdin is not None
            self.proc.stdin.write((json.dumps(message) + "\n").encode("utf-8"))
            self.proc.stdin.flush()
        except (OSError, ValueError):
            pass  # the child is gone; its exit status tells why

    def _signal(self, sig: int) -> None:
        _signal_group(self.proc, sig)

    def _stop_now(self) -> None:
        """Make sure no child (or grandchild in its group) outlives this call."""
        _stop_process(self.proc)
