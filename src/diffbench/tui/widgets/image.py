"""Terminal image preview: real pixels through the kitty graphics protocol or sixel where the
terminal speaks one (textual-image), half-block cells everywhere else.

Half blocks: each cell shows two pixels, the upper one as the foreground of "▀" and the lower
one as its background (works in any terminal with colour; Rich maps truecolor down to 256
colours where needed).

Graphics: textual-image finds out what the terminal supports by asking it, which works only
before the dashboard takes the terminal over, and waits for the terminal's answer. So
:func:`detect_graphics` runs in ``main()`` before the app starts, and only asks a terminal that
says it may understand graphics (kitty, WezTerm, iTerm2, ghostty, foot, Konsole, mlterm) or
when ``DIFFBENCH_IMAGES`` asks: "kitty" or "sixel" (ask the terminal), "off" (half blocks,
never ask). Anywhere else (tmux without passthrough, SSH into a plain xterm, the browser of
`diffbench serve`, tests) nothing is imported or asked and previews use half blocks.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Optional

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


#: Environment variable that picks the preview's drawing: "auto" (default), "kitty", "sixel"
#: (ask the terminal even without a hint), "off" (half blocks, never ask).
IMAGES_ENV = "DIFFBENCH_IMAGES"
#: TERM_PROGRAM values (and TERM fragments) of terminals that speak kitty graphics or sixel.
GRAPHICS_TERMINALS = ("kitty", "wezterm", "iterm.app", "ghostty", "foot", "konsole", "mlterm")

#: The protocol :func:`detect_graphics` found: "kitty", "sixel" or None (half blocks).
protocol: Optional[str] = None


def graphics_hinted(environ: Any = None) -> bool:
    """True when the environment says the terminal may speak kitty graphics or sixel."""
    env = os.environ if environ is None else environ
    if env.get("KITTY_WINDOW_ID") or env.get("KONSOLE_VERSION") or env.get("WEZTERM_PANE"):
        return True
    names = f"{env.get('TERM_PROGRAM', '')} {env.get('TERM', '')}".lower()
    return any(name in names for name in GRAPHICS_TERMINALS)


def _ask_terminal() -> Optional[str]:
    """Import textual-image (it asks the terminal at import) and name what it chose."""
    import textual_image.widget  # noqa: F401 - the query, and the cell size, happen here
    from textual_image.renderable import Image as chosen
    from textual_image.renderable import SixelImage, TGPImage

    return "kitty" if chosen is TGPImage else "sixel" if chosen is SixelImage else None


def detect_graphics(environ: Any = None, stdout: Any = None) -> Optional[str]:
    """Decide how previews draw, before the app starts (see the module docstring); sets and
    returns :data:`protocol`. Never raises: any failure means half blocks."""
    global protocol
    env = os.environ if environ is None else environ
    stdout = sys.__stdout__ if stdout is None else stdout
    wanted = (env.get(IMAGES_ENV) or "auto").strip().lower()
    protocol = None
    if wanted == "off":
        return None
    try:
        if not (stdout is not None and stdout.isatty()):
            return None
        if wanted in ("kitty", "sixel") or graphics_hinted(env):
            protocol = _ask_terminal()
    except Exception:  # noqa: BLE001 - not installed, a terminal that does not answer
        protocol = None
    return protocol


def preview_widget(path: str, max_height: int) -> Any:
    """A widget showing the image at ``path``: textual-image's for :data:`protocol`, else a
    Static holding a :class:`HalfBlockImage` of at most ``max_height`` rows."""
    if protocol is not None:
        try:
            from textual_image.widget import SixelImage, TGPImage

            widget = (TGPImage if protocol == "kitty" else SixelImage)(path, id="preview")
            widget.styles.width, widget.styles.height = "auto", max_height
            return widget
        except Exception:  # noqa: BLE001 - fall back to half blocks
            pass
    from textual.widgets import Static

    return Static(HalfBlockImage(path, max_height=max_height), id="preview")
