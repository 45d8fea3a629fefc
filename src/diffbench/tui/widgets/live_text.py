"""The live view's lines as text: the step row, the compile line, the start-up line and
what a stopped run leaves behind. Pure functions over the run messages, so each wording is
tested without a screen.

Every figure says what it is: "last step" is the newest denoising step's host wall time,
"p50 so far" the median of this call's steps after step 1 (step 1 includes prompt
encoding), it/s the engine's own definition over those steps (steps 2..N over their time).
Durations go through :func:`diffbench.tui.widgets.format.fmt_s` ("850 ms", "12.3 s",
"2m43s"), never as raw milliseconds.
"""

from __future__ import annotations

import statistics
from typing import Any, Optional

from rich.text import Text

from diffbench.tui.widgets.format import fmt_s


def fmt_ms(ms: Optional[float]) -> str:
    """A step time: "41 ms" below a second, else as :func:`fmt_s` ("2m43s", not
    "163288 ms")."""
    if ms is None:
        return fmt_s(None)
    return f"{ms:.0f} ms" if ms < 1000 else fmt_s(ms / 1000.0)


def call_name(message: Any) -> str:
    """"measured", "warmup 2" or "warmup" for a StepProgress message."""
    if message.call == "measured":
        return "measured"
    return f"warmup {message.warmup_index}" if message.warmup_index else "warmup"


def step_row(message: Any, cache: str = "none") -> str:
    """The step row for a StepProgress message (diffbench.tui.messages.StepProgress):
    "warmup 1 7/10  24.10 it/s  last step 41 ms  p50 so far 40 ms  ETA 2.00 s". ``cache``: the
    run's step cache ("none": no "skipped k/n")."""
    parts = [f"{call_name(message)} {message.index}/{message.total}"]
    if message.live_it_per_s:
        parts.append(f"{message.live_it_per_s:.2f} it/s")
    parts.append(f"last step {fmt_ms(message.step_ms)}")
    if message.recent_ms:
        parts.append(f"p50 so far {fmt_ms(statistics.median(message.recent_ms))}")
    if message.eta_s is not None and message.index < message.total:
        parts.append(f"ETA {fmt_s(message.eta_s)}" if message.eta_s >= 1 else "ETA <1s")
    if cache != "none":
        skipped = message.steps_skipped
        # "skipped 2/4": 2 of the 4 steps so far were skipped, 2 computed
        parts.append("skipped n/a" if skipped is None else f"skipped {skipped}/{message.index}")
    return "  ".join(parts)


def stopped_row(message: Optional[Any], status: str) -> str:
    """The step row once a run stopped early (``status`` "cancelled" or "failed"): where
    it stopped, without rates (the step that was cut off, often the compiling one, gives
    none worth reading)."""
    if message is None:
        return f"{status} before the first denoising step"
    return f"{status} in {call_name(message)} at step {message.index}/{message.total}"


def compile_line(message: Any, estimate: Optional[tuple[float, str]] = None,
                 ended: str = "") -> Text:
    """The compile line for a CompileUpdate message: stage and elapsed time first (they
    must stay in view), the last compile of the same settings, then the counters.

    ``estimate``: (seconds, run id) of the last compile of the same key from the history;
    ``ended``: "cancelled"/"failed" when the run stopped during the compile."""
    stage = getattr(message, "stage", "")
    text = Text.assemble(("compile ", "bold"))
    if ended:
        text.append(f"{ended} after {fmt_s(message.elapsed_s)}", style="bold yellow")
        if stage:
            text.append(f" (in {stage})")
    else:
        text.append(f"{stage} {fmt_s(message.elapsed_s)}" if stage else
                    fmt_s(message.elapsed_s), style="bold yellow")
    if estimate is not None:
        text.append(f"  last time {fmt_s(estimate[0])}", style="dim")
    hits, misses = getattr(message, "cache_hits", 0), getattr(message, "cache_misses", 0)
    text.append(f"  frames {message.frames}  graphs {message.graphs}  kernels "
                f"{message.kernels}")
    if hits or misses:
        text.append(f"  cache {hits} hit / {misses} miss")
    text.append(f"  recompiles {message.recompiles}")
    return text


def starting_line(description: str, elapsed_s: float, child: bool) -> str:
    """The status line before the run's first phase: what the seconds after ctrl+r are
    spent on (in a child process: starting Python, importing torch and diffusers)."""
    where = ("child process: spawn, import torch + diffusers" if child
             else "preparing the run")
    return f"{description} start {fmt_s(elapsed_s)} ({where}; model load next)"
