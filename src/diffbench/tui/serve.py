"""The dashboard in a web browser through textual-serve (optional extra ``serve``).

Kept beside the dashboard so the engine never imports textual or textual-serve;
``diffbench serve`` (engine/commands/serve.py) calls :func:`serve`.
"""

from __future__ import annotations


def serve(command: str, host: str, port: int) -> None:
    """Serve ``command`` (a shell command starting one dashboard per browser connection) on
    ``host``:``port`` until interrupted; prints the address once the server is importable.

    Raises:
        ImportError: textual-serve is not installed (raised before anything is served).
    """
    from textual_serve.server import Server

    print(f"diffbench dashboard on http://{host}:{port} (ctrl+c stops)", flush=True)
    Server(command, host=host, port=port, title="diffbench").serve()
