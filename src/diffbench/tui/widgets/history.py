"""History table: one row per run, newest first; mark rows (space) to compare or export."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from diffbench.engine.metrics import format_metric, table_columns, value_of
from diffbench.engine.result import RunResult
from diffbench.tui import baselines
from diffbench.tui.runs import accel_of, size_of

def _by(key: str):
    return lambda r: _num(value_of(r, key))


#: Columns right after the run's name, in this order: the key figures go last when the
#: table is narrow (the columns to their right scroll out of view first). All are metric
#: keys but ``vs_eager``, which is filled from the table's pairings (diffbench.tui.baselines).
KEY_COLUMNS = ("it_per_s", "vs_eager", "step_ms_p50", "peak_gib")


def columns() -> tuple:
    """(key, header, sort key on a RunResult or None) in display order; the metric columns
    come from the metrics catalog (keyed by metric key). The columns, most important
    first, so that at 120 terminal columns (about 86 for the table) id, model,
    accelerator, it/s, vs eager, p50, peak GiB, steps and task are in view; the rest
    scroll."""
    metrics = {m.key: (m.key, m.column, _by(m.key)) for m in table_columns()}
    # vs eager: its sort key is the table's (HistoryTable.visible_runs), not a run's field
    metrics["vs_eager"] = ("vs_eager", "vs eager", lambda r: 0.0)
    key_first = [metrics.pop(key) for key in KEY_COLUMNS if key in metrics]
    return (
        ("mark", " ", None),
        ("id", "run id", lambda r: r.run_id),
        ("model", "model", lambda r: str(r.config.get("model", ""))),
        ("accel", "accel", lambda r: accel_of(r)),
        *key_first,
        ("steps", "steps", lambda r: r.config.get("steps") or 0),
        ("task", "task", lambda r: str(r.config.get("task", ""))),
        ("status", "status", lambda r: r.status),
        ("size", "size", lambda r: size_of(r)),
        ("time", "time", lambda r: r.started_at or ""),
        *metrics.values(),
        ("device", "device", lambda r: str(r.config.get("device", ""))),
    )


def _num(value: Optional[float]) -> float:
    return float("-inf") if value is None else float(value)


def _short(name: str, width: int = 18) -> str:
    """A model name in at most ``width`` characters, keeping its end (a hub id's repo name
    or a folder's last part tells runs apart; the owner or parent folder seldom does)."""
    return name if len(name) <= width else "…" + name[-(width - 1):]


def _when(stamp: str) -> str:
    try:
        moment = datetime.fromisoformat(stamp).astimezone()
    except (TypeError, ValueError):
        return str(stamp or "")[:16]
    if moment.date() == datetime.now().astimezone().date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%m-%d %H:%M")


_STATUS_STYLE = {"finished": "green", "failed": "bold red", "cancelled": "yellow",
                 "running": "cyan", "interrupted": "magenta"}


class HistoryTable(DataTable):
    """The runs, filtered and sorted. Row keys are run ids."""

    BINDINGS = [
        Binding("space", "toggle_mark", "Mark", show=True),
        Binding("s", "cycle_sort", "Sort", show=True),
        Binding("c", "app.compare", "Compare", show=False),
        Binding("e", "app.export", "Export", show=False),
        Binding("r", "app.load_run", "Re-run", show=False),
        Binding("d,delete", "app.delete", "Delete", show=True),
        Binding("slash", "app.filter", "Filter", show=False),
        Binding("l", "app.show_tab('tab_log')", "Log", show=False),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.runs: list[RunResult] = []  # all runs, newest first
        self.pairings: dict[str, baselines.Pairing] = {}  # run id -> its eager baseline
        self.marked: list[str] = []  # run ids in marking order
        self.filter_text = ""
        self.sort_key = "time"
        self.sort_reverse = True
        self.metric_columns = table_columns()
        self.column_spec = columns()
        self.sortable = [key for key, _, fn in self.column_spec if fn is not None]

    def on_mount(self) -> None:
        for key, header, _ in self.column_spec:
            # Text, not str: a str header is parsed as markup, which loads rich's emoji table
            self.add_column(Text(header), key=key)

    # ------------------------------------------------------------------ data
    def set_runs(self, runs: list[RunResult]) -> None:
        self.runs = list(runs)
        self.pairings = baselines.pairings(self.runs)
        known = {r.run_id for r in self.runs}
        self.marked = [rid for rid in self.marked if rid in known]
        self.rebuild()

    def visible_runs(self) -> list[RunResult]:
        """The runs the filter lets through, in the current sort order."""
        words = self.filter_text.lower().split()
        runs = [r for r in self.runs if all(w in self._haystack(r) for w in words)]
        sort_fn = dict((k, fn) for k, _, fn in self.column_spec)[self.sort_key]
        if self.sort_key == "vs_eager":
            sort_fn = lambda r: baselines.sort_value(self.pairings.get(r.run_id))  # noqa: E731
        return sorted(runs, key=sort_fn, reverse=self.sort_reverse)

    @staticmethod
    def _haystack(run: RunResult) -> str:
        c = run.config
        return " ".join(str(x) for x in (run.run_id, c.get("model"), c.get("task"),
                                         accel_of(run), size_of(run), run.status,
                                         c.get("device"), c.get("dtype"))).lower()

    def rebuild(self) -> None:
        """Redraw rows keeping the cursor on the same run when it is still shown."""
        current = self.selected_run_id()
        self.clear()
        for run in self.visible_runs():
            self.add_row(*self._cells(run), key=run.run_id)
        if current is not None and current in {r.run_id for r in self.visible_runs()}:
            self.move_cursor(row=self.get_row_index(current))
        for key, header, _ in self.column_spec:
            arrow = ""
            if key == self.sort_key:
                arrow = " v" if self.sort_reverse else " ^"
            self.columns[key].label = Text(header + arrow)

    def _cells(self, run: RunResult) -> list:
        mark = ""
        if run.run_id in self.marked:
            mark = "AB"[self.marked.index(run.run_id)] if len(self.marked) <= 2 else "*"
        metric = {m.key: format_metric(m.key, value_of(run, m.key), unit=False)
                  for m in self.metric_columns}
        fixed = {
            "mark": Text(mark, style="bold reverse"), "id": run.run_id,
            "model": _short(str(run.config.get("model", "?"))), "accel": accel_of(run),
            "size": size_of(run),
            "status": Text(run.status, style=_STATUS_STYLE.get(run.status, "")),
            "time": _when(run.started_at), "steps": str(run.config.get("steps", "")),
            "task": str(run.config.get("task", "")),
            "device": str(run.config.get("device", "")),
            "vs_eager": baselines.cell(self.pairings.get(run.run_id)),
        }
        return [metric[key] if key in metric else fixed[key] for key, _, _ in self.column_spec]

    # ------------------------------------------------------------------ selection
    def selected_run_id(self) -> Optional[str]:
        if self.row_count == 0:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:  # cursor outside the table after a clear
            return None

    def selected_run(self) -> Optional[RunResult]:
        rid = self.selected_run_id()
        return next((r for r in self.runs if r.run_id == rid), None)

    def marked_runs(self) -> list[RunResult]:
        by_id = {r.run_id: r for r in self.runs}
        return [by_id[rid] for rid in self.marked if rid in by_id]

    def action_toggle_mark(self) -> None:
        rid = self.selected_run_id()
        if rid is None:
            return
        if rid in self.marked:
            self.marked.remove(rid)
        else:
            self.marked.append(rid)
        self.rebuild()

    def action_cycle_sort(self) -> None:
        """Sort by the column under the cursor; again on the same column flips the order."""
        key = str(self.ordered_columns[self.cursor_column].key.value) \
            if self.cursor_type == "cell" else None
        if key is None or key not in self.sortable:
            index = (self.sortable.index(self.sort_key) + 1) % len(self.sortable)
            key = self.sortable[index]
            # newest first; a metric best first
            self.sort_reverse = key in ("time", "vs_eager") or any(
                m.key == key and m.better == "higher" for m in self.metric_columns)
        elif key == self.sort_key:
            self.sort_reverse = not self.sort_reverse
        self.sort_key = key
        self.rebuild()
        self.notify(f"sorted by {dict((k, h) for k, h, _ in self.column_spec)[key]}", timeout=2)
