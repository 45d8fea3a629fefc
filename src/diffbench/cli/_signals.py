"""SIGTERM and SIGHUP during `diffbench run`: stop the run the way Ctrl-C does (the child is
asked to stop after the current denoising step, then terminated), and remember why, so the
run is recorded as "interrupted" with the reason and the command exits 128 + the signal.

SIGHUP comes when the terminal goes: a dropped SSH session, a closed tmux pane or terminal
window. Output to that terminal would fail from then on, so stdout and stderr are pointed at
/dev/null when they were a terminal; the history row and any export still get written.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any, Optional

_REASONS = {
    "SIGTERM": "diffbench got SIGTERM (kill, or a shutdown)",
    "SIGHUP": "diffbench got SIGHUP (the terminal closed: a dropped SSH session or a closed "
              "tmux pane)",
}


class Termination:
    """Context manager: while active, SIGTERM and SIGHUP raise KeyboardInterrupt in the main
    thread (the run's wait loop turns that into a graceful cancel) until :meth:`defer` is
    called; after that they are only noted, so the result is still saved.

    ``reason`` (one line) and ``signum`` are set once a signal came.
    """

    def __init__(self) -> None:
        self.reason: Optional[str] = None
        self.signum: Optional[int] = None
        self._raise = True
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "Termination":
        for name in _REASONS:
            number = getattr(signal, name, None)
            if number is None:  # pragma: no cover - no SIGHUP on Windows
                continue
            try:
                self._previous[number] = signal.signal(number, self._handle)
            except ValueError:  # not the main thread: leave the default
                pass
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def defer(self) -> None:
        """From now on a signal is only noted (the run has ended; its result is saved)."""
        self._raise = False

    @property
    def exit_code(self) -> Optional[int]:
        """128 + the signal number (the shell's convention), or None without a signal."""
        return 128 + self.signum if self.signum is not None else None

    def _handle(self, number: int, frame: Any) -> None:
        name = signal.Signals(number).name
        if self.signum is None:
            self.signum, self.reason = number, _REASONS.get(name, f"diffbench got {name}")
        if name == "SIGHUP":
            _leave_the_terminal()
        if self._raise:
            raise KeyboardInterrupt


def _leave_the_terminal() -> None:
    """Point stdout and stderr at /dev/null where they were a terminal that is gone."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None and os.isatty(stream.fileno()):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, stream.fileno())
                os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass
