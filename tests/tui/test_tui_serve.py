"""`diffbench serve`: localhost only, one clear line when textual-serve is missing, and the
rules of its guard (token, Host, Origin, page URLs) one by one. The live server is exercised in
test_serve_guard.py."""

from __future__ import annotations

import sys

import pytest

from diffbench.cli import main as cli


def test_serve_without_textual_serve_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "textual_serve", None)
    monkeypatch.setitem(sys.modules, "textual_serve.server", None)
    assert cli.main(["serve"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'diffbench[serve]'" in err[0]


def test_serve_binds_localhost_and_runs_the_dashboard(monkeypatch, capsys):
    pytest.importorskip("textual_serve")
    from aiohttp import web

    from diffbench.tui import serve as tui_serve

    started = {}

    def run_app(app, host, port, print, **kwargs):  # noqa: A002 (aiohttp's own name)
        app.close()  # the coroutine making the aiohttp app; nothing is served here
        started.update(host=host, port=port)
        print("listening")

    monkeypatch.setattr(web, "run_app", run_app)
    made = []
    real_init = tui_serve.GuardedServer.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(tui_serve.GuardedServer, "__init__", init)
    assert cli.main(["serve", "--port", "8765"]) == 0
    assert started["host"] == "localhost" and started["port"] == 8765
    assert made[0].command.endswith("-m diffbench.tui.app")
    token = made[0].guard.token
    assert len(token) >= 40  # secrets.token_urlsafe(32)
    assert f"http://localhost:8765/?token={token}" in capsys.readouterr().out


def test_each_start_makes_a_new_token():
    pytest.importorskip("textual_serve")
    from diffbench.tui.serve import GuardedServer

    tokens = {GuardedServer("x", "localhost", 8000).guard.token for _ in range(3)}
    assert len(tokens) == 3


def test_serve_rejects_a_bad_port(capsys):
    try:
        cli.main(["serve", "--port", "70000"])
    except SystemExit as exc:
        assert exc.code == 2
    assert "port must be 1-65535" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["ftp://host", "localhost:8000", "http://", "http://h/?a=1",
                                 "http://h:99999"])
def test_serve_rejects_a_bad_public_url(url, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["serve", "--public-url", url])
    assert exc.value.code == 2
    assert "public URL" in capsys.readouterr().err


@pytest.fixture
def guard():
    pytest.importorskip("textual_serve")
    from diffbench.tui.serve import ServeGuard

    return ServeGuard("s3cret-token", 8000)


def test_token_compare(guard):
    assert guard.token_ok("s3cret-token")
    for wrong in (None, "", "s3cret-toke", "s3cret-tokenx", "S3CRET-TOKEN"):
        assert not guard.token_ok(wrong)


@pytest.mark.parametrize("host", ["localhost:8000", "localhost", "127.0.0.1:8000",
                                  "[::1]:8000", "LOCALHOST:8000",
                                  "localhost:9000"])  # a tunnel's own local port
def test_loopback_hosts_pass(guard, host):
    assert guard.host_reason(host) is None


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "localhost.evil.example",
                                  "127.0.0.1.nip.io:8000", "10.0.0.1:8000", "", None,
                                  "localhost:notaport", "user@localhost:8000", "localhost/x"])
def test_foreign_or_malformed_hosts_are_refused(guard, host):
    assert guard.host_reason(host)


def test_origin_must_be_the_pages_own(guard):
    assert guard.origin_reason(None, "localhost:8000") is None  # non-browser client
    assert guard.origin_reason("http://localhost:8000", "localhost:8000") is None
    assert guard.origin_reason("http://127.0.0.1:8000", "localhost:8000") is None
    assert guard.origin_reason("http://localhost:9000", "localhost:9000") is None  # tunnel
    for origin in ("http://evil.example", "http://localhost:9000", "null", "https://localhost:8000",
                   "http://localhost.evil.example:8000"):
        assert guard.origin_reason(origin, "localhost:8000"), origin


def test_public_url_host_is_accepted_and_names_the_page_urls():
    pytest.importorskip("textual_serve")
    from diffbench.tui.serve import ServeGuard

    guard = ServeGuard("t", 8000, public_url="https://dash.example/")
    assert guard.host_reason("dash.example") is None
    assert guard.host_reason("dash.example:443") is None
    assert guard.host_reason("dash.example:8443")
    assert guard.origin_reason("https://dash.example", "dash.example") is None
    assert guard.origin_reason("http://dash.example", "dash.example") is None  # its own Host
    assert guard.base_url("dash.example") == "https://dash.example"
    assert guard.token_url("localhost:8000") == "https://dash.example/?token=t"
    with pytest.raises(ValueError):
        ServeGuard("t", 8000, public_url="dash.example")
