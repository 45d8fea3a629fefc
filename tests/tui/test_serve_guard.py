"""`diffbench serve` against a real server on a free localhost port (a subprocess), driven
with aiohttp's client: the token, Host and Origin checks refuse before any dashboard process
starts; the right token from the server's own page gets the dashboard; every dashboard process
ends when its browser leaves or the server stops; an ssh -L style tunnel on another local port
gets page URLs that work through it.

Most tests run tests/serve_stand_in.py instead of the dashboard (it speaks the same protocol
and starts at once); one runs the real dashboard.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psutil
import pytest

aiohttp = pytest.importorskip("aiohttp")
pytest.importorskip("textual_serve")

from repo_paths import TESTS  # noqa: E402
STAND_IN = TESTS / "serve_stand_in.py"

# Short grace periods keep a stubborn dashboard's kill fast; the rest is the product's code.
SERVER = """
import sys
from diffbench.tui import serve as s
if hasattr(s, "GuardedAppService"):
    s.GuardedAppService.quit_grace_s = s.GuardedAppService.term_grace_s = 0.5
kwargs = {"public_url": sys.argv[3]} if sys.argv[3] else {}
s.serve(sys.argv[1], "localhost", int(sys.argv[2]), **kwargs)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stand_in(pidfile: Path, mode: str) -> str:
    return " ".join(shlex.quote(str(a)) for a in (sys.executable, STAND_IN, pidfile, mode))


