"""The child process a run or job goes to: start it, read its lines, stop it (whole group).

Used by :mod:`diffbench.engine.client`. The child runs in its own session/process group (a
Ctrl-C in the terminal reaches only the parent), dies with its parent on Linux
(PR_SET_PDEATHSIG, set by the worker), and is killed at interpreter exit (atexit) otherwise.
"""

from __future__ import annotations

import atexit
import collections
import os
import queue
import signal
import subprocess
import sys
import threading
from typing import IO, Any, Optional

from diffbench.engine.worker import PARENT_ENV

#: Lines of the child's stderr kept as the log tail (and at most this many characters).
LOG_TAIL_LINES = 40
LOG_TAIL_CHARS = 8000

_TRUNCATED = "\x00truncated\x00"
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()

def child_env(extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    """The child's environment: ours, with diffbench's package root first on PYTHONPATH.

    Needed for ``--python`` interpreters that do not have diffbench installed.
    """
    env = dict(os.environ)
    env.update(extra or {})
    parts = [_PACKAGE_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    env[PARENT_ENV] = str(os.getpid())
    return env


class StartedChild:
    """A worker process started ahead of its config (see :func:`start_child`).

    Its stdout lines and stderr log are read from the start (a child that writes while it
    waits never blocks on a full pipe). ``error`` is the one-line reason when the interpreter
    could not be started (``proc`` is then None); :func:`run_in_child` reports it as a failed
    run, as it would for a child it starts itself.
    """

    def __init__(self, python: str, env: Optional[dict[str, str]] = None) -> None:
        self.python = python
        self.lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self.log: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        self.stderr_done = threading.Event()
        self.proc: Optional[subprocess.Popen] = None
        self.error: Optional[str] = None
        self.used = False
        try:
            self.proc = subprocess.Popen(
                [python, "-m", "diffbench.engine.worker"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(env),
                start_new_session=True)
        except OSError as exc:
            self.error = f"cannot start the child interpreter {python}: {exc.strerror or exc}"
            self.stderr_done.set()
            return
        with _LIVE_LOCK:
            _LIVE.add(self.proc)
        threading.Thread(target=_pump, args=(self.proc.stdout, self.lines), daemon=True,
                         name="diffbench-child-stdout").start()
        threading.Thread(target=self._collect_log, daemon=True,
                         name="diffbench-child-stderr").start()

    def _collect_log(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        try:
            for raw in iter(self.proc.stderr.readline, b""):
                text = raw.decode("utf-8", "replace").rstrip("\n")
                # Progress bars redraw with \r: keep the last state of the line.
                self.log.append(text.split("\r")[-1] if "\r" in text else text)
        except (OSError, ValueError):
            pass
        finally:
            self.stderr_done.set()

    def discard(self) -> None:
        """Stop a child that will get no run (SIGKILL to its process group), reap it and
        close its pipes. Idempotent; does nothing once the child was handed to
        :func:`run_in_child`, which stops its children itself."""
        if self.used:
            return
        self.used = True
        _stop_process(self.proc)

    def __enter__(self) -> "StartedChild":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.discard()


def start_child(python: Optional[str] = None,
                env: Optional[dict[str, str]] = None) -> StartedChild:
    """Start ``python -m diffbench.engine.worker`` now, before the run's config is final.

    The child imports torch and diffusers while it waits for its request, so checks the
    caller does meanwhile (preflight) overlap the child's start (the saving:
    benchmarks/RESULTS.md, "Cold start"). Pass the result
    to :func:`run_in_child` as ``child`` to run a config in it, or call
    :meth:`StartedChild.discard` (or use it as a context manager) when there will be no run.

    Args:
        python: interpreter (default: this one).
        env: extra environment variables for the child (see :func:`child_env`).

    Never raises for a missing interpreter: the returned child carries ``error``.
    """
    return StartedChild(python or sys.executable, env)



def _pump(stream: IO[bytes], lines: "queue.Queue[Optional[str]]") -> None:
    """Move stdout lines into ``lines``; None marks the end. A last line without a newline
    (the child died mid-write) is passed on prefixed with :data:`_TRUNCATED`."""
    try:
        for raw in iter(stream.readline, b""):
            text = raw.decode("utf-8", "replace")
            lines.put(text.rstrip("\r\n") if text.endswith("\n") else _TRUNCATED + text)
    except (OSError, ValueError):
        pass
    finally:
        lines.put(None)


def _stop_process(proc: Optional[subprocess.Popen]) -> None:
    """SIGKILL ``proc``'s process group unless it has exited (then its leftover group
    members), reap it, close its pipes and forget it."""
    if proc is None:
        return
    if proc.poll() is None:
        _signal_group(proc, signal.SIGKILL)
        try:
            proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:  # pragma: no cover - unkillable (D state)
            pass
    else:
        _signal_group(proc, signal.SIGKILL)  # grandchildren left in the group
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        try:
            if stream is not None:
                stream.close()
        except OSError:
            pass
    with _LIVE_LOCK:
        _LIVE.discard(proc)


def _signal_group(proc: Optional[subprocess.Popen], sig: int) -> None:
    if proc is None:
        return
    try:
        os.killpg(proc.pid, sig)  # the child leads its own group (start_new_session)
    except (ProcessLookupError, PermissionError):
        pass
    except OSError:  # pragma: no cover - no process groups (non-POSIX)
        try:
            proc.send_signal(sig)
        except OSError:
            pass


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"



_EXITING = threading.Event()


def kill_all_children() -> None:
    """Kill (SIGKILL to the process group) every child run this interpreter started, now.

    For a caller that must not wait for a graceful cancel (a dashboard quitting at once).
    Also this module's exit hook, so no child outlives its parent. Each killed run returns
    as failed/cancelled to whoever waits on it; later runs in this process are refused.
    """
    _EXITING.set()
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for proc in procs:
        if proc.poll() is None:
            _signal_group(proc, signal.SIGKILL)


atexit.register(kill_all_children)
# atexit handlers run only after non-daemon threads have ended — a thread waiting on a child
# would keep the interpreter alive until the run ends. threading's own exit hook runs first.
_register = getattr(threading, "_register_atexit", None)
if _register is not None:
    try:
        _register(kill_all_children)
    except RuntimeError:  # pragma: no cover - imported during interpreter shutdown
        pass
