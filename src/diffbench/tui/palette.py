"""The dashboard's command palette entries (ctrl+p): every action, with its key.

A mixin of :class:`diffbench.tui.app.DiffbenchApp`.
"""

from __future__ import annotations

from typing import Iterable

from textual.app import SystemCommand
from textual.screen import Screen


class PaletteCommands:
    """Mixin: :meth:`get_system_commands` adds the dashboard's actions to Textual's own."""

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Run", "Run the current settings (ctrl+r)", self.action_run)
        yield SystemCommand("Cancel run", "Stop the run in progress (ctrl+g)",
                            self.action_cancel)
        yield SystemCommand("Export selected runs", "Write marked/selected runs to TOML",
                            self.action_export)
        yield SystemCommand("Export all runs", "Write every run in the history to TOML",
                            self.action_export_all)
        yield SystemCommand("Compare runs", "Side by side, with ratios (ctrl+t)",
                            self.action_compare)
        yield SystemCommand("Re-run settings of selected run", "Load its config into the form",
                            self.action_load_run)
        yield SystemCommand("Delete selected runs", "Remove from the history",
                            self.action_delete)
        yield SystemCommand("Show image", "Preview the selected run's image (ctrl+o)",
                            self.action_preview)
        yield SystemCommand("Save settings as profile", "Write the form to a TOML file",
                            self.action_save_profile)
        yield SystemCommand("Load profile file", "Fill the form from a TOML file",
                            self.action_open_profile)
        yield SystemCommand("Show log", "Compiler output, warnings and errors of the runs (l)",
                            lambda: self.action_show_tab("tab_log"))
        yield SystemCommand("Show history", "The runs table",
                            lambda: self.action_show_tab("tab_history"))
        yield SystemCommand("Sweep", "Grid over settings, live matrix of it/s ratios (ctrl+n)",
                            self.action_sweep)
        yield SystemCommand("Open past sweep", "The matrix of a sweep in the history",
                            self.action_open_sweep)
        yield SystemCommand("Throughput fit", "Base and per-step cost of these settings "
                            "(ctrl+y)", self.action_throughput)
        yield SystemCommand("Image vs baseline", "Selected run's image beside its baseline's, "
                            "PSNR/SSIM (ctrl+k)", self.action_image_compare)
        yield SystemCommand("Pick a model", "Built in, in the local cache, or to download "
                            "(F2)", self.action_pick_model)
        yield SystemCommand("Show charts", "Step times and it/s by accelerator (p)",
                            lambda: self.action_show_tab("tab_charts"))
        yield SystemCommand("Show GPU telemetry", "Utilisation, memory, power and host load "
                            "of the run (g)", lambda: self.action_show_tab("tab_gpu"))
        yield SystemCommand("Help", "Keys and what the panels mean", self.action_help)
