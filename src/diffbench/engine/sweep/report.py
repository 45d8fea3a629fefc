"""A sweep's report: per-cell figures with the it/s ratio over the baseline cell, the table
axes, and the TOML summary file."""

from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

from diffbench.engine.errors import ConfigError
from diffbench.engine.result import RunResult
from diffbench.engine.sweep.cell import CellOutcome
from diffbench.engine.sweep.grid import cell_key
from diffbench.engine.sweep.plan import Sweep


def peak_gib(result: RunResult) -> Optional[float]:
    """Peak memory of the measured call (GiB): torch allocated on GPU, process RSS on CPU
    (diffbench.engine.metrics.peak_gib)."""
    from diffbench.engine.metrics import peak_gib as metric_peak_gib

    return metric_peak_gib(result.metrics)


def summarise(sweep: Sweep, outcomes: Iterable[CellOutcome]) -> list[dict]:
    """Per-cell figures: key, values, status, run_id, it_per_s, ratio (it/s over the
    baseline cell's; with ``--repeat`` also ratio_low / ratio_high / clear, see
    diffbench.engine.ratio_range.sweep_ratio), warmup_s, inference_s, peak_gib, recompiles, psnr_db, ssim, device,
    error. Missing figures are None."""
    outcomes = list(outcomes)
    by_key = {o.key: o for o in outcomes}
    rows = []
    for outcome in outcomes:
        result = outcome.result
        row: dict[str, Any] = {"key": outcome.key, "values": dict(outcome.cell),
                               "status": outcome.status, "device": outcome.device}
        if result is not None:
            m = result.metrics
            row.update(run_id=result.run_id, it_per_s=m.it_per_s, warmup_s=m.warmup_s,
                       inference_s=m.inference_s, peak_gib=peak_gib(result),
                       recompiles=m.recompiles, psnr_db=m.psnr_db, ssim=m.ssim,
                       image_flag=m.image_flag, error=result.error)
            ref = by_key.get(cell_key(sweep.baseline_cell(outcome.cell)))
            ref_ips = (ref.result.metrics.it_per_s
                       if ref is not None and ref.result is not None
                       and ref.result.status == "finished" else None)
            if m.it_per_s and ref_ips and result.status == "finished":
                from diffbench.engine.ratio_range import sweep_ratio

                # from the medians; with repeats, the range the calls allow (ratio_low /
                # ratio_high) and whether it excludes 1.0 (clear)
                row.update(sweep_ratio(result, ref.result))
        rows.append(row)
    return rows


def split_axes(sweep: Sweep, rows: Sequence[str] = (), cols: Sequence[str] = ()
               ) -> tuple[list[str], list[str]]:
    """Choose table axes: the user's rows/cols (grid fields), default rows = first field,
    cols = second; fields on neither axis join the rows.

    Raises:
        ConfigError: a named field is not in the grid, or on both axes.
    """
    names = list(sweep.grid)
    rows = [r.replace("-", "_") for r in rows]
    cols = [c.replace("-", "_") for c in cols]
    for name in [*rows, *cols]:
        if name not in names:
            raise ConfigError(f"{name!r} is not a grid field; the grid has {', '.join(names)}")
    if set(rows) & set(cols):
        raise ConfigError(f"{', '.join(sorted(set(rows) & set(cols)))} cannot be both a row "
                          f"and a column")
    if not rows and not cols:
        rows, cols = names[:1], names[1:2]
    elif not cols and len(names) > len(rows):
        cols = [n for n in names if n not in rows][:1]
    rows = rows + [n for n in names if n not in rows and n not in cols]
    return rows, cols


def to_toml_dict(sweep: Sweep, outcomes: Iterable[CellOutcome], rows: Sequence[str],
                 cols: Sequence[str]) -> dict:
    """The sweep summary as a TOML-ready dict: [sweep] (id, base, grid, baseline, rows, cols)
    and one [[cells]] table per cell. None values are left out (TOML has no null)."""
    return drop_none({
        "sweep": {"id": sweep.sweep_id, "rows": list(rows), "cols": list(cols),
                  "baseline": dict(sweep.baseline), "base": sweep.base.to_dict(),
                  "grid": dict(sweep.grid)},
        "cells": summarise(sweep, outcomes),
    })


def drop_none(value: Any) -> Any:
    """``value`` with None entries removed from dicts and lists, recursively (TOML has no
    null)."""
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [drop_none(v) for v in value if v is not None]
    return value


def write_toml(path: str, data: dict) -> str:
    """Write ``data`` to ``path`` as TOML atomically (diffbench.engine.atomic); return the path.
    None values are left out.

    Raises:
        ConfigError: the folder is missing or not writable.
    """
    import tomli_w

    from diffbench.engine.atomic import write_bytes

    return write_bytes(path, tomli_w.dumps(drop_none(data)).encode())


def check_output_path(path: Optional[str]) -> None:
    """Fail before a long sweep when ``-o`` cannot be written (ConfigError)."""
    if path:
        from diffbench.engine.atomic import check_writable_target

        check_writable_target(path)
