"""The model picker's action (F2): a mixin of :class:`diffbench.tui.app.DiffbenchApp`. The
dialog (diffbench.tui.screens.model_picker) is imported when first opened, not at start-up."""

from __future__ import annotations

from typing import Optional


class ModelPicking:
    """Mixin: :meth:`action_pick_model`."""

    def action_pick_model(self) -> None:
        """Open the model picker; the pick goes into the form's Model field."""
        from textual.widgets import Input

        from diffbench.tui.screens.model_picker import ModelPickerScreen

        field = self.query_one("#model", Input)

        def picked(name: Optional[str]) -> None:
            if name:
                field.value = name
                field.focus()

        self.push_screen(ModelPickerScreen(field.value), picked)
