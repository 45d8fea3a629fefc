"""Form validation: the form's settings as a RunConfig, every problem shown under it at
once (named fields marked), and the Run button and ctrl+r / ctrl+g enabled to match.

A mixin of :class:`diffbench.tui.app.DiffbenchApp`; the environment's answers (device,
compilers, model checks) come from diffbench.tui.probes.
"""

from __future__ import annotations

from typing import Optional

from textual.css.query import NoMatches
from rich.text import Text
from textual.widgets import Button, Static

from diffbench.engine.config import RunConfig
from diffbench.engine.errors import ConfigError


class FormValidation:
    """Mixin: ``config_error`` on the app, the validation line and the Run button."""

    def validate_form(self) -> None:
        """Check the whole form: every field problem is listed under it at once (each named
        field marked), else the environment's verdict; the line says which task will run
        and, during a run, that ctrl+g cancels instead of "Ready". Run is disabled while
        anything is wrong."""
        self._validation_queued = False
        try:
            label = self.query_one("#validation", Static)
        except NoMatches:  # a late message while the app shuts down
            return
        form = self.form()
        cfg, problems = form.problems()
        if cfg is not None:
            problem = self._environment_problem(cfg)
            problems = [problem] if problem else []
        # the errors name their settings (ConfigError.field): no guessing from the words
        error = "\n".join(str(p) for p in problems) or None
        shown = (error, self.running, cfg.task if cfg is not None else None)
        if shown != getattr(self, "_validation_shown", None) or not self._validated:
            self._validated = True
            self._validation_shown = shown
            self.config_error = error
            label.update(self._verdict(cfg, problems))
            label.set_class(error is not None, "error")
            form.mark_invalid([p.field for p in problems])
            form.show_task(cfg.task if cfg is not None else None)
        if self.all_backends and self._form_device() != self._labeled_device:
            self._label_compilers()
        self._update_run_button()

    def _verdict(self, cfg: Optional[RunConfig], problems: list[ConfigError]) -> Text:
        """The line(s) under the form: each problem in full (they wrap and scroll, never
        cut), else what ctrl+r would run."""
        if problems:
            text = Text.assemble(("Cannot run:", "bold"))
            for problem in problems:
                text.append(f"\n• {problem}" if len(problems) > 1 else f" {problem}")
            return text
        if self.running:
            return Text("Running: ctrl+g cancels. Edits apply to the next run.")
        return Text(f"Ready: ctrl+r runs these settings ({cfg.task}).")

    def _update_run_button(self) -> None:
        # Only touch widgets when the state flips: re-styling and footer refreshes are the
        # expensive part of a keystroke.
        state = (self.running, self.config_error is None)
        if state == self._button_state:
            return
        self._button_state = state
        button = self.query_one("#run", Button)
        button.disabled = self.running or self.config_error is not None
        button.label = "Running... ctrl+g cancels" if self.running else "Run  ctrl+r"
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> Optional[bool]:
        if action in ("run", "cancel") and self.screen_owns_run_keys():
            return False  # the sweep/throughput view binds ctrl+r / ctrl+g itself
        if action == "run":
            return None if (self.running or self.config_error) else True
        if action == "cancel":
            return True if self.running else None
        return True
