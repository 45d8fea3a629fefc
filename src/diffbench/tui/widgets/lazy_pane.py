"""A tab pane whose content is built the first time it is shown.

The Charts and GPU tabs hold plotext widgets; importing plotext and building them before the
first screen would cost start-up time (benchmarks/tui_startup.py), so the pane is an empty
container at start-up and imports its content when the user first opens the tab.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Optional

from textual import events
from textual.containers import VerticalScroll
from textual.widget import Widget


class LazyPane(VerticalScroll):
    """A scrollable pane that mounts ``factory`` ("module:callable" returning a Widget) on
    its first Show event (or :meth:`build`), then calls ``on_built(widget)``."""

    DEFAULT_CSS = """
    LazyPane { height: auto; max-height: 100%; }
    """

    def __init__(self, factory: str, on_built: Optional[Callable[[Widget], Any]] = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.factory = factory
        self.on_built = on_built
        self.content: Optional[Widget] = None

    def _on_show(self, event: events.Show) -> None:
        self.build()

    def build(self) -> Optional[Widget]:
        """Import and mount the content now (no-op when done); returns it."""
        if self.content is None and self.is_attached:
            module, _, name = self.factory.partition(":")
            self.content = getattr(importlib.import_module(module), name)()
            self.mount(self.content)
            if self.on_built is not None:
                self.call_after_refresh(self.on_built, self.content)
        return self.content
