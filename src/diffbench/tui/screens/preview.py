"""Full-screen preview of a run's output image (ctrl+o or escape closes it): kitty graphics
or sixel where the terminal speaks one, half blocks elsewhere (diffbench.tui.widgets.image)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from diffbench.tui.widgets import image
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

    _graphics: object = None  # the textual-image widget, once mounted

    async def _draw(self) -> None:
        box = self.query_one("#preview_box")
        rows = max(4, box.content_size.height)
        if image.protocol is None:  # half blocks (see diffbench.tui.widgets.image)
            self.query_one("#preview", Static).update(HalfBlockImage(self.path, max_height=rows))
            return
        if self._graphics is None:  # first draw: the terminal's graphics widget
            self._graphics = widget = image.preview_widget(self.path, rows)
            await self.query_one("#preview").remove()
            await box.mount(widget)
        else:
            self._graphics.styles.height = rows

    def action_close(self) -> None:
        self.dismiss(None)
