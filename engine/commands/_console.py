"""rich Consoles for the subcommands, with one closed-pipe behaviour for the whole CLI."""

from __future__ import annotations

from typing import Any

from rich.console import Console


class PipeAwareConsole(Console):
    """A rich Console that lets a closed pipe reach the CLI's quiet exit (code 141).

    rich's own ``on_broken_pipe`` ends the process with ``SystemExit(1)``, so
    ``diffbench doctor | head -2`` would exit 1 while ``diffbench history --json | head -1``
    exits 141; raising BrokenPipeError instead makes both end the same way (engine.cli).
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True  # nothing more to write anywhere
        raise BrokenPipeError


def make_console(**kwargs: Any) -> Console:
    """A :class:`PipeAwareConsole` with rich Console's keyword arguments."""
    return PipeAwareConsole(**kwargs)
