"""The sweep matrix the dashboard shows: cells by grid values, it/s, ratio to the baseline cell.

Pure data, no Textual and no engine heavy imports, so it serves a live sweep (cells filled in
as they finish) and a past sweep rebuilt from the history (runs grouped by
``config["sweep_id"]``) alike. Values are kept as the text the engine uses in cell keys
(diffbench.engine.sweep.grid.format_value), so a live cell and its stored run have the same key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

from diffbench.engine.metrics import format_metric
from diffbench.engine.result import RunResult

#: Config keys a sweep adds to each run (diffbench.engine.sweep.run.SWEEP_ID_KEY /
#: SWEEP_CELL_KEY).
SWEEP_ID_KEY = "sweep_id"
SWEEP_CELL_KEY = "sweep_cell"

#: (lowest ratio, Rich style) from fast to slow. Named ANSI colours only, so the matrix reads
#: the same in 16, 256 and truecolor terminals (and on light or dark themes).
RATIO_STYLES = (
    (1.5, "bold green"),
    (1.05, "green"),
    (0.95, ""),
    (0.8, "yellow"),
    (0.0, "bold red"),
)
STATUS_STYLES = {"failed": "bold white on red", "cancelled": "yellow", "running": "bold cyan",
                 "pending": "dim"}

# a field name starts each "field=value" part; values (JSON dicts) may contain commas
_KEY_SPLIT = re.compile(r",(?=[A-Za-z_][A-Za-z0-9_]*=)")


def ratio_style(ratio: Optional[float]) -> str:
    """Rich style for a cell's it/s ratio to its baseline (> 1 = faster, greener)."""
    if ratio is None:
        return ""
    for low, style in RATIO_STYLES:
        if ratio >= low:
            return style
    return RATIO_STYLES[-1][1]


def parse_cell_key(key: str) -> dict[str, str]:
    """``"compiler=compile,size=64x64"`` -> ``{"compiler": "compile", "size": "64x64"}``
    (grid order kept)."""
    values: dict[str, str] = {}
    for part in _KEY_SPLIT.split(key):
        name, _, value = part.partition("=")
        if name:
            values[name] = value
    return values


def cell_key(values: dict[str, str]) -> str:
    """The inverse of :func:`parse_cell_key` (diffbench.engine.sweep.grid.cell_key on text
    values)."""
    return ",".join(f"{k}={v}" for k, v in values.items())


def default_baseline(grid: dict[str, list[str]]) -> dict[str, str]:
    """The engine's rule (diffbench.engine.sweep.plan.default_baseline) on text values:
    compiler none when the grid sweeps compilers including none, else the first value of the
    first field."""
    if "none" in grid.get("compiler", []):
        return {"compiler": "none"}
    first = next(iter(grid))
    return {first: grid[first][0]}


