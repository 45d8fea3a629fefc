"""`diffbench` command line: `diffbench` alone opens the dashboard; subcommands run headless.

Each subcommand lives in engine/commands/<name>.py and provides ``add_parser(subparsers)``
(registering itself with ``set_defaults(handler=main)``) and ``main(args) -> int``.
Expected failures (diffbench.engine.errors.DiffbenchError) print one line on stderr and exit with the
error's exit code (2 for bad input); nothing else is caught here on purpose.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from diffbench import __version__
from diffbench.engine.errors import DiffbenchError

#: Subcommand modules under diffbench.cli, in the order `--help` lists them.
COMMANDS = ("run", "sweep", "throughput", "check-params", "history", "export", "compare",
            "doctor", "serve")


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad flags in one line with exit code 2 (its default code)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"diffbench: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full parser; subcommands whose module is missing are skipped."""
    parser = _Parser(prog="diffbench", description=(
        "Measure and accelerate diffusion inference. Without a subcommand, opens the "
        "dashboard."))
    parser.add_argument("--version", action="version", version=f"diffbench {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    for name in COMMANDS:
        module_name = f"diffbench.cli.{name.replace('-', '_')}"  # check-params -> check_params
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        module.add_parser(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the `diffbench` console script. Returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            # a full-screen app on a pipe would wait forever, drawing escape codes
            print("diffbench: error: the dashboard needs a terminal; in scripts use a "
                  "subcommand such as `diffbench run` (diffbench --help lists them)",
                  file=sys.stderr)
            return 2
        from diffbench.tui.app import main as tui_main  # the dashboard; imports no torch at start

        return tui_main()
    try:  # Ctrl-C while the subcommands are imported is an interrupt too, not a traceback
        parser = build_parser()
        args = parser.parse_args(argv)
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return 2
        code = int(handler(args) or 0)
        # Write what is buffered now: a reader that left early (| head) shows up here, not
        # as an "Exception ignored" message when the interpreter exits.
        sys.stdout.flush()
        return code
    except DiffbenchError as exc:
        # one line, whatever a library put in the message (a parser's excerpt of the input)
        print(f"diffbench: error: {' '.join(str(exc).splitlines())}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("diffbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _closed_pipe()


def _closed_pipe() -> int:
    """The reader of our output went away (``diffbench history --json | head -1``, or
    ``2>&1 | head -c1``): exit quietly as other command-line tools do. Python's documented
    recipe (library "signal", note on SIGPIPE): a stream whose flush fails is pointed at
    devnull, so the interpreter's final flush cannot raise again (which would exit 120 with an
    "Exception ignored" message). Returns 141 (128 + SIGPIPE), the shell's code for a closed
    pipe."""
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
            except (OSError, ValueError):  # not a real file
                pass
        except (AttributeError, OSError, ValueError):  # no stream, or already closed
            pass
    return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
