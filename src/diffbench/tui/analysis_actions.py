"""Actions opening the analysis views: sweep, throughput fit, image vs baseline.

A mixin of :class:`diffbench.tui.app.DiffbenchApp`. The screens live in tui/screens/{sweep,throughput,
image_compare}.py and reach the engine only through diffbench.tui.bridge, in thread workers.
Tests replace the engines: the app's ``engine`` (FakeEngine) runs sweep cells and
``throughput_timer`` (``steps -> seconds``) replaces the pipeline of the throughput fit.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from textual.css.query import NoMatches

from diffbench.engine.baseline import is_eager
from diffbench.engine.errors import ConfigError
from diffbench.tui.bridge import analysis

#: Screens that bind ctrl+r / ctrl+g themselves (start / stop their own work); the app's
#: run and cancel bindings step aside while one of them is on top.
OWN_RUN_KEYS = ("SweepScreen", "ThroughputScreen")


class AnalysisActions:
    """Mixin: open the sweep, throughput and image-comparison views."""

    throughput_timer: Optional[Callable[[int], float]] = None

    def screen_owns_run_keys(self) -> bool:
        """True while a sweep or throughput view is on top (see OWN_RUN_KEYS)."""
        stack = self.screen_stack  # empty while the app starts
        return bool(stack) and type(stack[-1]).__name__ in OWN_RUN_KEYS

    def _form_config(self) -> Any:
        if self.screen_owns_run_keys():  # one sweep/throughput view at a time
            self.notify("close this view first (escape)", severity="warning")
            return None
        try:
            return self.form().build_config()
        except ConfigError as exc:
            self.notify(f"fix the settings first: {exc}", severity="error")
        except NoMatches:  # another view is on top
            self.notify("close this view first", severity="warning")
        return None

    def _after_analysis(self, _: Any = None) -> None:
        try:
            self.refresh_history()
        except NoMatches:
            pass

    def action_sweep(self) -> None:
        """Open the sweep view with the form's settings as the base (ctrl+n)."""
        from diffbench.tui.screens.sweep import SweepScreen

        cfg = self._form_config()
        if cfg is not None:
            self.push_screen(SweepScreen(cfg, self.history, self._engine, self._in_process),
                             self._after_analysis)

    def action_open_sweep(self) -> None:
        """Show a past sweep: the selected run's, else pick one from the history."""
        from diffbench.tui.screens.sweep import SweepScreen
        from diffbench.tui.screens.sweep_picker import SweepPickerScreen, past_sweeps
        from diffbench.tui.sweep_matrix import SweepMatrix

        if self.screen_owns_run_keys():
            self.notify("close this view first (escape)", severity="warning")
            return
        try:
            groups = dict(past_sweeps(self.history))
        except Exception as exc:  # a broken store must not take the dashboard down
            self.notify(f"cannot read history: {exc}", severity="error")
            return
        if not groups:
            self.notify("no sweep in the history yet: ctrl+n starts one", severity="warning")
            return

        def show(sweep_id: Optional[str]) -> None:
            if sweep_id in groups:
                matrix = SweepMatrix.from_runs(groups[sweep_id])
                self.push_screen(SweepScreen(None, self.history, matrix=matrix))

        try:
            run = self.table().selected_run()
        except NoMatches:
            run = None
        sweep_id = run.config.get("sweep_id") if run is not None else None
        if sweep_id in groups:
            show(sweep_id)
        else:
            self.push_screen(SweepPickerScreen(list(groups.items())), show)

    def action_throughput(self) -> None:
        """Fit pipeline time against steps for the form's settings (ctrl+y)."""
        from diffbench.tui.screens.throughput import ThroughputScreen

        cfg = self._form_config()
        if cfg is not None:
            # On CPU one torch thread gives far steadier timings on a busy machine.
            threads = "1" if (self.device or cfg.device) == "cpu" else ""
            self.push_screen(ThroughputScreen(cfg, self.throughput_timer, threads))

    def action_image_compare(self) -> None:
        """The selected run's image next to its baseline's, with PSNR/SSIM (ctrl+k);
        two marked runs: those two."""
        from diffbench.tui.screens.image_compare import ImageCompareScreen

        if isinstance(self.screen, ImageCompareScreen):
            self.pop_screen()
            return
        try:
            table = self.table()
        except NoMatches:
            return
        marked = table.marked_runs()
        store: Any = None
        if len(marked) >= 2:
            baseline, run = marked[0], marked[1]  # marking order: A is the reference
        else:
            run = table.selected_run() or self.last_result
            if run is None:
                self.notify("select a run in the history first", severity="warning")
                return
            if is_eager(run.config or {}):
                self.notify(f"run {run.run_id} is eager (compiler none, no accelerator): it "
                            "is the baseline itself; select an accelerated run to see its "
                            "image beside this one", severity="warning", timeout=6)
                return
            if not run.image_path:
                self.notify("the selected run has no saved image", severity="warning")
                return
            try:
                baseline = analysis.find_image_baseline(run, self.history)
            except Exception as exc:
                self.notify(f"cannot look up the baseline: {exc}", severity="error")
                return
            if baseline is None:
                self.notify("no baseline with an image for this run: run the same settings "
                            "with compiler none first", severity="warning", timeout=6)
                return
            store = self.history
        self.push_screen(ImageCompareScreen(baseline, run, store), self._after_analysis)