def default_axes(fields: Sequence[str], rows: Sequence[str] = (),
                 cols: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """Rows/cols as diffbench.engine.sweep.report.split_axes chooses them; unknown names are
    dropped (the caller validates user input through the engine first)."""
    rows = [r for r in rows if r in fields]
    cols = [c for c in cols if c in fields and c not in rows]
    if not rows and not cols:
        rows, cols = list(fields[:1]), list(fields[1:2])
    elif not cols and len(fields) > len(rows):
        cols = [n for n in fields if n not in rows][:1]
    rows = rows + [n for n in fields if n not in rows and n not in cols]
    return rows, cols


@dataclass
class Cell:
    """One cell: its values, status ("pending", "running", "finished", "failed",
    "cancelled"), it/s of its measured call, run id, one-line error, progress text."""

    key: str
    values: dict[str, str]
    status: str = "pending"
    it_per_s: Optional[float] = None
    run_id: str = ""
    error: str = ""
    resumed: bool = False
    progress: str = ""
    psnr_db: Optional[float] = None
    ssim: Optional[float] = None
    it_per_s_range: Optional[tuple] = None  # (min, max) over the measured calls (--repeat)


@dataclass
class SweepMatrix:
    """Cells of one sweep laid out as rows x cols (each axis one or more grid fields)."""

    cells: dict[str, Cell]
    grid: dict[str, list[str]]
    baseline: dict[str, str]
    rows: list[str] = field(default_factory=list)
    cols: list[str] = field(default_factory=list)
    sweep_id: str = ""

    @classmethod
    def plan(cls, cells: Iterable[dict[str, str]], baseline: Optional[dict[str, str]] = None,
             rows: Sequence[str] = (), cols: Sequence[str] = (),
             sweep_id: str = "") -> "SweepMatrix":
        """An empty matrix for ``cells`` (dicts field -> value text, in grid order)."""
        grid: dict[str, list[str]] = {}
        table: dict[str, Cell] = {}
        for values in cells:
            values = {k: str(v) for k, v in values.items()}
            for name, value in values.items():
                bucket = grid.setdefault(name, [])
                if value not in bucket:
                    bucket.append(value)
            key = cell_key(values)
            table[key] = Cell(key, values)
        if not grid:
            raise ValueError("a sweep matrix needs at least one cell")
        baseline = dict(baseline) if baseline else default_baseline(grid)
        rows, cols = default_axes(list(grid), rows, cols)
        return cls(table, grid, baseline, rows, cols, sweep_id)

    @classmethod
    def from_runs(cls, runs: Iterable[RunResult], rows: Sequence[str] = (),
                  cols: Sequence[str] = ()) -> "SweepMatrix":
        """A past sweep from its stored runs (one sweep id). Values keep the order the cells
        first ran in (grid order); a cell run several times (resumed) shows its newest
        finished run, else its newest run."""
        runs = sorted(runs, key=lambda r: r.started_at or "")
        keys = [r.config.get(SWEEP_CELL_KEY) for r in runs if r.config.get(SWEEP_CELL_KEY)]
        if not keys:
            raise ValueError("no sweep cells among these runs")
        ordered = list(dict.fromkeys(keys))
        sweep_ids = {r.config.get(SWEEP_ID_KEY) for r in runs}
        matrix = cls.plan([parse_cell_key(k) for k in ordered], rows=rows, cols=cols,
                          sweep_id=str(next(iter(sweep_ids))) if len(sweep_ids) == 1 else "")
        best: dict[str, RunResult] = {}
        for run in runs:  # oldest first: later (newer) runs replace earlier ones
            key = run.config.get(SWEEP_CELL_KEY)
            if not key:
                continue
            kept = best.get(key)
            if kept is None or run.status == "finished" or kept.status != "finished":
                best[key] = run
        for key, run in best.items():
            matrix.record(key, run)
        return matrix

    # ------------------------------------------------------------------ updates
    def start(self, key: str) -> None:
        """Mark ``key`` running."""
        cell = self.cells[key]
        cell.status, cell.progress, cell.error = "running", "", ""

    def record(self, key: str, result: Optional[RunResult], resumed: bool = False,
               status: Optional[str] = None, error: str = "") -> Cell:
        """Fill ``key`` from its result (or just a status/error when there is none)."""
        cell = self.cells.get(key)
        if cell is None:  # a stored cell the plan does not know: add it
            cell = self.cells[key] = Cell(key, parse_cell_key(key))
        cell.resumed, cell.progress = resumed, ""
        if result is not None:
            m = result.metrics
            cell.status, cell.run_id = result.status, result.run_id
            cell.it_per_s = m.it_per_s if result.status == "finished" else None
            cell.error = result.error or ""
            cell.psnr_db, cell.ssim = m.psnr_db, m.ssim
            from diffbench.engine.ratio_range import value_range

            cell.it_per_s_range = value_range(m, "it_per_s")
        else:
            cell.status, cell.error = status or "failed", error
        return cell

    # ------------------------------------------------------------------ reading
    def baseline_key(self, key: str) -> str:
        """The key of ``key``'s reference cell (its values with the baseline's put in)."""
        values = dict(self.cells[key].values)
        values.update(self.baseline)
        return cell_key(values)

    def ratio(self, key: str) -> Optional[float]:
        """it/s of ``key`` over its baseline cell's (None until both finished)."""
        cell = self.cells[key]
        ref = self.cells.get(self.baseline_key(key))
        if (cell.status != "finished" or not cell.it_per_s or ref is None
                or ref.status != "finished" or not ref.it_per_s):
            return None
        return cell.it_per_s / ref.it_per_s

    def clear(self, key: str) -> Optional[bool]:
        """False when the it/s ranges of ``key`` and its baseline cell (``--repeat``) allow a
        ratio of 1.0 ("no clear difference"); True when they do not; None without ranges."""
        cell, ref = self.cells[key], self.cells.get(self.baseline_key(key))
        if self.ratio(key) is None or ref is None or \
                (cell.it_per_s_range is None and ref.it_per_s_range is None):
            return None
        low_b, high_b = cell.it_per_s_range or (cell.it_per_s, cell.it_per_s)
        low_a, high_a = ref.it_per_s_range or (ref.it_per_s, ref.it_per_s)
        return not low_b / high_a <= 1.0 <= high_b / low_a

    def is_baseline(self, key: str) -> bool:
        return self.baseline_key(key) == key

    def counts(self) -> dict[str, int]:
        """Cells per status."""
        result: dict[str, int] = {}
        for cell in self.cells.values():
            result[cell.status] = result.get(cell.status, 0) + 1
        return result

    def _labels(self, names: Sequence[str]) -> list[tuple[dict[str, str], str]]:
        combos: list[dict[str, str]] = [{}]
        for name in names:
            combos = [{**c, name: v} for c in combos for v in self.grid[name]]
        return [(c, ",".join(f"{k}={v}" for k, v in c.items()) if len(names) > 1
                 else ",".join(c.values())) for c in combos]

    def row_labels(self) -> list[tuple[dict[str, str], str]]:
        """[(row values, label)] in grid order."""
        return self._labels(self.rows)

    def col_labels(self) -> list[tuple[dict[str, str], str]]:
        """[(column values, label)]; one unnamed column when no field is on the columns."""
        return self._labels(self.cols) if self.cols else [({}, "it/s")]

    def key_at(self, row: dict[str, str], col: dict[str, str]) -> str:
        """The cell key at a row/column (grid order)."""
        merged = {**row, **col}
        return cell_key({name: merged[name] for name in self.grid})

    def cell_text(self, key: str) -> tuple[str, str]:
        """(text, Rich style) of one cell: ``"12.3 it/s x1.45"`` coloured by ratio; the
        baseline cell says "base"; failed cells "FAILED"; a running cell its progress."""
        cell = self.cells.get(key)
        if cell is None:
            return "", "dim"
        if cell.status == "finished":
            ips = format_metric("it_per_s", cell.it_per_s, unit=True)
            if self.is_baseline(key):
                return f"{ips} base", "bold"
            ratio = self.ratio(key)
            mark = " *" if cell.resumed else ""
            if self.clear(key) is False:  # within the calls' spread: "no clear difference"
                return f"{ips} x{ratio:.2f}?{mark}", ""
            return (f"{ips} x{ratio:.2f}{mark}" if ratio is not None else f"{ips}{mark}",
                    ratio_style(ratio))
        if cell.status == "running":
            return f"running {cell.progress}".strip(), STATUS_STYLES["running"]
        if cell.status == "failed":
            return "FAILED", STATUS_STYLES["failed"]
        if cell.status == "cancelled":
            return "cancelled", STATUS_STYLES["cancelled"]
        return "·", STATUS_STYLES["pending"]


def list_sweeps(runs: Iterable[RunResult]) -> list[tuple[str, list[RunResult]]]:
    """Runs grouped by sweep id, newest sweep first: [(sweep_id, runs)]."""
    groups: dict[str, list[RunResult]] = {}
    for run in runs:
        sweep_id = run.config.get(SWEEP_ID_KEY)
        if sweep_id:
            groups.setdefault(str(sweep_id), []).append(run)
    return sorted(groups.items(),
                  key=lambda item: max(r.started_at or "" for r in item[1]), reverse=True)
