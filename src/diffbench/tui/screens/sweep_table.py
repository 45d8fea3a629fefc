"""The sweep view's matrix: the DataTable of cells (row fields down, column fields across),
each cell's text and colour from diffbench.tui.sweep_matrix, the highlighted cell's detail,
and the status line summing up the sweep.

:class:`SweepTable` is a mixin of :class:`diffbench.tui.screens.sweep.SweepScreen`: it draws
``matrix`` (a SweepMatrix) and keeps ``_places`` (cell key -> table coordinates).
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable, Static

from diffbench.engine.metrics import format_metric

#: Matrix column width (characters): fits "1234.56 it/s x10.00 *".
CELL_WIDTH = 21


class SweepTable:
    """Mixin: the matrix, the detail line and the status line of the sweep view."""

    def _build_table(self) -> None:
        """(Re)build the DataTable from ``matrix``: its axes, labels and every cell."""
        matrix = self.matrix
        assert matrix is not None
        table = self.query_one("#sweep_matrix", DataTable)
        table.clear(columns=True)
        self._places.clear()
        corner = " / ".join(matrix.rows) + (" \\ " + " / ".join(matrix.cols)
                                             if matrix.cols else "")
        table.add_column(corner, key="label")
        cols = matrix.col_labels()
        for j, (_, label) in enumerate(cols):
            # fixed width: cells grow from "·" to "100.00 it/s x2.00 *" as they finish
            table.add_column(label, key=f"c{j}", width=max(CELL_WIDTH, len(label)))
        for i, (row_values, row_label) in enumerate(matrix.row_labels()):
            cells = []
            for j, (col_values, _) in enumerate(cols):
                key = matrix.key_at(row_values, col_values)
                self._places[key] = (f"r{i}", f"c{j}")
                text, style = matrix.cell_text(key)
                cells.append(Text(text, style=style))
            table.add_row(Text(row_label, style="bold"), *cells, key=f"r{i}")

    def _refresh_cells(self) -> None:
        """Redraw every cell: a baseline finishing changes its row's ratios."""
        matrix = self.matrix
        if matrix is None:
            return
        table = self.query_one("#sweep_matrix", DataTable)
        for key, (row, col) in self._places.items():
            text, style = matrix.cell_text(key)
            table.update_cell(row, col, Text(text, style=style))
        self._show_detail()

    def cell_display(self, key: str) -> tuple[str, str]:
        """(text, style) the matrix shows for cell ``key`` right now (tests, detail)."""
        row, col = self._places[key]
        value = self.query_one("#sweep_matrix", DataTable).get_cell(row, col)
        return (value.plain, str(value.style)) if isinstance(value, Text) else (str(value), "")

    def _show_detail(self) -> None:
        """The highlighted cell's key, status, run, it/s, ratio and similarity, under the
        matrix."""
        matrix = self.matrix
        detail = self.query_one("#sweep_detail", Static)
        if matrix is None:
            detail.update("")
            return
        table = self.query_one("#sweep_matrix", DataTable)
        coordinate = table.cursor_coordinate
        key = next((k for k, (r, c) in self._places.items()
                    if table.get_row_index(r) == coordinate.row
                    and table.get_column_index(c) == coordinate.column), None)
        if key is None:
            detail.update("")
            return
        cell = matrix.cells[key]
        parts = [key, cell.status + (" (resumed)" if cell.resumed else "")]
        if cell.run_id:
            parts.append(f"run {cell.run_id}")
        if cell.it_per_s:
            parts.append(format_metric("it_per_s", cell.it_per_s, unit=True))
        ratio = matrix.ratio(key)
        if ratio is not None and not matrix.is_baseline(key):
            parts.append(f"x{ratio:.2f} vs {matrix.baseline_key(key)}"
                         + (" (no clear difference)" if matrix.clear(key) is False else ""))
        if cell.psnr_db is not None and cell.ssim is not None:
            parts.append(f"PSNR {format_metric('psnr_db', cell.psnr_db)}, "
                         f"SSIM {format_metric('ssim', cell.ssim)}")
        text = "  |  ".join(parts)
        if cell.error:
            text += f"\n{cell.error}"
        detail.update(Text(text))

    def _status(self, text: str, style: str = "") -> None:
        self.query_one("#sweep_status", Static).update(Text(text, style=style))

    def _summary(self, done: bool = False) -> str:
        matrix = self.matrix
        if matrix is None:
            return ""
        counts = matrix.counts()
        total = len(matrix.cells)
        finished = counts.get("finished", 0)
        failed = counts.get("failed", 0)
        cancelled = counts.get("cancelled", 0)
        resumed = sum(1 for c in matrix.cells.values() if c.resumed)
        text = f"{matrix.sweep_id or 'sweep'}: {finished}/{total} cells finished"
        extra = [f"{failed} failed" if failed else "", f"{cancelled} cancelled" if cancelled
                 else "", f"{resumed} resumed" if resumed else ""]
        extra = [e for e in extra if e]
        if extra:
            text += f" ({', '.join(extra)})"
        if not done and self.current:
            cell = matrix.cells.get(self.current)
            text += f"; running {self.current}"
            if cell is not None and cell.progress:
                text += f", step {cell.progress}"
        return text + f"; baseline {', '.join(f'{k}={v}' for k, v in matrix.baseline.items())}"