class Served:
    """A `serve` subprocess; ``token`` parsed from the URL it printed."""

    def __init__(self, command: str, public_url: str = "") -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, command, str(self.port), public_url],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        listening = threading.Event()

        def drain() -> None:
            for line in self.proc.stdout:
                self.lines.append(line)
                if "diffbench dashboard on" in line:
                    listening.set()

        threading.Thread(target=drain, daemon=True).start()
        url = re.search(r"(https?://\S+)", "".join(self.lines)) if listening.wait(30) else None
        if url is None:
            self.stop()
            raise AssertionError("server did not start:\n" + "".join(self.lines))
        self.token = parse_qs(urlsplit(url.group(1)).query).get("token", [""])[0]
        self.base = f"http://localhost:{self.port}"

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def alive(pids: list[int]) -> list[int]:
    def running(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False
    return [pid for pid in pids if running(pid)]


def wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = alive(pids)
    for pid in left:  # don't leak processes into the rest of the run
        psutil.Process(pid).kill()
    return left


def read_pids(pidfile: Path, count: int, timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [int(p) for p in pidfile.read_text().split()] if pidfile.exists() else []
        if len(pids) >= count:
            return pids
        time.sleep(0.05)
    raise AssertionError(f"stand-in did not start {count} process(es)")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    pidfile = tmp_path_factory.mktemp("serve") / "pids"
    server = Served(stand_in(pidfile, "polite"))
    yield server
    server.stop(signal.SIGKILL if server.proc.poll() is None else signal.SIGTERM)
    wait_gone(read_pids(pidfile, 0), 0)


@pytest.fixture
def start(tmp_path):
    """Start a server running the stand-in in ``mode``: (server, pidfile); all stopped and
    their processes killed at teardown, whatever the test found."""
    started: list[tuple[Served, Path]] = []

    def start(mode: str, public_url: str = "") -> tuple[Served, Path]:
        pidfile = tmp_path / f"pids{len(started)}"
        started.append((Served(stand_in(pidfile, mode), public_url), pidfile))
        return started[-1]

    yield start
    for server, pidfile in started:
        server.stop(signal.SIGKILL)
        wait_gone(read_pids(pidfile, 0), 0)


async def refused(session, url: str, **kwargs) -> int:
    """The HTTP status a WebSocket handshake was refused with (0 when it was accepted)."""
    try:
        ws = await session.ws_connect(url, **kwargs)
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status
    await ws.close()
    return 0


async def page_urls(session, url: str, **kwargs) -> tuple[str, str]:
    """(WebSocket URL, static URL prefix) from the dashboard page at ``url``."""
    async with session.get(url, **kwargs) as response:
        assert response.status == 200, await response.text()
        html = await response.text()
    ws_url = re.search(r'data-session-websocket-url="([^"]+)"', html).group(1)
    static = re.search(r'<script src="([^"]+)js/textual.js"', html).group(1)
    return ws_url, static


async def first_bytes(ws) -> bytes:
    message = await asyncio.wait_for(ws.receive(), 10)
    assert message.type == aiohttp.WSMsgType.BINARY, message
    return message.data


async def test_websocket_without_or_with_a_wrong_token_is_refused(served):
    async with aiohttp.ClientSession() as session:
        for path in ("/ws", "/ws?width=80&height=24", "/ws/wrong-token",
                     "/ws?token=wrong-token", f"/ws/{served.token}x"):
            assert await refused(session, served.base + path) == 403, path
        async with session.get(served.base + "/") as response:  # the page needs it too
            assert response.status == 403 and "token" in await response.text()
    assert served.children() == []  # refused before any dashboard process started


async def test_foreign_origin_is_refused(served):
    async with aiohttp.ClientSession() as session:
        for origin in ("http://evil.example", f"http://evil.example:{served.port}", "null",
                       "http://localhost:1234"):  # another local page, e.g. a dev server
            status = await refused(session, f"{served.base}/ws/{served.token}",
                                   headers={"Origin": origin})
            assert status == 403, origin
    assert served.children() == []


async def test_foreign_host_header_gets_403(served):
    async with aiohttp.ClientSession() as session:
        for host in ("evil.example", f"evil.example:{served.port}", "localhost.evil.example",
                     "127.0.0.1.evil.example:80"):
            async with session.get(f"{served.base}/?token={served.token}",
                                   headers={"Host": host}) as response:
                assert response.status == 403, host
                assert "not this server" in await response.text()
            status = await refused(session, f"{served.base}/ws/{served.token}",
                                   headers={"Host": host})
            assert status == 403, host
    assert served.children() == []


async def test_download_route_needs_the_token(served):
    async with aiohttp.ClientSession() as session:
        async with session.get(served.base + "/download/some-key") as response:
            assert response.status == 403
        # With the token (the page's cookie, or in the URL) it reaches the route: unknown key.
        async with session.get(f"{served.base}/download/some-key?token={served.token}") as r:
            assert r.status == 404


async def test_token_and_loopback_origin_get_the_dashboard(served):
    async with aiohttp.ClientSession() as session:
        ws_url, _ = await page_urls(session, f"{served.base}/?token={served.token}")
        assert ws_url == f"ws://localhost:{served.port}/ws/{served.token}"
        for origin in (served.base, f"http://127.0.0.1:{served.port}"):
            async with session.ws_connect(ws_url + "?width=80&height=24",
                                          headers={"Origin": origin}) as ws:
                assert await first_bytes(ws) == b"stand-in dashboard"
                await ws.send_json(["stdin", "x"])
                assert await first_bytes(ws) == b"echo:x"
        # The page set a cookie: downloads (whose URLs the page builds without the token) pass.
        async with session.get(served.base + "/download/some-key") as response:
            assert response.status == 404
    deadline = time.monotonic() + 10
    while served.children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert served.children() == []  # each dashboard ended with its connection


async def test_tunnel_on_another_local_port_works(served):
    """ssh -L LOCAL:localhost:PORT: the browser sends Host localhost:LOCAL; the page's asset and
    WebSocket URLs must point back through the tunnel, not at the server's own port."""
    local = free_port()

    async def forward(reader, writer):
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", served.port)

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    tunnel = await asyncio.start_server(forward, "127.0.0.1", local)
    try:
        async with aiohttp.ClientSession() as session:
            origin = f"http://localhost:{local}"
            ws_url, static = await page_urls(session, f"{origin}/?token={served.token}")
            assert ws_url == f"ws://localhost:{local}/ws/{served.token}"
            assert static == f"{origin}/static/"
            async with session.get(static + "js/textual.js") as response:
                assert response.status == 200
            async with session.ws_connect(ws_url + "?width=80&height=24",
                                          headers={"Origin": origin}) as ws:
                assert await first_bytes(ws) == b"stand-in dashboard"
    finally:
        tunnel.close()


async def test_public_url_names_the_page_urls_and_is_accepted(start):
    server, _ = start("polite", public_url="https://dash.example")
    async with aiohttp.ClientSession() as session:
        ws_url, static = await page_urls(session, f"{server.base}/?token={server.token}",
                                         headers={"Host": "dash.example"})
        assert ws_url == f"wss://dash.example/ws/{server.token}"
        assert static == "https://dash.example/static/"
        async with session.ws_connect(f"{server.base}/ws/{server.token}",
                                      headers={"Host": "dash.example",
                                               "Origin": "https://dash.example"}) as ws:
            assert await first_bytes(ws) == b"stand-in dashboard"


async def test_early_disconnect_ends_a_hung_dashboard_and_its_children(start):
    server, pidfile = start("stubborn")
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{server.base}/ws/{server.token}")
        pids = read_pids(pidfile, 2)  # the dashboard and its grandchild are up
        await ws.close()  # the browser leaves during start-up
    assert wait_gone(pids) == []
    assert server.proc.poll() is None  # the server itself goes on


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
async def test_server_shutdown_ends_every_dashboard(start, sig):
    server, pidfile = start("stubborn")
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{server.base}/ws/{server.token}")
        pids = read_pids(pidfile, 2)
        server.proc.send_signal(sig)  # the browser stays connected
        await asyncio.get_running_loop().run_in_executor(None, server.proc.wait, 15)
        await ws.close()
    assert server.proc.returncode is not None
    assert wait_gone(pids) == []


async def test_killed_server_takes_its_dashboard_along(start):
    server, pidfile = start("stubborn")
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{server.base}/ws/{server.token}")
        dashboard = read_pids(pidfile, 2)[0]
        server.stop(signal.SIGKILL)
        await ws.close()
    assert wait_gone([dashboard], 5) == []  # (its orphaned grandchild is not claimed)


async def test_real_dashboard_left_during_start_up_leaves_no_process():
    from diffbench.cli.serve import dashboard_command

    server = Served(dashboard_command())
    try:
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(f"{server.base}/ws/{server.token}?width=80&height=24")
            deadline = time.monotonic() + 10
            while not server.children() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            pids = [p.pid for p in server.children()]
            assert pids, "no dashboard process started"
            await ws.close()
        assert wait_gone(pids, 20) == []
    finally:
        leftover = [p.pid for p in server.children()]
        server.stop(signal.SIGKILL)
        wait_gone(leftover, 0)
