"""`diffbench serve`: the dashboard in a web browser, through textual-serve, on localhost only.

Each browser tab gets its own dashboard process (textual-serve starts one per connection).
textual-serve is an optional extra (``pip install 'diffbench[serve]'``); diffbench.tui.serve imports it
when the command runs, so the engine itself never imports it (nor textual).
"""

from __future__ import annotations

import argparse
import shlex
import sys

from diffbench.engine.errors import DiffbenchError

#: The only interface the server binds to: the dashboard runs benchmarks and writes files,
#: so it is not offered to the network. Reach it from elsewhere through an SSH tunnel.
HOST = "localhost"


class ServeUnavailableError(DiffbenchError):
    """textual-serve is missing; the message names the install command."""

    exit_code = 2


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `diffbench serve`."""
    parser = sub.add_parser(
        "serve", help="serve the dashboard to a browser on localhost",
        description="Serve the dashboard to a web browser through textual-serve, bound to "
                    "localhost. From another machine: ssh -L PORT:localhost:PORT host.")
    parser.add_argument("--port", type=_port, default=8000, help="TCP port (default 8000)")
    parser.set_defaults(handler=main)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a number, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, got {value}")
    return value


def dashboard_command() -> str:
    """The shell command textual-serve runs per browser connection (this interpreter)."""
    return f"{shlex.quote(sys.executable)} -m diffbench.tui.app"


def main(args: argparse.Namespace) -> int:
    """Start the server (blocks until interrupted).

    Raises:
        ServeUnavailableError: textual-serve is not installed.
    """
    from diffbench.tui.serve import serve

    try:
        serve(dashboard_command(), HOST, args.port)
    except ImportError as exc:
        if not (exc.name or "").startswith("textual_serve"):
            raise
        raise ServeUnavailableError(
            "serving needs textual-serve: pip install 'diffbench[serve]' "
            "(or pip install textual-serve)") from None
    return 0
