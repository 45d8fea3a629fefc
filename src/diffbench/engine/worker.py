"""Child-process entry point: ``python -m diffbench.engine.worker`` runs one benchmark run.

Protocol (version :data:`PROTOCOL`), JSON lines, UTF-8:

- stdin, first line: ``{"protocol": 1, "config": {...RunConfig.to_dict()...}, "run_id": "..."}``
  (``run_id`` optional: the parent names the run so a crashed run keeps its id;
  ``"baseline": true`` optional: after a finished run, fill PSNR/SSIM against its baseline in
  the history here, where numpy and PIL are loaded already, see :func:`attach_baseline`;
  ``"history": "path"`` optional: that history file instead of the data folder's). Later
  lines are control messages: ``{"cmd": "cancel"}`` asks for a graceful stop (after the
  current denoising step or warmup call). End of stdin means the parent is gone: cancel too.
- stdout, first line: ``{"type": "hello", "protocol": 1, "pid": N, "environment": {...}}``
  (python, platform, installed torch/diffusers/backend versions, torch's CUDA build, visible
  GPUs by NVML — all without importing torch; the result's environment has the details).
  Then every engine event as ``diffbench.engine.events.to_dict`` (one per line), and last
  ``{"type": "result", "result": RunResult.to_dict()}`` (with ``"baseline_checked": true``
  when the baseline comparison was done here).

Everything else the child prints — diffusers warnings, compiler output, C-level writes to
fd 1 — is routed to stderr: fd 1 is duplicated onto fd 2 at start-up and the protocol goes to
a private copy of the original stdout. The parent keeps stderr as the run's log tail.

Exit codes: 0 a result was written (any status); 2 the request was not valid (a RunFailed
event and a failed result are still written when the config could be read at all).

The child dies with its parent (Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``; elsewhere the
end of stdin cancels the run).

``DIFFBENCH_TELEMETRY=1`` (set by the dashboard): also send a TelemetrySample event about
once a second while the run goes on (GPU and host load; diffbench.engine.telemetry).

``DIFFBENCH_KEEP_IMAGE=0`` (set by ``diffbench run --no-history``): do not keep the image of
a run without --output-image in the data folder (see :func:`keep_image`).

Start-up (most of a tiny run's wall time is imports; benchmarks/RESULTS.md, "Cold start"):
while the request has not arrived yet the child imports torch and diffusers, which every run needs
(a parent may start the child before its own checks are done); once the config is known it
imports the pipeline's modules; full garbage collections are held off until then (see
diffbench.engine.import_ahead). All of it happens before the run begins, so the imports stay out of
every timed phase as before; but the imported objects are then frozen (``gc.freeze``), so
full collections during the run walk only the run's own objects: compiled runs spend less
of warmup_s in the collector than an ``--in-process`` run (or an older diffbench) does.

Jobs: a request with ``"job"`` ("throughput", "check_params") and ``"job_args"`` runs that
measurement instead of a benchmark run (see diffbench.engine.jobs): the dashboard and the CLI
then keep torch out of their own process.

Extension point: :data:`run_function`, when set before :func:`main` runs (for instance by a
``sitecustomize`` module on the child's PYTHONPATH, or a program embedding the worker), is
called instead of diffbench.engine.runner.run, with its signature and contract; nothing is
imported ahead for it. ``python -m diffbench.engine.worker`` runs this module under its
importable name, so such an assignment (or a wrapper of any function here) takes effect.
"""

from __future__ import annotations

import faulthandler
import json
import os
import platform
import select
import signal
import sys
import threading
from typing import Any, Callable, Optional, TextIO

PROTOCOL = 1
PARENT_ENV = "DIFFBENCH_PARENT_PID"
#: "0": keep no image file for runs without --output-image (nothing records the run).
KEEP_IMAGE_ENV = "DIFFBENCH_KEEP_IMAGE"

#: A callable with diffbench.engine.runner.run's signature to run instead of it (see the
#: module docstring); None: diffbench.engine.runner.run.
run_function: Optional[Callable[..., Any]] = None


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    # The parent may have died before prctl: then we were re-parented already.
    expected = os.environ.get(PARENT_ENV)
    if expected and expected.isdigit() and os.getppid() != int(expected):
        os._exit(1)


