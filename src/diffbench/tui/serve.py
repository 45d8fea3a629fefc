"""The dashboard in a web browser through textual-serve (optional extra ``serve``), guarded.

Kept beside the dashboard so the engine never imports textual or textual-serve;
``diffbench serve`` (diffbench/cli/serve.py) calls :func:`serve`.

The dashboard starts runs, writes exports and deletes history, so the server lets in only the
user who started it:

- a random token made at each start (printed in the URL, as Jupyter does) is required by the
  page, its WebSocket (in the URL: ``/ws/<token>``) and downloads (a same-site cookie the page
  sets), compared in constant time;
- the Host header must name a loopback address (any port: an ``ssh -L`` tunnel's local port)
  or the public URL's host, so DNS rebinding gets nothing; a browser's Origin must be the page's
  own (cross-site WebSocket hijacking gets nothing); refusals are HTTP 403 with a short reason,
  before any dashboard process starts;
- each dashboard process runs in its own process group and is ended — asked to quit, then
  SIGTERM, then SIGKILL to the group — when its browser leaves or the server stops; if the
  server itself is killed, Linux's parent-death signal kills its dashboards.
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import logging
import os
import secrets
import shlex
import signal
import sys
from typing import Any
from urllib.parse import urlsplit

# textual-serve first: when the extra is missing, the ImportError names it (the CLI says how
# to install it); aiohttp and aiohttp-jinja2 come with it.
from textual_serve.app_service import AppService  # isort: skip
from textual_serve.server import Server, to_int  # isort: skip

import aiohttp_jinja2
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

log = logging.getLogger("diffbench.serve")

#: Host names that reach this machine only. A tunnel (``ssh -L 9000:localhost:8000``) gives one
#: of these with its own local port; any other name in Host is DNS rebinding.
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def _split_host(value: str) -> tuple[str, int | None] | None:
    """``"name:port"`` / ``"[v6]:port"`` / ``"name"`` -> (lower-case name, port or None);
    None when malformed."""
    parts = urlsplit(f"//{value.strip()}")
    try:
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or parts.username or parts.password or parts.path:
        return None
    return parts.hostname.lower(), port


def _origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port with the scheme's default) of a URL; None when it has none."""
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80)


class ServeGuard:
    """Who may reach the dashboard: the per-start token and the Host and Origin checks.

    Pure logic (no I/O) so each rule is testable on its own.

    Args:
        token: the secret a client must show (``secrets.token_urlsafe``).
        port: the TCP port the server listens on.
        public_url: the address browsers use when it is not ``http://localhost:<port>``
            (``http[s]://host[:port][/path]``); its host is then accepted in Host and Origin.

    Raises:
        ValueError: ``public_url`` is not an http(s) URL with a host.
    """

    def __init__(self, token: str, port: int, public_url: str | None = None) -> None:
        self.token = token
        self.port = port
        self.public_url = public_url.rstrip("/") if public_url else None
        self._public = _origin_of(self.public_url) if self.public_url else None
        if self.public_url and self._public is None:
            raise ValueError(f"public URL must be http(s)://host[:port], got {public_url!r}")
        #: Cookie that carries the token for downloads (the page builds their URLs itself);
        #: named after the token so two servers behind tunnels on one browser don't clash.
        self.cookie_name = "diffbench-" + hashlib.sha256(token.encode()).hexdigest()[:12]

    def token_ok(self, candidate: str | None) -> bool:
        """Whether ``candidate`` is this server's token (constant-time comparison)."""
        return bool(candidate) and secrets.compare_digest(candidate.encode(), self.token.encode())

    def host_reason(self, host: str | None) -> str | None:
        """Why the Host header is refused, or None when it names this server."""
        split = _split_host(host) if host else None
        if split is None:
            return "missing or malformed Host header"
        name, port = split
        if name in LOOPBACK_NAMES:
            return None
        if self._public and (name, port or self._public[2]) == self._public[1:]:
            return None
        return f"Host {host!r} is not this server (serve answers on localhost only)"

    def origin_reason(self, origin: str | None, host: str) -> str | None:
        """Why a browser's Origin is refused, or None when it is this server's page.

        A missing Origin (a non-browser client) passes: the token still has to be shown.
        ``host`` is the request's Host header, already accepted by :meth:`host_reason`.
        """
        if origin is None:
            return None
        seen = _origin_of(origin)
        allowed = {("http", name, self.port) for name in LOOPBACK_NAMES}
        allowed.add(_origin_of(f"http://{host}"))
        if self._public:
            allowed.add(self._public)
        if seen is None or seen not in allowed:
            return f"Origin {origin!r} is not this server's page"
        return None

    def base_url(self, host: str) -> str:
        """The address the page's asset and WebSocket URLs start with: the public URL when set,
        else the request's own (accepted) Host, so a tunnel's local port is kept."""
        return self.public_url or f"http://{host}"

    def token_url(self, host: str) -> str:
        """The URL to open in a browser (printed at start)."""
        return f"{self.public_url or 'http://' + host}/?token={self.token}"


