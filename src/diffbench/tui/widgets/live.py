"""Live view of a run: phase timeline, step progress with it/s and ETA, step_ms sparkline,
compile counters and a status line (what is running, what is being cancelled)."""

from __future__ import annotations

import time
from typing import Any, Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Static

from diffbench.engine.events import PHASES
from diffbench.tui import messages as msg
from diffbench.tui.widgets.format import fmt_s
from diffbench.tui.widgets import live_text

#: What the user calls each engine phase.
PHASE_LABELS = {"load": "load", "accelerate": "accelerate", "warmup": "warmup/compile",
                "measure": "measured call", "save": "decode/save"}
#: Shorter names for the one-line timeline ("start": ctrl+r to the run's first phase:
#: spawning the child, importing torch and diffusers).
TIMELINE_LABELS = {"start": "start", "load": "load", "accelerate": "accel",
                   "warmup": "warmup", "measure": "measure", "save": "save"}


class PhaseTimeline(Static):
    """One line: each phase dim (pending), bold (running, with elapsed) or done (seconds)."""

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.reset()

    def reset(self) -> None:
        self.state: dict[str, tuple[str, float]] = {}  # phase -> (status, seconds/start)
        self.current: Optional[str] = None
        self.detail = ""
        self.refresh_text()

    def started(self, phase: str, detail: str) -> None:
        prior = self.state.get(phase)
        # warmups repeat the phase: keep the accumulated time so the total stays honest
        carried = prior[1] if prior and prior[0] == "done" else 0.0
        self.state[phase] = ("running", time.monotonic() - carried)
        self.current, self.detail = phase, detail
        self.refresh_text()

    def finished(self, phase: str, elapsed_s: float) -> None:
        prior = self.state.get(phase)
        total = elapsed_s
        if prior and prior[0] == "running":
            total = max(elapsed_s, time.monotonic() - prior[1])
        self.state[phase] = ("done", total)
        if self.current == phase:
            self.current = None
        self.refresh_text()

    def stop_running(self, status: str) -> None:
        """Mark a phase still running as ended with ``status`` ("failed"/"cancelled")."""
        for phase, (state, start) in list(self.state.items()):
            if state == "running":
                self.state[phase] = (status, time.monotonic() - start)
        self.current = None
        self.refresh_text()

    def refresh_text(self) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        shown = (("start",) if "start" in self.state else ()) + PHASES
        for i, phase in enumerate(shown):
            if i:
                text.append(" › ", style="dim")
            label = TIMELINE_LABELS.get(phase, phase)
            state, value = self.state.get(phase, ("pending", 0.0))
            if state == "running":
                text.append(f"{label} {fmt_s(time.monotonic() - value)}", style="bold yellow")
            elif state == "done":
                text.append(f"{label} {fmt_s(value)}", style="green")
            elif state in ("failed", "cancelled"):
                text.append(f"{label} {state}", style="bold red")
            else:
                text.append(label, style="dim")
        self.update(text)


class StartUpEnded(Message):
    """The run's first phase began ``elapsed_s`` seconds after ctrl+r (spawning the child,
    importing torch and diffusers); the app logs it."""

    def __init__(self, elapsed_s: float) -> None:
        super().__init__()
        self.elapsed_s = elapsed_s


