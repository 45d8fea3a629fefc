"""`diffbench serve`: the dashboard in a web browser, through textual-serve, on localhost only.

Each browser tab gets its own dashboard process (textual-serve starts one per connection).
diffbench.tui.serve guards it: a per-start token in the printed URL, Host and Origin checks,
and dashboard processes that end with their browser or the server.
textual-serve is an optional extra (``pip install 'diffbench[serve]'``); diffbench.tui.serve imports it
when the command runs, so the engine itself never imports it (nor textual).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from urllib.parse import urlsplit

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
                    "localhost; open the printed URL (it carries a token made at each start). "
                    "From another machine: ssh -L LOCAL:localhost:PORT host, then open the URL "
                    "with LOCAL as its port.")
    parser.add_argument("--port", type=_port, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--public-url", type=_public_url, default=None, metavar="URL",
                        help="address browsers use when it is not http://localhost:PORT or a "
                             "tunnel to it, e.g. a TLS proxy's https://host (its host is then "
                             "accepted in Host and Origin)")
    parser.set_defaults(handler=main)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a number, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, got {value}")
    return value


def _public_url(text: str) -> str:
    parts = urlsplit(text)
    try:
        parts.port
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port in public URL {text!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment:
        raise argparse.ArgumentTypeError(
            f"public URL must be http(s)://host[:port][/path], got {text!r}")
    return text.rstrip("/")


def dashboard_command() -> str:
    """The command line (run without a shell) started per browser connection: this
    interpreter running the dashboard."""
    return f"{shlex.quote(sys.executable)} -m diffbench.tui.app"


def main(args: argparse.Namespace) -> int:
    """Start the server (blocks until interrupted).

    Raises:
        ServeUnavailableError: textual-serve is not installed.
    """
    try:
        from diffbench.tui.serve import serve

        serve(dashboard_command(), HOST, args.port, public_url=args.public_url)
    except ImportError as exc:
        if not (exc.name or "").startswith("textual_serve"):
            raise
        raise ServeUnavailableError(
            "serving needs textual-serve: pip install 'diffbench[serve]' "
            "(or pip install textual-serve)") from None
    return 0
