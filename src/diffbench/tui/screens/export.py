"""Small path dialogs: export runs to TOML, save/load a profile."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label


class PathScreen(ModalScreen[str]):
    """Ask for a file path; dismisses with the path, or "" when cancelled (escape)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, default: str, ok_label: str = "OK") -> None:
        super().__init__()
        self._title = title
        self._default = default
        self._ok_label = ok_label

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self._title, classes="dialog-title")
            yield Input(self._default, id="path")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self._ok_label, id="ok", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self.dismiss(self.query_one("#path", Input).value.strip())
        else:
            self.dismiss("")

    def action_cancel(self) -> None:
        self.dismiss("")


class ExportScreen(PathScreen):
    """Export ``count`` runs: the path defaults to diffbench-<run_id>.toml in the cwd."""

    def __init__(self, count: int, default: str) -> None:
        plural = "s" if count > 1 else ""
        super().__init__(f"Export {count} run{plural} to TOML (enter to write, escape to "
                         f"cancel)", default, ok_label="Export")
