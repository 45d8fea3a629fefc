"""Actions on stored runs: export, delete, compare, re-run, image preview, profiles.

A mixin of :class:`diffbench.tui.app.DiffbenchApp` (bindings and palette commands call these). Actions
work on the marked runs when there are any, else on the run under the cursor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from textual.widgets import Input, Static, Tabs

from diffbench.engine import catalog
from diffbench.engine.errors import ConfigError, DiffbenchError
from diffbench.engine.result import RunResult
from diffbench.tui.bridge import store
from diffbench.tui.runs import accel_of, different_work, find_baseline, order_for_compare
from diffbench.tui.widgets.results import ResultPanels
from diffbench.tui.widgets.view_tabs import ViewTabs


class HistoryActions:
    """Mixin: the history table's actions."""

    # ------------------------------------------------------------------ history
    def _select_run(self, run_id: str) -> None:
        table = self.table()
        try:
            table.move_cursor(row=table.get_row_index(run_id))
        except Exception:  # filtered out
            pass
        self._show_selected()

    def _show_selected(self) -> None:
        run = self.table().selected_run() or self.last_result
        baseline = find_baseline(run, self.table().runs) if run is not None else None
        self.query_one(ResultPanels).show(run, baseline)
        self._update_log_note(run)

    def _update_log_note(self, run: Optional[RunResult]) -> None:
        """Say why the Log tab holds nothing for ``run``: it logs only the runs started in
        this session (an older run's lines were never kept)."""
        note = self.query_one("#log_note", Static)
        if run is not None and run.run_id not in self.session_run_ids:
            text = (f"Run {run.run_id} ran before this session: its log lines are not "
                    "kept. This tab logs the runs started here.")
        elif not self.session_run_ids:
            text = "No run started in this session yet: ctrl+r runs the form's settings."
        else:
            text = ""
        note.update(text)
        note.display = bool(text)

    def _update_filter_note(self) -> None:
        """"no runs match" under the filter when it hides every run."""
        table = self.table()
        note = self.query_one("#filter_note", Static)
        words = table.filter_text.strip()
        empty = bool(words) and table.runs and table.row_count == 0
        note.update(f"no runs match {words!r} ({len(table.runs)} in the history; "
                    "clear the filter to see them)" if empty else "")
        note.display = bool(empty)

    def action_show_tab(self, tab: str) -> None:
        if tab == "tab_log":
            self.log_widget()  # created on first use
        views = self.query_one(ViewTabs)
        leaving, focused = self.query_one(f"#{views.active}"), self.focused
        views.active = tab
        # the focus would fall to the next field (the filter) and eat the next tab key
        if tab != leaving.id and focused is not None and leaving in focused.ancestors_with_self:
            strips = views.query(Tabs)
            if strips:
                strips.first().focus()
            else:
                self.set_focus(None)

    def action_filter(self) -> None:
        self.query_one(ViewTabs).active = "tab_history"
        self.query_one("#filter", Input).focus()

    def _runs_for_action(self) -> list[RunResult]:
        """Marked runs if any, else the selected run."""
        table = self.table()
        marked = table.marked_runs()
        if marked:
            return marked
        run = table.selected_run()
        return [run] if run is not None else []

    def action_export(self, all_runs: bool = False) -> None:
        """Export the marked runs (or the selected one; or all) to TOML, asking for the path."""
        from diffbench.tui.screens.export import ExportScreen

        runs = list(self.table().runs) if all_runs else self._runs_for_action()
        if not runs:
            self.notify("no run to export yet: run something first", severity="warning")
            return
        path = store.default_export_path(runs, self.export_dir)

        def done(target: Optional[str]) -> None:
            if target:
                self.export_runs(runs, Path(target))

        self.push_screen(ExportScreen(len(runs), str(path)), done)

    def export_runs(self, runs: list[RunResult], path: Path) -> Optional[Path]:
        """Write ``runs`` to ``path`` and notify with the file name; None on failure."""
        try:
            written = store.export_toml(runs, path)
        except (OSError, ValueError, DiffbenchError) as exc:
            self.notify(f"export failed: {exc}", severity="error", timeout=8)
            return None
        except ModuleNotFoundError:
            self.notify("export is not available in this build", severity="error")
            return None
        self.last_exported = written
        self.notify(f"exported {len(runs)} run{'s' if len(runs) > 1 else ''} to {written}",
                    title="Exported", timeout=6)
        self.log_line("info", f"exported {len(runs)} run(s) to {written}")
        return written

    def action_export_all(self) -> None:
        self.action_export(all_runs=True)

    def action_delete(self) -> None:
        """Delete the marked (or selected) runs from the history, after a confirmation."""
        from diffbench.tui.screens.confirm import ConfirmScreen

        runs = self._runs_for_action()
        if not runs:
            self.notify("no run selected", severity="warning")
            return

        def done(ok: Optional[bool]) -> None:
            if not ok:
                return
            for run in runs:
                try:
                    self._history.delete(run.run_id)
                except Exception as exc:
                    self.notify(f"could not delete {run.run_id}: {exc}", severity="error")
            self.refresh_history()
            self._show_selected()
            self.notify(f"deleted {len(runs)} run(s)")

        self.push_screen(ConfirmScreen(f"Delete {len(runs)} run(s) from the history?"), done)

    def action_load_run(self) -> None:
        """Put the selected run's config into the form (to re-run or tweak it)."""
        run = self.table().selected_run()
        if run is None:
            self.notify("no run selected", severity="warning")
            return
        config = {k: v for k, v in run.config.items() if k in catalog.BY_NAME}
        # the run's resolved values (device, dtype) become explicit; keep sizes as run
        self.form().load(config)
        self.notify(f"loaded the settings of run {run.run_id}; ctrl+r runs them again")

    def action_compare(self) -> None:
        """Side-by-side comparison of the two marked runs (or the selected and its baseline)."""
        from diffbench.tui.screens.compare import CompareScreen

        table = self.table()
        marked = table.marked_runs()
        if len(marked) >= 2:
            # marking order, as the marks read: the run marked "A" first is A
            a, b = marked[0], marked[1]
        else:
            run = table.selected_run()
            base = find_baseline(run, table.runs) if run else None
            if run is None or base is None:
                self.notify("mark two runs with space in the history, then ctrl+t",
                            severity="warning")
                return
            a, b = order_for_compare(base, run)
        different = different_work(a, b)
        if different:
            self.notify(f"these runs differ in {different}: the ratios compare different "
                        "work", severity="warning", timeout=6)
        self.push_screen(CompareScreen(a, b))

    def action_preview(self) -> None:
        """Show the selected run's output image in the terminal (half-block cells)."""
        from diffbench.tui.screens.preview import PreviewScreen

        if isinstance(self.screen, PreviewScreen):
            self.pop_screen()
            return
        run = self.table().selected_run() or self.last_result
        if run is None or not run.image_path:
            self.notify("the selected run has no saved image", severity="warning")
            return
        self.push_screen(PreviewScreen(run.image_path, title=f"{run.config.get('model')} "
                                                             f"{accel_of(run)}"))

    def action_help(self) -> None:
        from diffbench.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_save_profile(self) -> None:
        """Save the form as a profile TOML (asks for the path)."""
        from diffbench.tui.screens.export import PathScreen

        try:
            cfg = self.form().build_config()
        except ConfigError as exc:
            self.notify(f"cannot save: {exc}", severity="error")
            return

        def done(target: Optional[str]) -> None:
            if not target:
                return
            try:
                path = store.save_profile(cfg, Path(target))
            except OSError as exc:
                self.notify(f"cannot save profile: {exc}", severity="error")
                return
            self.notify(f"saved profile {path}")

        default = (self.export_dir or Path.cwd()) / f"{cfg.model.replace('/', '_')}.toml"
        self.push_screen(PathScreen("Save the settings as a profile", str(default)), done)

    def action_open_profile(self) -> None:
        """Load a profile TOML from a path into the form."""
        from diffbench.tui.screens.export import PathScreen

        def done(target: Optional[str]) -> None:
            if not target:
                return
            try:
                data = store.read_profile_file(Path(target))
                self.form().load(data)
            except DiffbenchError as exc:
                self.notify(str(exc), severity="error")
                return
            self.notify(f"loaded {target}")

        self.push_screen(PathScreen("Load a profile TOML", ""), done)

