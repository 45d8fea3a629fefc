"""Form validation: the form's settings as a RunConfig, the first problem shown under it
(named field marked), and the Run button and ctrl+r / ctrl+g enabled to match.

A mixin of :class:`diffbench.tui.app.DiffbenchApp`; the environment's answers (device,
compilers, model checks) come from diffbench.tui.probes.
"""

from __future__ import annotations

from typing import Optional

from textual.css.query import NoMatches
from textual.widgets import Button, Static

from diffbench.engine.errors import ConfigError


class FormValidation:
    """Mixin: ``config_error`` on the app, the validation line and the Run button."""

    def validate_form(self) -> None:
        """Build a RunConfig from the form; show the ConfigError and disable Run if any."""
        self._validation_queued = False
        try:
            label = self.query_one("#validation", Static)
        except NoMatches:  # a late message while the app shuts down
            return
        try:
            cfg = self.form().build_config()
        except ConfigError as exc:
            problem: Optional[ConfigError] = exc
        else:
            problem = self._environment_problem(cfg)
        # the error names its setting (ConfigError.field): no guessing from the words
        error, field = (str(problem), problem.field) if problem else (None, None)
        if error != self.config_error or not self._validated:
            self._validated = True
            self.config_error = error
            if error:
                label.update(f"[b]Cannot run:[/b] {error}")
            else:
                label.update("Ready: ctrl+r runs these settings.")
            label.set_class(error is not None, "error")
            self.form().mark_invalid(field)
        if self.all_backends and self._form_device() != self._labeled_device:
            self._label_compilers()
        self._update_run_button()

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
