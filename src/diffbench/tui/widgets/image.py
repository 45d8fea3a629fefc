"""Terminal image preview with half-block cells: each cell shows two pixels, the upper one
as the foreground of "▀" and the lower one as its background (works in any terminal with
colour; Rich maps truecolor down to 256 colours where needed)."""

from __future__ import annotations

from typing import Optional

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style


class HalfBlockImage:
    """A Rich renderable of the image at ``path``, fitted to the space given (aspect kept).

    Raises nothing while rendering: an unreadable file renders as a one-line message.
    """

    def __init__(self, path: str, max_height: Optional[int] = None) -> None:
        self.path = path
        self.max_height = max_height
        self._cache: dict[tuple[int, int], object] = {}

    def _fit(self, max_width: int, rows: int):  # -> PIL.Image.Image
        """The image resized to fit max_width cells x rows cells (2 pixels per cell row)."""
        key = (max_width, rows)
        if key not in self._cache:
            from PIL import Image

            with Image.open(self.path) as image:
                image = image.convert("RGB")
                scale = min(max(1, max_width) / image.width, (rows * 2) / image.height)
                size = (max(1, int(image.width * scale)), max(2, int(image.height * scale)))
                self._cache[key] = image.resize(size)
        return self._cache[key]

    def _rows(self, options: ConsoleOptions) -> int:
        return self.max_height or options.height or options.size.height or 24

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        try:
            width = self._fit(options.max_width, self._rows(options)).size[0]
        except Exception:
            width = options.max_width
        return Measurement(width, width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        try:
            small = self._fit(options.max_width, self._rows(options))
        except Exception as exc:  # missing/corrupt file: say so instead of failing the UI
            yield Segment(f"cannot show {self.path}: {exc}\n")
            return
        pixels = small.load()
        w, h = small.size
        for y in range(0, h - 1, 2):
            for x in range(w):
                top, bottom = pixels[x, y], pixels[x, y + 1]
                yield Segment("▀", Style(color=f"rgb({top[0]},{top[1]},{top[2]})",
                                         bgcolor=f"rgb({bottom[0]},{bottom[1]},{bottom[2]})"))
            yield Segment.line()
