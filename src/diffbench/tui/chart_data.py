"""What the Charts tab draws, without plotext: the per-step times of one run
(:class:`StepSeries`, fed live or read from a stored run) and it/s grouped by accelerator
(:func:`throughput_groups`). The app keeps the live series from the first step on, so the
tab shows the whole run when it is opened late.
"""

from __future__ import annotations

import statistics
from typing import Any, Iterable

from diffbench.engine import baseline as baseline_rule
from diffbench.engine.result import RunResult
from diffbench.tui.runs import accel_of

#: The measured call's label in :class:`StepSeries` (warmup calls: "warmup 1", ...).
MEASURED = "measured"


class StepSeries:
    """Per-step times (ms) of one run, one list per call: "warmup N" and "measured".

    Live: :meth:`add` takes each StepProgress message (its ``recent_ms`` holds the call's
    steps after step 1, so a dropped message loses nothing). Stored: :meth:`from_run` reads
    the measured call's ``metrics.step_ms`` (steps 2..N); warmup steps are not stored in the
    history, so a past run shows its measured call only.
    """

    def __init__(self, run_id: str = "", title: str = "") -> None:
        self.run_id = run_id
        self.title = title
        self.calls: dict[str, list[float]] = {}
        self.totals: dict[str, int] = {}
        self.first: dict[str, int] = {}  # the denoising step of each call's first value

    @staticmethod
    def label(call: str, warmup_index: int = 0) -> str:
        """The call's label: "measured", or "warmup N" (N 1-based; 0 gives "warmup")."""
        if call == MEASURED:
            return MEASURED
        return f"warmup {warmup_index}" if warmup_index else "warmup"

    def add(self, message: Any) -> None:
        """Take a StepProgress message (diffbench.tui.messages)."""
        key = self.label(message.call, getattr(message, "warmup_index", 0))
        self.calls[key] = [float(v) for v in message.recent_ms]
        self.totals[key] = int(message.total)
        # recent_ms keeps a call's latest steps only (diffbench.tui.bridge.events)
        self.first[key] = max(2, int(message.index) - len(self.calls[key]) + 1)

    @classmethod
    def from_run(cls, run: RunResult) -> "StepSeries":
        """The measured call of a stored run (empty when it has no step times)."""
        series = cls(run.run_id, f"run {run.run_id}: {run.config.get('model', '?')} "
                                  f"{accel_of(run)}")
        steps = [float(v) for v in (run.metrics.step_ms or [])]
        if steps:
            series.calls[MEASURED] = steps
            series.totals[MEASURED] = len(steps) + 1
        return series

    @property
    def empty(self) -> bool:
        """True when no call has a step time yet."""
        return not any(self.calls.values())


def throughput_groups(runs: Iterable[RunResult]) -> list[tuple[str, float, int, bool]]:
    """(accelerator label, median it/s, runs, is the eager baseline) per accelerator among
    the finished ``runs`` that have it/s, eager first, then fastest first. Eager is
    diffbench.engine.baseline.is_eager (the one baseline rule)."""
    groups: dict[str, list[float]] = {}
    eager: dict[str, bool] = {}
    for run in runs:
        value = run.metrics.it_per_s
        if run.status != "finished" or not value:
            continue
        label = accel_of(run)
        groups.setdefault(label, []).append(float(value))
        eager[label] = eager.get(label, False) or baseline_rule.is_eager(run.config or {})
    rows = [(label, statistics.median(v), len(v), eager[label]) for label, v in groups.items()]
    return sorted(rows, key=lambda row: (not row[3], -row[1]))