class ProtocolWriter:
    """Writes protocol lines to a private fd; safe to call from any thread."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        """Write ``message`` as one JSON line and flush (thread-safe; NaN allowed)."""
        line = json.dumps(message, default=str, allow_nan=True)
        with self.lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def take_over_stdout() -> TextIO:
    """Move the protocol off fd 1: return a stream on a copy of stdout; fd 1 -> stderr."""
    sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(protocol_fd, "w", encoding="utf-8", buffering=1)


def environment_summary() -> dict[str, Any]:
    """Cheap description of this interpreter (no torch import): python, platform, versions.

    Values are version strings, or None when a package is not installed.
    """
    from importlib import metadata

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "platform": platform.platform(terse=True),
    }
    for dist in ("torch", "diffusers", "transformers", "triton", "nexfort", "onediff",
                 "onediffx", "oneflow"):
        try:
            env[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            env[dist] = None
    # "2.4.0+cu121" names the CUDA build; a plain version is a CPU or default build.
    torch_version = env.get("torch") or ""
    env["torch_cuda_build"] = torch_version.split("+", 1)[1] if "+" in torch_version else None
    env["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES")
    env["gpus"] = _nvml_gpu_names()
    return env


def _nvml_gpu_names() -> list[str]:
    """GPU names from NVML (nvidia-ml-py; milliseconds, no CUDA context); [] without one."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no library or no driver: no GPU to report
        return []
    try:
        names = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(index))
            names.append(name.decode() if isinstance(name, bytes) else str(name))
        return names
    except Exception:  # noqa: BLE001
        return []
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass


def request_waiting(stream: TextIO) -> bool:
    """True when ``stream`` (stdin) has data or end-of-file ready now (never blocks)."""
    try:
        ready, _, _ = select.select([stream], [], [], 0)
    except (OSError, ValueError, TypeError):  # not a selectable stream: do not guess
        return True
    return bool(ready)


def load_run_function() -> Callable[..., Any]:
    """:data:`run_function` when set, else diffbench.engine.runner.run."""
    if run_function is not None:
        return run_function
    from diffbench.engine.runner import run

    return run


def watch_stdin(stream: TextIO, cancel: threading.Event) -> None:
    """Set ``cancel`` on {"cmd": "cancel"} or at the end of stdin (parent gone)."""
    for line in stream:
        try:
            message = json.loads(line)
        except ValueError:
            print(f"worker: ignoring a control line that is not JSON: {line[:80]!r}",
                  file=sys.stderr, flush=True)
            continue
        if isinstance(message, dict) and message.get("cmd") == "cancel":
            print("worker: cancel requested", file=sys.stderr, flush=True)
            cancel.set()
    cancel.set()


def read_request(stream: TextIO) -> dict[str, Any]:
    """The first stdin line as a dict. Raises ValueError with a one-line reason."""
    line = stream.readline()
    if not line:
        raise ValueError("no request on stdin (expected one JSON line)")
    try:
        request = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"request is not JSON: {exc}") from None
    if not isinstance(request, dict):
        raise ValueError("request must be a JSON object")
    if request.get("protocol") != PROTOCOL:
        raise ValueError(f"protocol {request.get('protocol')!r} requested; this worker "
                         f"speaks protocol {PROTOCOL}")
    if not isinstance(request.get("config"), dict):
        raise ValueError("request has no 'config' object")
    return request


def main() -> int:
    """Run one request from stdin; see the module docstring. Returns the exit code."""
    die_with_parent()
    faulthandler.enable()  # a segfault prints the Python stack into the log tail
    writer = ProtocolWriter(take_over_stdout())
    cancel = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: cancel.set())
    # A replaced run function may need neither torch nor diffusers: import nothing ahead.
    real_run = run_function is None
    from diffbench.engine.import_ahead import FullGcHold, import_common, import_for

    gc_hold = FullGcHold().hold() if real_run else None

    from diffbench.engine import events as ev
    from diffbench.engine.result import RunResult

    writer.send({"type": "hello", "protocol": PROTOCOL, "pid": os.getpid(),
                 "environment": environment_summary()})
    if real_run and not request_waiting(sys.stdin):
        import_common()
    try:
        request = read_request(sys.stdin)
    except ValueError as exc:
        _send_failure(writer, str(exc), RunResult(status="failed"))
        return 2
    run_id = request.get("run_id")
    base = RunResult(status="failed", config=request["config"])
    if isinstance(run_id, str) and run_id:
        base.run_id = run_id
    if isinstance(request.get("started_at"), str):
        base.started_at = request["started_at"]
    threading.Thread(target=watch_stdin, args=(sys.stdin, cancel), daemon=True,
                     name="diffbench-stdin").start()

    from diffbench.engine.config import RunConfig
    from diffbench.engine.errors import DiffbenchError

    try:
        cfg = RunConfig.from_dict(request["config"])
    except (DiffbenchError, TypeError, ValueError) as exc:
        _send_failure(writer, _one_line(exc), base)
        return 2

    if gc_hold is not None:
        import_for(cfg)
        gc_hold.release()
    finished: list[Any] = []

    def emit(event: Any) -> None:
        if isinstance(event, ev.RunFinished):
            finished.append(event)  # sent after the run returns, with the final result
            return
        data = ev.to_dict(event)
        if isinstance(data.get("result"), dict) and data["result"]:
            _stamp(data["result"], base)
        writer.send(data)

    if request.get("job") is not None:
        from diffbench.engine.jobs import JOBS

        if request["job"] not in JOBS:
            _send_failure(writer, f"unknown job {request['job']!r}", base)
            return 2
        from diffbench.engine.jobs import serve

        return serve(writer, request, cfg, base, cancel)
    from diffbench.engine import telemetry

    emit = telemetry.TerminalGate(emit)  # no telemetry line after the terminal event
    sampler = telemetry.start_for_run(str(cfg.device), emit)  # None unless asked
    try:
        run = load_run_function()
        result = run(cfg, on_event=emit, cancel=cancel)
    except Exception as exc:  # the runner should not raise; report it, don't lose the run
        if sampler is not None:
            sampler.stop()
        reason = _one_line(exc)
        base.error = reason
        _send_failure(writer, reason, base)
        return 0
    if sampler is not None:
        sampler.stop()
    result.run_id = base.run_id
    keep_image(result)
    history = request.get("history")
    checked = request.get("baseline") is True and attach_baseline(
        result, history if isinstance(history, str) else None)
    data = result.to_dict()
    _stamp(data, base)
    if finished:
        writer.send(ev.to_dict(ev.RunFinished(result=data, t_s=finished[-1].t_s)))
    writer.send({"type": "result", "result": data, **({"baseline_checked": True}
                                                      if checked else {})})
    return 0