def _redact(path: str) -> str:
    return "/ws/<token>" if path.startswith("/ws/") else path


class _AccessLogger(AbstractAccessLogger):
    """aiohttp access log without the token (query strings and ``/ws/<token>`` dropped)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %s", request.remote, request.method,
                         _redact(request.path), response.status)


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def _child_setup(server_pid: int) -> None:
    """Runs in the forked child: die with the server even if it is SIGKILLed (Linux)."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != server_pid:  # the server died before prctl took effect
        os._exit(1)


class GuardedAppService(AppService):
    """One dashboard process per browser connection that always ends.

    The command is split with :func:`shlex.split` and run without a shell, in a new process
    group. :meth:`stop` asks the app to quit, then sends SIGTERM, then SIGKILL to the group,
    waiting ``quit_grace_s`` / ``term_grace_s`` seconds between (class attributes).
    """

    quit_grace_s = 3.0
    term_grace_s = 3.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pgid: int | None = None
        self._stopping: asyncio.Future[None] | None = None

    async def _open_app_process(self, width: int = 80, height: int = 24) -> Any:
        server_pid = os.getpid()
        self._process = process = await asyncio.create_subprocess_exec(
            *shlex.split(self.command),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self._build_environment(width, height),
            start_new_session=True, preexec_fn=lambda: _child_setup(server_pid))
        self.pgid = process.pid
        self._stdin = process.stdin
        return process

    async def send_meta(self, data: dict[str, Any]) -> bool:
        """Send a meta packet; False (never an error) once the process's stdin is gone."""
        if self._stdin is None or self._stdin.is_closing():
            return False
        return await super().send_meta(data)

    async def send_bytes(self, data: bytes) -> bool:
        """Send keyboard bytes; False (never an error) once the process's stdin is gone."""
        if self._stdin is None or self._stdin.is_closing():
            return False
        return await super().send_bytes(data)

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the dashboard's process group (its benchmark children included)."""
        if self.pgid is not None:
            try:
                os.killpg(self.pgid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    async def stop(self) -> None:
        """End the dashboard (idempotent; concurrent callers share one stop)."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        process = self._process
        await self._download_manager.cancel_app_downloads(app_service_id=self.app_service_id)
        if process is not None:
            if process.returncode is None:
                await self.send_meta({"type": "quit"})
            for sig, grace in ((None, self.quit_grace_s), (signal.SIGTERM, self.term_grace_s),
                               (signal.SIGKILL, None)):
                if sig is not None:
                    self.kill_group(sig)
                try:
                    await asyncio.wait_for(process.wait(), grace)
                    break
                except asyncio.TimeoutError:
                    log.warning("dashboard pid %s still running; sending the next signal",
                                process.pid)
            self.kill_group()  # stragglers the dashboard left in its group
            if self._stdin is not None:
                self._stdin.close()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 2.0)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                pass
            self._task = None


class GuardedServer(Server):
    """textual-serve's server with the checks of :class:`ServeGuard` and dashboards that end.

    Args:
        command: command line (no shell) starting one dashboard per browser connection.
        host: interface to bind (``localhost``).
        port: TCP port.
        public_url: see :class:`ServeGuard`.
        token: the secret; a fresh ``secrets.token_urlsafe(32)`` when None.

    Raises:
        ValueError: bad ``public_url``.
    """

    def __init__(self, command: str, host: str, port: int, public_url: str | None = None,
                 token: str | None = None) -> None:
        super().__init__(command, host=host, port=port, title="diffbench", public_url=public_url)
        self.guard = ServeGuard(token or secrets.token_urlsafe(32), port, public_url)
        self.services: set[GuardedAppService] = set()
        self.sockets: set[web.WebSocketResponse] = set()
        self._pending: set[asyncio.Future[Any]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.router.add_get("/ws/{token}", self.handle_websocket)
        app.middlewares.append(self._guard_middleware)
        return app

    @web.middleware
    async def _guard_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        host = request.headers.get("Host", "")
        reason = (self.guard.host_reason(host)
                  or self.guard.origin_reason(request.headers.get("Origin"), host))
        if reason is None and not request.path.startswith("/static/"):
            reason = self._token_reason(request)
        if reason is not None:
            log.warning("refused %s %s: %s", request.method, _redact(request.path), reason)
            return web.Response(status=403, text=f"403 Forbidden: {reason}\n")
        response = await handler(request)
        if request.path == "/":
            response.set_cookie(self.guard.cookie_name, self.guard.token, httponly=True,
                                samesite="Strict", path="/")
            response.headers.update({
                "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
                "X-Frame-Options": "DENY",
                "Content-Security-Policy": "frame-ancestors 'none'"})
        return response

    def _token_reason(self, request: web.Request) -> str | None:
        shown = request.match_info.get("token") or request.query.get("token")
        if not shown and not request.path.startswith("/ws"):
            shown = request.cookies.get(self.guard.cookie_name)  # the page and downloads
        if self.guard.token_ok(shown):
            return None
        return "wrong token" if shown else "token required (open the URL serve printed)"

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        """The page; its asset and WebSocket URLs follow the request's Host (or the public URL),
        so a tunnel's local port keeps working. The WebSocket URL carries the token."""
        base = self.guard.base_url(request.headers["Host"])
        ws_base = ("wss:" if base.startswith("https:") else "ws:") + base.split(":", 1)[1]
        context = {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": f"{ws_base}/ws/{self.guard.token}",
            "config": {"static": {"url": f"{base}/static/"}},
            "application": {"name": self.title},
        }
        return aiohttp_jinja2.render_template("app_index.html", request, context)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One dashboard for this connection, ended when the connection or the app ends."""
        websocket = web.WebSocketResponse(heartbeat=15)
        await websocket.prepare(request)
        service = GuardedAppService(
            self.command, write_bytes=websocket.send_bytes, write_str=websocket.send_str,
            close=websocket.close, download_manager=self.download_manager, debug=self.debug)
        self.services.add(service)
        self.sockets.add(websocket)
        try:
            await service.start(to_int(request.query.get("width", "80"), 80),
                                to_int(request.query.get("height", "24"), 24))
            # An app that exits or crashes by itself closes its browser connection too.
            service._task.add_done_callback(lambda _: self._later(websocket.close()))
            await self._process_messages(websocket, service)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("dashboard connection failed")
        finally:
            await service.stop()
            self.services.discard(service)
            self.sockets.discard(websocket)
            await websocket.close()
        return websocket

    def _later(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._pending.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._pending.discard)

    async def on_startup(self, app: web.Application) -> None:
        """Quiet start (the address is printed once listening)."""

    async def on_shutdown(self, app: web.Application) -> None:
        """Close every browser connection and end every dashboard."""
        await asyncio.gather(*(ws.close(code=1001, message=b"server stopping")
                               for ws in list(self.sockets)), return_exceptions=True)
        await asyncio.gather(*(s.stop() for s in list(self.services)), return_exceptions=True)

    def serve(self, debug: bool = False) -> None:
        """Serve until SIGINT, SIGTERM or SIGHUP (or :meth:`request_exit`); then end every
        dashboard process, killing any group still alive."""
        self.debug = debug
        self.initialize_logging()
        self.loop = loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            try:
                loop.add_signal_handler(sig, self.request_exit)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread (tests) or no signals (Windows)
        url = self.guard.token_url(f"{self.host}:{self.port}")
        try:
            web.run_app(self._make_app(), host=self.host, port=self.port, loop=loop,
                        handle_signals=False, shutdown_timeout=5.0,
                        access_log_class=_AccessLogger,
                        print=lambda *_: print(f"diffbench dashboard on {url}\n"
                                               "(the token in the URL is required; ctrl+c stops)",
                                               flush=True))
        finally:
            for service in list(self.services):
                service.kill_group()
            if not loop.is_closed():
                loop.close()  # also removes its signal handlers
            asyncio.set_event_loop(None)


def serve(command: str, host: str, port: int, public_url: str | None = None) -> None:
    """Serve ``command`` (a command line starting one dashboard per browser connection) on
    ``host``:``port`` until interrupted; prints the URL with the token once listening.

    Raises:
        ImportError: textual-serve is not installed (raised before anything is served).
        ValueError: bad ``public_url``.
    """
    import textual_serve.server  # noqa: F401  (fails first when it is absent)

    GuardedServer(command, host, port, public_url=public_url).serve()