class LivePanel(Vertical):
    """The live area. The app feeds it the run messages (diffbench.tui.messages)."""

    def compose(self) -> ComposeResult:
        # The step row and the sparkline are mounted by begin(): they are hidden until a
        # run's first step, and fewer widgets make the first screen come up sooner.
        yield PhaseTimeline(id="timeline")
        yield Static("", id="compile_text")
        yield Static("", id="gpu_text")
        yield Static("Ready. Pick a model and press ctrl+r to run.", id="status")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._pending_step: Optional[msg.StepProgress] = None
        self._last_step_draw = 0.0
        self._step_timer_armed = False
        # the step row and sparkline: mounted by begin() (see compose)
        self._steprow: Optional[Horizontal] = None
        self._bar: Any = None
        self._step_text: Optional[Static] = None
        self._spark: Any = None
        self._cache = "none"  # the run's --cache: its steps computed / skipped are shown
        self._last_step: Optional[msg.StepProgress] = None  # the newest drawn
        self._last_compile: Optional[msg.CompileUpdate] = None
        self._compile_estimate: Optional[tuple[float, str]] = None
        self._starting: Optional[tuple[str, bool]] = None  # (description, child) until load

    def on_mount(self) -> None:
        self.border_title = "Live"
        self.query_one("#compile_text").display = False
        self.query_one("#gpu_text").display = False
        self.set_interval(0.5, self._tick)

    def _ensure_step_widgets(self) -> None:
        if self._steprow is not None:
            return
        # imported here: textual's ProgressBar and Sparkline modules cost start-up time too
        from textual.widgets import ProgressBar, Sparkline

        self._bar = ProgressBar(total=None, show_eta=False, id="steps_bar")
        self._step_text = Static("", id="step_text")
        self._spark = Sparkline([], id="spark")
        self._spark.display = False
        self._steprow = Horizontal(self._bar, self._step_text, id="steprow", classes="idle")
        self.mount(self._steprow, self._spark, after="#timeline")

    def _tick(self) -> None:
        timeline = self.query_one(PhaseTimeline)
        if timeline.current:  # keep the running phase's clock moving between events
            timeline.refresh_text()
        if self._starting is not None and timeline.state.get("start", ("",))[0] == "running":
            description, child = self._starting
            elapsed = time.monotonic() - timeline.state["start"][1]
            self.set_status(live_text.starting_line(description, elapsed, child))

    # ------------------------------------------------------------------ feeding
    def begin(self, description: str, title: str = "", cache: str = "none",
              child: bool = False, compile_estimate: Optional[tuple[float, str]] = None
              ) -> None:
        """A run starts: clear the view. ``cache``: the run's step cache ("none": no
        computed/skipped count in the step row); ``child``: it runs in a child process
        (the start-up line says what its first seconds are spent on);
        ``compile_estimate``: (seconds, run id) of the last compile of the same settings."""
        self.border_title = f"Live: {title}" if title else "Live"
        self._cache = cache or "none"
        self._pending_step = None
        self._last_step = self._last_compile = None
        self._compile_estimate = compile_estimate
        self._starting = (description, child)
        self._ensure_step_widgets()
        self.query_one(PhaseTimeline).reset()
        self.query_one(PhaseTimeline).started("start", "")
        bar = self._bar
        bar.update(total=None, progress=0)
        self._steprow.add_class("idle")
        self._step_text.update("")
        self._spark.data = []
        self._spark.display = False
        compile_text = self.query_one("#compile_text", Static)
        compile_text.update("")
        compile_text.display = False
        self.set_status(description)

    def phase(self, message: msg.PhaseChanged) -> None:
        self.flush_step()  # a call's last step must show before the next phase starts
        timeline = self.query_one(PhaseTimeline)
        if self._starting is not None:  # the run's first phase: start-up is over
            self._starting = None
            started = timeline.state.pop("start", None)
            if started is not None and started[0] == "running":
                # off the timeline once over (a wall-clock figure; the phases after it are
                # the engine's own), into the log
                self.post_message(StartUpEnded(time.monotonic() - started[1]))
        if message.finished:
            timeline.finished(message.phase, message.elapsed_s or 0.0)
        else:
            timeline.started(message.phase, message.detail)
            label = PHASE_LABELS.get(message.phase, message.phase)
            self.set_status(f"{label}: {message.detail}" if message.detail else label)

    #: At most this many step redraws per second: beyond ~20 fps the eye gains nothing and
    #: key presses would queue behind rendering.
    MAX_STEP_FPS = 20

    def step(self, message: msg.StepProgress) -> None:
        """Show ``message`` now, or within 1/MAX_STEP_FPS s if a redraw just happened."""
        self._pending_step = message
        wait = self._last_step_draw + 1.0 / self.MAX_STEP_FPS - time.monotonic()
        if wait <= 0:
            self.flush_step()
        elif not self._step_timer_armed:
            self._step_timer_armed = True
            self.set_timer(wait, self.flush_step)

    def flush_step(self) -> None:
        """Draw the newest step message not drawn yet (no-op when there is none)."""
        self._step_timer_armed = False
        message, self._pending_step = self._pending_step, None
        if message is None:
            return
        self._last_step_draw = time.monotonic()
        self._draw_step(message)

    def _draw_step(self, message: msg.StepProgress) -> None:
        self._ensure_step_widgets()
        self._steprow.remove_class("idle")
        self._bar.update(total=message.total, progress=message.index)
        self._last_step = message
        self._step_text.update(live_text.step_row(message, self._cache), layout=False)
        spark = self._spark
        spark.data = list(message.recent_ms)
        spark.display = bool(message.recent_ms)

    def compile(self, message: msg.CompileUpdate) -> None:
        widget = self.query_one("#compile_text", Static)
        widget.display = True
        self._last_compile = message
        widget.update(live_text.compile_line(message, self._compile_estimate))

    def gpu(self, message: msg.GpuUpdate) -> None:
        sample = message.sample
        widget = self.query_one("#gpu_text", Static)
        widget.display = True
        widget.update(Text.assemble(
            ("GPU ", "bold"), f"{sample.name}  memory {sample.used_gib:.2f}/"
            f"{sample.total_gib:.1f} GiB  util {sample.util_pct}%"), layout=False)

    def end(self, status: str, line: str) -> None:
        self.flush_step()
        self._starting = None
        if status != "finished":
            timeline = self.query_one(PhaseTimeline)
            compiling = timeline.current == "warmup" and self._last_compile is not None \
                and (self._last_step is None or self._last_step.call != "measured")
            timeline.stop_running(status)
            # no rate from a cut-off step (the compiling one reads "163288 ms/step")
            if self._step_text is not None:
                self._step_text.update(live_text.stopped_row(self._last_step, status))
            if compiling:
                self.query_one("#compile_text", Static).update(live_text.compile_line(
                    self._last_compile, self._compile_estimate, ended=status))
        self.set_status(line)

    def set_status(self, line: str, style: str = "") -> None:
        self.query_one("#status", Static).update(Text(line, style=style))
