"""The throughput view: pipeline time against denoising steps for the form's settings, the
fitted line ``time = base + steps * per_step`` (diffbench.engine.throughput) and a text plot of both.

The fit runs in a thread worker, in this process (the pipeline loads once and is timed at
every step count); ctrl+g cancels between timed calls.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, ProgressBar, Static

from diffbench.engine.config import RunConfig
from diffbench.engine.errors import ConfigError, DiffbenchError, RunCancelled
from diffbench.engine.metrics import MISSING, format_metric, metric
from diffbench.tui.bridge import analysis

#: Default step counts: a few points, cheap on the tiny models, enough for a stable slope.
DEFAULT_STEPS = "2:12:2"
DEFAULT_REPEATS = 3
#: R^2 below this: the line explains the points poorly (a busy machine); say so.
GOOD_R2 = 0.9


class ThroughputPoint(Message):
    """``done`` of ``total`` timed calls finished; the last took ``seconds`` (replaceable)."""

    def __init__(self, token: int, done: int, total: int, seconds: float) -> None:
        super().__init__()
        self.token, self.done, self.total, self.seconds = token, done, total, seconds

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ThroughputPoint) and message.token == self.token


class ThroughputStatus(Message):
    """A phase of loading/warming the pipeline started."""

    def __init__(self, token: int, text: str) -> None:
        super().__init__()
        self.token, self.text = token, text


class ThroughputEnded(Message):
    """The fit is done (``result``: diffbench.engine.throughput.ThroughputResult) or failed
    (``error``, one line; ``cancelled`` when stopped by the user)."""

    def __init__(self, token: int, result: Any = None, error: str = "",
                 cancelled: bool = False) -> None:
        super().__init__()
        self.token, self.result, self.error, self.cancelled = token, result, error, cancelled


def figures(result: Any) -> list[tuple[str, str]]:
    """(label, value) rows of a ThroughputResult: base cost (s), per-step cost (ms), it/s
    without base, R^2, warmup (s), points."""
    fit = result.fit
    rows = []
    if fit is not None:
        no_base = fit.it_per_s_no_base
        # words and formats from the metrics catalog
        rows += [(metric(key).short, format_metric(key, getattr(fit, key)))
                 for key in ("base_s", "per_step_ms")]
        rows.append((metric("it_per_s_no_base").short,
                     format_metric("it_per_s_no_base", no_base) if no_base
                     else f"{MISSING} (slope <= 0)"))
        rows.append((metric("r2").short, format_metric("r2", fit.r2)))
    if result.warmup_s is not None:
        rows.append((metric("warmup_s").short, format_metric("warmup_s", result.warmup_s)))
    rows.append(("points", f"{len(result.steps)} ({min(result.steps)}..{max(result.steps)} "
                           f"steps)"))
    return rows


class ThroughputScreen(Screen[None]):
    """Fit pipeline time against steps for ``cfg``.

    Args:
        cfg: the settings (from the form); ``cfg.steps`` is replaced by each step count.
        timer: ``timer(steps) -> seconds`` replaces the pipeline (tests); None = real.
    """

    BINDINGS = [
        Binding("ctrl+r", "start", "Measure"),
        Binding("ctrl+g", "stop", "Cancel"),
        Binding("escape", "close", "Close"),
    ]
    DEFAULT_CSS = """
    ThroughputScreen #tp_box { padding: 0 1; }
    ThroughputScreen #tp_controls { height: auto; }
    ThroughputScreen #tp_steps { width: 1fr; }
    ThroughputScreen #tp_repeats, ThroughputScreen #tp_threads { width: 18; }
    ThroughputScreen #tp_controls Button { margin-left: 1; }
    ThroughputScreen #tp_status { height: auto; margin-top: 1; }
    ThroughputScreen #tp_results { height: 1fr; }
    ThroughputScreen #tp_figures { width: 40; }
    ThroughputScreen #tp_plot { width: 1fr; }
    """

    def __init__(self, cfg: RunConfig, timer: Optional[Callable[[int], float]] = None,
                 threads: str = "") -> None:
        super().__init__()
        self.cfg = cfg
        self.timer = timer
        self.default_threads = threads
        self.token = 0
        self.running = False
        self.cancel_event: Optional[threading.Event] = None
        self.result: Any = None

    def compose(self) -> ComposeResult:
        cfg = self.cfg
        size = f"{cfg.width}x{cfg.height}" if cfg.width and cfg.height else "native size"
        with Vertical(id="tp_box"):
            yield Static(f"{cfg.model} {cfg.task} {size}, compiler {cfg.compiler}, "
                         f"{cfg.warmups} warmup(s): time of one pipeline call at each step "
                         f"count, fastest of the repeats kept", id="tp_base")
            with Horizontal(id="tp_controls"):
                yield Input(DEFAULT_STEPS, placeholder="steps: 2,4,8 or 2:20:2",
                            id="tp_steps", compact=True)
                yield Input(str(DEFAULT_REPEATS), placeholder="repeats", id="tp_repeats",
                            compact=True)
                yield Input(self.default_threads, placeholder="CPU threads (1 = steadiest)",
                            id="tp_threads", compact=True)
                yield Button("Measure  ctrl+r", id="tp_start", variant="success",
                             compact=True)
                yield Button("Cancel  ctrl+g", id="tp_stop", variant="warning", compact=True,
                             disabled=True)
            yield ProgressBar(id="tp_progress", show_eta=False)
            yield Static("ctrl+r measures; the pipeline loads once in this process.",
                         id="tp_status")
            with Horizontal(id="tp_results"):
                yield Static("", id="tp_figures")
                yield Static("", id="tp_plot")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#tp_box").border_title = "Throughput: time vs denoising steps"
        self.query_one("#tp_steps", Input).focus()

    def _status(self, text: str, style: str = "") -> None:
        self.query_one("#tp_status", Static).update(Text(text, style=style))

    @on(Button.Pressed, "#tp_start")
    @on(Input.Submitted)
    def action_start(self) -> None:
        """Parse the step counts (bad input: one line) and start the worker."""
        if self.running:
            self.notify("measuring already; ctrl+g cancels", severity="warning")
            return
        if getattr(self.app, "running", False):
            self.notify("a run is in progress; the timings would compete with it",
                        severity="warning")
            return
        try:
            steps = analysis.parse_steps(self.query_one("#tp_steps", Input).value)
            repeats = self._int("#tp_repeats", "repeats") or DEFAULT_REPEATS
            threads = self._int("#tp_threads", "threads")
        except ConfigError as exc:
            self._status(f"Cannot measure: {exc}", "bold red")
            return
        self.token += 1
        self.running = True
        self.cancel_event = threading.Event()
        self._buttons()
        bar = self.query_one("#tp_progress", ProgressBar)
        bar.update(total=len(steps) * repeats, progress=0)
        self._status(f"Loading {self.cfg.model}...", "bold cyan")
        self._worker(steps, repeats, threads, self.token, self.cancel_event)

    def _int(self, selector: str, name: str) -> Optional[int]:
        text = self.query_one(selector, Input).value.strip()
        if not text:
            return None
        try:
            value = int(text)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {text!r}") from None
        if value < 1:
            raise ConfigError(f"{name} must be at least 1")
        return value

    @work(thread=True, exclusive=True, group="throughput", exit_on_error=False)
    def _worker(self, steps: list[int], repeats: int, threads: Optional[int], token: int,
                cancel: threading.Event) -> None:
        post = self.post_message
        try:
            result = analysis.run_throughput(
                self.cfg, steps, repeats,
                on_point=lambda done, total, s: post(ThroughputPoint(token, done, total, s)),
                on_status=lambda text: post(ThroughputStatus(token, text)),
                cancel=cancel, threads=threads, timer=self.timer)
        except RunCancelled as exc:
            post(ThroughputEnded(token, error=str(exc), cancelled=True))
        except DiffbenchError as exc:
            post(ThroughputEnded(token, error=str(exc)))
        except Exception as exc:  # an engine bug or a crash while timing: one line
            post(ThroughputEnded(token, error=f"{type(exc).__name__}: {exc}"))
        else:
            post(ThroughputEnded(token, result))

    @on(ThroughputStatus)
    def _on_status(self, message: ThroughputStatus) -> None:
        if message.token == self.token and self.running:
            self._status(message.text, "bold cyan")

    @on(ThroughputPoint)
    def _on_point(self, message: ThroughputPoint) -> None:
        if message.token != self.token:
            return
        self.query_one("#tp_progress", ProgressBar).update(total=message.total,
                                                           progress=message.done)
        self._status(f"timed call {message.done}/{message.total}: {message.seconds:.3f} s",
                     "bold cyan")

    @on(ThroughputEnded)
    def _on_ended(self, message: ThroughputEnded) -> None:
        if message.token != self.token:
            return
        self.running = False
        self._buttons()
        if message.result is None:
            style = "bold yellow" if message.cancelled else "bold red"
            self._status(("Cancelled: " if message.cancelled else "Failed: ") + message.error,
                         style)
            return
        self.result = message.result
        self.show(message.result)

    def show(self, result: Any) -> None:
        """Fill the figures table and the plot from a ThroughputResult."""
        text = Text()
        for label, value in figures(result):
            style = ""
            if label == "R^2" and result.fit is not None:
                style = "green" if result.fit.r2 >= GOOD_R2 else "bold yellow"
            text.append(f"{label:<18}", style="bold")
            text.append(f"{value:>20}\n", style=style)
        self.query_one("#tp_figures", Static).update(text)
        plot = self.query_one("#tp_plot", Static)
        width = max(20, plot.content_size.width - 12)
        plot.update(Text("\n".join(analysis.throughput_plot(result, width=width,
                                                            height=12))))
        fit = result.fit
        if fit is not None and fit.r2 < GOOD_R2:
            self._status(f"R^2 {fit.r2:.2f} is low: the timings are noisy (a busy machine?); "
                         f"try more repeats, 1 CPU thread or a wider step range", "bold yellow")
        else:
            self._status("Done: time = base + steps x per-step cost (least squares).",
                         "bold green")

    @on(Button.Pressed, "#tp_stop")
    def action_stop(self) -> None:
        if self.running and self.cancel_event is not None:
            self.cancel_event.set()
            self._status("Cancelling after the current timed call...", "bold yellow")
        else:
            self.notify("nothing is being measured")

    def _buttons(self) -> None:
        self.query_one("#tp_start", Button).disabled = self.running
        self.query_one("#tp_stop", Button).disabled = not self.running

    def action_close(self) -> None:
        if self.cancel_event is not None:
            self.cancel_event.set()  # let the worker end; its late message is dropped
        self.dismiss(None)
