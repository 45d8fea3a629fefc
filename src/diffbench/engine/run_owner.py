"""The process that owns a run in progress, and whether it still lives.

A run is recorded as "running" when it starts, with its owner (this process: pid, the
process's start time and the host name). A diffbench killed with SIGKILL (or the machine
going down) never finishes that row; the next diffbench that opens the history sees that
the owner is gone and marks the run "interrupted" (diffbench.engine.history).

The start time tells a live owner from a pid the system has since reused for another
process; the host name keeps a history on a shared file system from marking the runs of
another machine, whose processes cannot be seen from here.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Optional

#: Two start times of one process read apart differ by rounding only (psutil: 10 ms ticks).
_START_TOLERANCE_S = 1.0


def _started(pid: int) -> Optional[float]:
    """Start time of process ``pid`` (seconds since the epoch), None if there is none."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None  # exited, not yet reaped: it will never finish the run
        return proc.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    except (OSError, ValueError):
        return None


def current() -> dict[str, Any]:
    """This process as a run's owner: ``{"pid": int, "started": float (epoch s), "host":
    str}``."""
    pid = os.getpid()
    return {"pid": pid, "started": _started(pid), "host": socket.gethostname()}


def is_alive(owner: Any) -> bool:
    """Whether the process ``owner`` (a dict from :func:`current`) may still run its run.

    True when it lives with the same start time, or when it cannot be told from here (another
    host). False for a missing or malformed owner, a process that is gone or a reused pid.
    """
    if not isinstance(owner, dict) or not isinstance(owner.get("pid"), int):
        return False
    if owner.get("host") not in (None, socket.gethostname()):
        return True
    started = _started(owner["pid"])
    if started is None:
        return False
    expected = owner.get("started")
    if isinstance(expected, (int, float)) and abs(started - expected) > _START_TOLERANCE_S:
        return False
    return True
