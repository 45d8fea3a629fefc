"""A run from the dashboard: start it in a thread worker, cancel it, follow its messages
(phase, steps, compile progress, GPU, log lines) into the live panel, and report its end;
quitting during a run asks first, then waits for the cancelled run to be recorded.

A mixin of :class:`diffbench.tui.app.DiffbenchApp`. The run messages (diffbench.tui.messages)
are handled by name (``on_phase_changed``, ...), as Textual dispatches them to the app.
"""

from __future__ import annotations

import threading
from typing import Any, Optional

from textual import work

from diffbench.engine.config import RunConfig
from diffbench.engine.result import RunResult
from diffbench.tui import form_memory
from diffbench.tui import messages as msg
from diffbench.tui.bridge.running import kill_child_runs, run_engine
from diffbench.tui.runs import accel_of, last_compile
from diffbench.tui.widgets.format import fmt_s
from diffbench.tui.widgets.live import PHASE_LABELS, StartUpEnded
from diffbench.tui.widgets.results import ResultPanels


class RunActions:
    """Mixin: the run in progress (``run_token``, ``running_cfg``, ``cancel_event``,
    ``quit_state`` on the app)."""

    def start_run(self, cfg: RunConfig, remember: Optional[dict[str, Any]] = None) -> None:
        """Start ``cfg`` in the run worker; ``remember``: form values to restore at the next
        start (written by the worker thread)."""
        self.run_token = next(self._tokens)
        self.running_cfg = cfg
        self.current_phase = None
        self.cancel_event = threading.Event()
        description = f"starting {cfg.model} {cfg.task}, compiler {cfg.compiler}..."
        size = f"{cfg.width}x{cfg.height}" if cfg.width else "native size"
        estimate = last_compile(cfg.to_dict(), self.table().runs)
        child = self._engine is None and not self._in_process
        self.live().begin(description, f"{cfg.model} {cfg.task} {size} {cfg.compiler} "
                                       f"{cfg.steps} steps", getattr(cfg, "cache", "none"),
                          child=child, compile_estimate=estimate)
        self.log_line("info", f"run {self.run_token}: {cfg.model} task={cfg.task} "
                              f"compiler={cfg.compiler} steps={cfg.steps}")
        self.query_one(ResultPanels).mark_previous()
        self.validate_form()  # "Ready: ctrl+r..." gives way to "Running: ctrl+g cancels"
        self._run_worker(cfg, self.run_token, self.cancel_event, remember)
        if self.gpu_available:
            self._gpu_worker(self.run_token, self.cancel_event)

    @work(thread=True, exclusive=True, group="run", exit_on_error=False)
    def _run_worker(self, cfg: RunConfig, token: int, cancel: threading.Event,
                    remember: Optional[dict[str, Any]] = None) -> None:
        if remember is not None:
            form_memory.save(remember)  # here, not in the UI thread: it fsyncs

        # The session stores the result (baseline compared, as `diffbench run` does) here,
        # before the UI hears of it: quitting at once (ctrl+q twice during a run) ends the
        # UI, but the app waits for this thread, so the cancelled run still reaches the
        # history.
        run_engine(cfg, self.post_message, token, cancel, self._engine,
                   self._in_process, history=self._history)

    def action_cancel(self) -> None:
        """Ask the engine to stop at the next step or warmup boundary."""
        if not self.running or self.cancel_event is None:
            self.notify("nothing is running")
            return
        if self.cancel_event.is_set():
            self.notify("already cancelling; the engine stops at the next step")
            return
        self.cancel_event.set()
        cfg = self.running_cfg
        what = PHASE_LABELS.get(self.current_phase or "", "start-up")
        line = f"Cancelling {what} of {cfg.model if cfg else 'the run'}..."
        self.live().set_status(line, style="bold yellow")
        self.log_line("warning", line)

    def on_phase_changed(self, message: msg.PhaseChanged) -> None:
        if message.token != self.run_token:
            return
        if not message.finished:
            self.current_phase = message.phase
        self.live().phase(message)

    def on_start_up_ended(self, message: StartUpEnded) -> None:
        self.log_line("info", f"start-up took {fmt_s(message.elapsed_s)} (ctrl+r to the "
                              "first phase: process start, imports)")

    def on_step_progress(self, message: msg.StepProgress) -> None:
        if message.token == self.run_token:
            self.live().step(message)

    def on_compile_update(self, message: msg.CompileUpdate) -> None:
        if message.token == self.run_token:
            self.live().compile(message)

    def on_gpu_update(self, message: msg.GpuUpdate) -> None:
        # the child's telemetry (chart_actions), when it comes, has the line instead
        if message.token == self.run_token and self.telemetry_token != message.token:
            self.live().gpu(message)

    def on_log_line(self, message: msg.LogLine) -> None:
        if message.token == self.run_token:
            self.log_line(message.level, message.text)

    def on_run_ended(self, message: msg.RunEnded) -> None:
        if message.token != self.run_token:
            return
        cfg = self.running_cfg
        self.run_token = 0
        self.cancel_event = None
        result: Optional[RunResult] = message.result
        if result is not None:
            self.session_run_ids.add(result.run_id)
            if message.save_error:
                self.notify(message.save_error, severity="error")
            self.last_result = result
            self.refresh_history()
            self._select_run(result.run_id)
        name = cfg.model if cfg else "run"
        if message.status == "finished" and result is not None:
            m = result.metrics
            from diffbench.engine.metrics import format_metric

            line = (f"Finished {name} ({accel_of(result)}): inference "
                    f"{format_metric('inference_s', m.inference_s)}, "
                    f"{format_metric('it_per_s', m.it_per_s, unit=True)}")
            self.live().end("finished", line)
            self.notify(line, title="Run finished", timeout=4)
        elif message.status == "cancelled":
            line = f"Cancelled {name}: {message.reason or 'stopped by you'}"
            self.live().end("cancelled", line)
            self.notify(line, severity="warning", title="Run cancelled")
        else:
            line = f"Failed {name}: {message.reason or 'unknown error'}"
            self.live().end("failed", line)
            self.log_line("error", line)
            # markup off: an install hint's "diffbench[lora]" is text, not a style tag
            self.notify(line, severity="error", title="Run failed", timeout=8, markup=False)
        self.validate_form()
        if self.quit_state == "cancelling":  # the cancelled run is in the history now
            self.exit()

    #: How long a confirmed quit waits for the cancelled run to reach the history (s).
    QUIT_WAIT_S = 15.0

    async def action_quit(self) -> None:
        """Quit; during a run, ask first, then cancel it and wait (at most QUIT_WAIT_S) for
        the cancelled run to be recorded — except while the run is still starting (no phase
        yet, load, accelerate), when its child is stopped and the app quits at once. ctrl+q
        again (dialog up or cancelling) or SIGTERM quits at once: the run's child is still
        stopped, and its thread records the run as it ends."""
        if self.running and self.quit_state is None:
            from diffbench.tui.screens.confirm import ConfirmScreen

            self.quit_state = "asked"
            self.push_screen(ConfirmScreen("A run is in progress: cancel it and quit? y/n"),
                             self._quit_answered)
            return
        self._quit_now()

    def _quit_answered(self, yes: Optional[bool]) -> None:
        if self.quit_state != "asked":
            return
        if not yes:
            self.quit_state = None
            return
        if not self.running:  # it ended while the dialog was up: it is recorded already
            self._quit_now()
            return
        if self.current_phase in (None, "load", "accelerate"):
            # Still starting: nothing measured to keep, and a child importing torch or
            # loading the model hears a cancel only when done: stop it now, quit at once.
            self._quit_now()
            return
        self.quit_state = "cancelling"
        self.action_cancel()
        self.live().set_status("Cancelling... quits once the run is saved (ctrl+q: quit now)",
                               style="bold yellow")
        self.set_timer(self.QUIT_WAIT_S, self._quit_now)

    def _quit_now(self) -> None:
        if self.cancel_event is not None:
            self.cancel_event.set()  # let the worker thread end so the process can exit
            # the app's shutdown waits for the run worker: kill its child instead of
            # giving it the graceful-cancel period (only for the real child-process engine)
            if self._engine is None and not self._in_process:
                kill_child_runs()
        self.exit()
