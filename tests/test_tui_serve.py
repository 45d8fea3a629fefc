"""`diffbench serve`: localhost only, one clear line when textual-serve is missing."""

from __future__ import annotations

import sys
import types

from diffbench.cli import main as cli


def test_serve_without_textual_serve_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "textual_serve", None)
    monkeypatch.setitem(sys.modules, "textual_serve.server", None)
    assert cli.main(["serve"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'diffbench[serve]'" in err[0]


def test_serve_binds_localhost_and_runs_the_dashboard(monkeypatch, capsys):
    started = {}

    class Server:
        def __init__(self, command, host, port, title=None):
            started.update(command=command, host=host, port=port)

        def serve(self):
            started["served"] = True

    package = types.ModuleType("textual_serve")
    module = types.ModuleType("textual_serve.server")
    module.Server = Server
    monkeypatch.setitem(sys.modules, "textual_serve", package)
    monkeypatch.setitem(sys.modules, "textual_serve.server", module)
    assert cli.main(["serve", "--port", "8765"]) == 0
    assert started["host"] == "localhost" and started["port"] == 8765 and started["served"]
    assert started["command"].endswith("-m diffbench.tui.app")
    assert "http://localhost:8765" in capsys.readouterr().out


def test_serve_rejects_a_bad_port(capsys):
    try:
        cli.main(["serve", "--port", "70000"])
    except SystemExit as exc:
        assert exc.code == 2
    assert "port must be 1-65535" in capsys.readouterr().err
