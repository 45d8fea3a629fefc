"""Full-screen preview of a run's output image (ctrl+o or escape closes it)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from diffbench.tui.widgets.image import HalfBlockImage


class PreviewScreen(ModalScreen[None]):
    """Shows ``path`` fitted to the terminal, with the run named in the border."""

    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, path: str, title: str = "") -> None:
        super().__init__()
        self.path = path
        self._title = title

    def compose(self) -> ComposeResult:
        with Center(id="preview_box"):
            yield Static(id="preview")
        yield Footer()

    def on_mount(self) -> None:
        box = self.query_one("#preview_box")
        box.border_title = f"{self._title}  {self.path}"
        self.call_after_refresh(self._draw)

    def on_resize(self) -> None:
        self.call_after_refresh(self._draw)

    def _draw(self) -> None:
        widget = self.query_one("#preview", Static)
        box = self.query_one("#preview_box")
        rows = max(4, box.content_size.height)
        widget.update(HalfBlockImage(self.path, max_height=rows))

    def action_close(self) -> None:
        self.dismiss(None)
