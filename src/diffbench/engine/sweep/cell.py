"""One sweep cell: its outcome record (:class:`CellOutcome`) and its run, where any
exception becomes a failed result so one bad cell never ends the sweep."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional

from diffbench.engine.config import RunConfig
from diffbench.engine.errors import DiffbenchError
from diffbench.engine.result import RunResult

#: ``run(cfg, on_event, cancel) -> RunResult`` (diffbench.engine.runner.run's signature).
RunFn = Callable[..., RunResult]


@dataclass
class CellOutcome:
    """One cell's outcome. ``resumed`` = finished in an earlier pass and not run again;
    ``device`` names the device that ran it (multi-device sweeps), else ""."""

    index: int
    cell: dict
    key: str
    result: Optional[RunResult] = None
    resumed: bool = False
    device: str = ""

    @property
    def status(self) -> str:
        return self.result.status if self.result is not None else "pending"


def failed_result(cfg_dict: dict, message: str, status: str = "failed") -> RunResult:
    """A result for a cell that did not run to the end: ``status`` with ``message`` as the
    error."""
    return RunResult(status=status, config=dict(cfg_dict), error=message)


def run_cell(run_fn: RunFn, cfg: RunConfig, reason: Optional[str], outcome: CellOutcome,
             on_event: Optional[Callable[[CellOutcome, Any], None]],
             cancel: Optional[threading.Event]) -> RunResult:
    """Run one cell with ``run_fn(cfg, on_event, cancel)``; any exception becomes a failed
    result (never lose the sweep). ``reason`` set: the cell cannot run here (its accelerator
    is unavailable) and is recorded as failed with that reason, without running."""
    if reason is not None:
        return failed_result(cfg.to_dict(), reason)
    callback = (lambda event: on_event(outcome, event)) if on_event else None
    try:
        result = run_fn(cfg, callback, cancel)
    except DiffbenchError as exc:
        return failed_result(cfg.to_dict(), str(exc))
    except Exception as exc:  # a bug or crash in one cell must not end the sweep
        return failed_result(cfg.to_dict(), f"{type(exc).__name__}: {exc}")
    if not isinstance(result, RunResult):
        return failed_result(cfg.to_dict(), "run returned no result")
    if not result.config:
        result.config = cfg.to_dict()
    return result

