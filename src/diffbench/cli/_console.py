"""rich Consoles for the subcommands, with one closed-pipe behaviour for the whole CLI."""

from __future__ import annotations

from typing import Any

from rich.console import Console


class PipeAwareConsole(Console):
    """A rich Console that lets a closed stdout reach the CLI's quiet exit (code 141) and
    goes silent on a closed stderr.

    rich's own ``on_broken_pipe`` ends the process with ``SystemExit(1)``, so
    ``diffbench doctor | head -2`` would exit 1 while ``diffbench history --json | head -1``
    exits 141; raising BrokenPipeError instead makes both end the same way (diffbench.cli.main). On
    stderr (live progress, notes, warnings) a closed pipe must not stop a run before its
    results are stored (``diffbench run ... 2>&1 | head -c1``): that console just stops writing.
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True  # nothing more to write on this stream
        if self.stderr:
            return
        raise BrokenPipeError


def make_console(**kwargs: Any) -> Console:
    """A :class:`PipeAwareConsole` with rich Console's keyword arguments."""
    return PipeAwareConsole(**kwargs)
