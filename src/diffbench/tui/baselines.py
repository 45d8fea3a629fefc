"""The history table's "vs eager" column: each run's speed-up over its eager baseline, found
by the engine's one rule (diffbench.engine.baseline, through diffbench.tui.runs.find_baseline:
the recorded baseline_run_id first, else the newest eager run with the same image-affecting
settings, preferring the same GPU model).
"""

from __future__ import annotations

from typing import Iterable, NamedTuple, Optional

from rich.text import Text

from diffbench.engine import baseline as baseline_rule
from diffbench.engine.result import RunResult
from diffbench.tui.runs import find_baseline, speedup


class Pairing(NamedTuple):
    """A run's place in the comparison: ``ratio`` = baseline inference_s / run inference_s
    (>1: faster; None without a baseline or a time), ``baseline_id`` the baseline's run id,
    ``eager`` True for an eager run (a reference itself)."""

    ratio: Optional[float]
    baseline_id: Optional[str]
    eager: bool


def pairings(runs: Iterable[RunResult]) -> dict[str, Pairing]:
    """run id -> :class:`Pairing` for every run of ``runs`` (newest first). Only eager runs
    of the same model are candidates (the rule's settings include the model), which keeps
    this fast for long histories."""
    runs = list(runs)
    eager_by_model: dict[str, list[RunResult]] = {}
    for run in runs:
        if baseline_rule.is_eager(run.config or {}):
            eager_by_model.setdefault(str((run.config or {}).get("model")), []).append(run)
    out: dict[str, Pairing] = {}
    for run in runs:
        if baseline_rule.is_eager(run.config or {}):
            out[run.run_id] = Pairing(None, None, True)
            continue
        base = None
        if run.status == "finished":
            base = find_baseline(run, eager_by_model.get(str((run.config or {}).get("model")),
                                                         []))
        out[run.run_id] = Pairing(speedup(run, base) if base else None,
                                  base.run_id if base else None, False)
    return out


def cell(pairing: Optional[Pairing]) -> Text:
    """The column's cell: "1.84x" (green when faster, red when slower), "eager" for a
    reference run, "-" without a baseline."""
    if pairing is None or (pairing.ratio is None and not pairing.eager):
        return Text("-", style="dim")
    if pairing.eager:
        return Text("eager", style="dim")
    ratio = pairing.ratio
    return Text(f"{ratio:.2f}x", style="green" if ratio >= 1.0 else "red")


def sort_value(pairing: Optional[Pairing]) -> float:
    """Sort key: the ratio; eager runs as 1.0; no baseline last."""
    if pairing is None:
        return float("-inf")
    if pairing.eager:
        return 1.0
    return pairing.ratio if pairing.ratio is not None else float("-inf")
