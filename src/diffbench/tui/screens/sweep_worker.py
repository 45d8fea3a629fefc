"""A dashboard sweep in its thread worker: runs the sweep through
diffbench.tui.bridge.analysis.run_sweep and posts what happens as messages to the sweep view
(a cell started or recorded, a denoising step of a cell's measured call, the sweep's end).
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

from textual.message import Message

from diffbench.engine.errors import DiffbenchError
from diffbench.engine.result import RunResult
from diffbench.tui.bridge import analysis
from diffbench.tui.bridge.running import EngineFn


class SweepCell(Message):
    """Cell ``key`` started (status "running", result None) or was recorded."""

    def __init__(self, token: int, key: str, status: str, result: Optional[RunResult],
                 resumed: bool) -> None:
        super().__init__()
        self.token, self.key, self.status = token, key, status
        self.result, self.resumed = result, resumed


class SweepStep(Message):
    """Denoising step ``index`` of ``total`` of cell ``key``'s measured call (replaceable)."""

    def __init__(self, token: int, key: str, index: int, total: int) -> None:
        super().__init__()
        self.token, self.key, self.index, self.total = token, key, index, total

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SweepStep) and message.token == self.token


class SweepEnded(Message):
    """The sweep worker is done; ``error`` is a one-line reason when it could not run."""

    def __init__(self, token: int, error: str = "") -> None:
        super().__init__()
        self.token, self.error = token, error



def run_sweep_posting(post: Callable[[Message], Any], token: int, sweep: Any, history: Any,
                      stop: threading.Event, cancel: threading.Event,
                      engine: Optional[EngineFn] = None, in_process: bool = False) -> None:
    """Run (or resume) ``sweep``, recording cells in ``history``; ``post`` each cell's
    SweepCell and SweepStep messages and a SweepEnded last (with a one-line error when the
    sweep could not run: bad input, or an engine bug — the dashboard stays up). Call from a
    thread worker. ``stop`` / ``cancel`` / ``engine`` / ``in_process``: as
    diffbench.tui.bridge.analysis.run_sweep."""
    try:
        analysis.run_sweep(
            sweep, history,
            on_cell=lambda key, status, result, resumed: post(
                SweepCell(token, key, status, result, resumed)),
            on_step=lambda key, index, total: post(SweepStep(token, key, index, total)),
            stop=stop, cancel=cancel, engine=engine, in_process=in_process)
    except DiffbenchError as exc:
        post(SweepEnded(token, str(exc)))
    except Exception as exc:  # an engine bug: one line, the dashboard stays up
        post(SweepEnded(token, f"{type(exc).__name__}: {exc}"))
    else:
        post(SweepEnded(token))
