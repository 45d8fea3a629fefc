"""A run started from the dashboard, through diffbench.engine.session.Session.

The session decides where the run executes (a child process by default, so a crash or an
out-of-memory kill cannot take the dashboard down; in process with ``in_process=True`` or
``DIFFBENCH_IN_PROCESS=1``; an injected engine in tests), compares the image with the
baseline and records the run — exactly as ``diffbench run`` does.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, Callable, Optional

from diffbench.engine.config import RunConfig
from diffbench.engine.errors import DiffbenchError
from diffbench.engine.result import RunResult
from diffbench.engine.session import IN_PROCESS, Session
from diffbench.tui import messages as msg
from diffbench.tui.bridge.events import EventTranslator

#: An engine entry point: (cfg, on_event, cancel) -> RunResult, as diffbench.engine.runner.run.
EngineFn = Callable[[RunConfig, Callable[[Any], None], threading.Event], RunResult]


def session_for(history: Any = None, engine: Optional[EngineFn] = None,
                in_process: bool = False) -> Session:
    """The dashboard's Session: records in ``history`` (None: records nothing), runs
    through ``engine`` when given, else in a child unless ``in_process`` (or
    ``DIFFBENCH_IN_PROCESS=1``). Images are always kept: the dashboard shows them; a child
    run sends telemetry samples (diffbench.engine.telemetry)."""
    from diffbench.engine.telemetry import TELEMETRY_ENV

    # the child samples the GPU and host load for the telemetry panel (engine/telemetry.py),
    # every second unless DIFFBENCH_TELEMETRY says otherwise ("0": off, "0.5": every 0.5 s)
    telemetry = os.environ.get(TELEMETRY_ENV) or "1"
    return Session(history, record=history is not None, keep_image=True, engine=engine,
                   in_process=True if in_process else None, env={TELEMETRY_ENV: telemetry})


def kill_child_runs() -> None:
    """Stop every child-process run of this interpreter now (SIGKILL to each child's process
    group), for a quit that will not wait: the run worker then returns at once instead of
    keeping the dashboard's shutdown waiting for a graceful cancel (up to the client's grace
    period). Uses diffbench.engine.child_process.kill_all_children, the exit hook that guarantees
    no orphan at interpreter exit; a no-op when no child run was ever started.
    """
    client = sys.modules.get("diffbench.engine.child_process")
    kill = getattr(client, "kill_all_children", None)
    if kill is not None:
        kill()


def run_engine(cfg: RunConfig, post: Callable[[Any], Any], token: int,
               cancel: threading.Event, engine: Optional[EngineFn] = None,
               in_process: bool = False, history: Any = None) -> None:
    """Run ``cfg`` to the end and post messages; always posts exactly one RunEnded last.

    With ``history`` the run is compared with its baseline (PSNR/SSIM) and recorded there
    before RunEnded is posted (a failure to record: ``RunEnded.save_error``), so a quit
    right after still finds it stored. Call from a worker thread. Never raises: bad input
    (DiffbenchError) and engine bugs end as a failed RunEnded with a one-line reason.
    """
    translate = EventTranslator(post, token)
    session = session_for(history, engine, in_process)
    begun: Optional[RunResult] = None
    try:
        if engine is None:
            where = session.launch_mode()
            post(msg.LogLine(token, "info", f"running {cfg.model} ({where})"))
            if where == IN_PROCESS:  # the child process runs its own preflight
                session.preflight(cfg)
        # a "running" row now, owned by this process: a dashboard killed mid-run (SIGKILL,
        # a dropped SSH session) still leaves a trace, marked interrupted on the next open
        begun = session.begin(cfg)
        result = session.launch(cfg, translate, cancel, begun=begun)
    except DiffbenchError as exc:
        _end_failed(session, begun, post, token, str(exc))
        return
    except Exception as exc:  # an engine bug: report it in one line, keep the dashboard up
        _end_failed(session, begun, post, token, f"{type(exc).__name__}: {exc}")
        return
    if isinstance(result, dict):
        result = RunResult.from_dict(result)
    save_error = None
    if result is not None:
        try:
            save_error = session.finish(result)
        except Exception as exc:  # keep the result on screen even if the store fails
            save_error = f"could not save the run to history: {exc}"
    reason = (result.error or "") if result is not None else "the engine returned no result"
    status = result.status if result is not None else "failed"
    if status == "finished" and cancel.is_set():
        reason = "cancel came after the run finished"
    ended = msg.RunEnded(token, status, result, reason)
    if save_error:
        ended.save_error = f"could not save the run to history: {save_error}"
    post(ended)


def _end_failed(session: Session, begun: Optional[RunResult], post: Callable[[Any], Any],
                token: int, reason: str) -> None:
    """Post a failed RunEnded; the "running" row, when one was written, becomes "failed"."""
    if begun is not None:
        begun.status, begun.error = "failed", reason
        session.record(begun)
    post(msg.RunEnded(token, "failed", None, reason))