def attach_baseline(result: Any, history_path: Optional[str] = None) -> bool:
    """diffbench.engine.baseline.attach against the history at ``history_path`` (default: this
    process's data folder), for a finished run that is not itself a baseline. Returns True when the comparison was dealt
    with here (similarity attached, no baseline found, or an unreadable image noted in
    ``result.notices``); False leaves it to the parent (a baseline run, or a history that
    cannot be read, or anything unexpected: the parent then does it as it always did, and
    reports a problem in its own words).

    In the parent, the comparison's imports (scikit-image, scipy, numpy) come after the run;
    here most of them are loaded already (both timed: benchmarks/RESULTS.md, "Cold start").
    """
    from diffbench.engine.baseline import attach, needs_baseline

    if not needs_baseline(result) or not result.image_path:
        return False
    try:
        from diffbench.engine.history import History

        attach(result, History(history_path))
    except Exception:  # noqa: BLE001 - see the docstring; the run's result stands
        return False
    return True


def keep_image(result: Any) -> None:
    """Save the in-memory image of a run without --output-image next to the history
    (``<data dir>/images/<run_id>.png``): the parent, the dashboard and baseline similarity
    need a file. Not with ``DIFFBENCH_KEEP_IMAGE=0`` (``--no-history``: no record would ever
    point at the file, so it would only fill the data folder). A failure to save becomes a
    notice, never a failed run."""
    image = getattr(result, "image", None)
    if result.image_path or image is None or result.status != "finished":
        return
    if os.environ.get(KEEP_IMAGE_ENV) == "0":
        return
    try:
        import io

        from diffbench.engine.atomic import write_bytes
        from diffbench.engine.history import default_path
        from diffbench.engine.history_schema import (PRIVATE_FILE_MODE, PRIVATE_FOLDER_MODE,
                                                     make_private_folder)

        folder = default_path().parent / "images"
        make_private_folder(folder.parent)
        if not folder.is_dir():
            folder.mkdir(mode=PRIVATE_FOLDER_MODE, exist_ok=True)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        result.image_path = write_bytes(folder / f"{result.run_id}.png", buffer.getvalue(),
                                        mode=PRIVATE_FILE_MODE)
    except Exception as exc:  # noqa: BLE001 - the measurement stands without the file
        result.notices.append(f"image not saved: {' '.join(str(exc).split())[:200]}")


def _stamp(result: dict[str, Any], base: Any) -> None:
    # The parent named the run and its start; keep them so every record agrees.
    result["run_id"] = base.run_id
    result["started_at"] = base.started_at


def _one_line(exc: BaseException) -> str:
    """``exc`` as one line: our own errors as their message, others prefixed by the type."""
    from diffbench.engine.errors import DiffbenchError

    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, DiffbenchError):
        text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= 400 else text[:397] + "..."


def _send_failure(writer: ProtocolWriter, reason: str, base: Any) -> None:
    from diffbench.engine import events as ev

    base.status, base.error = "failed", reason
    data = base.to_dict()
    writer.send(ev.to_dict(ev.RunFailed(reason=reason, status="failed", result=data)))
    writer.send({"type": "result", "result": data})


def _exit(code: int) -> None:
    """Leave at once once the result is out: interpreter teardown (torch, compile worker
    pools) can take seconds and has nothing left to do for the parent."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    # Run under the importable name, so that code run before this (a sitecustomize) can
    # replace run_function or wrap this module's functions.
    from diffbench.engine import worker as _worker

    _worker._exit(_worker.main())
