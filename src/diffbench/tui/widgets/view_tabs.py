"""The History/Log area: a tab strip over a ContentSwitcher, with a light strip at start-up.

Why not TabbedContent: its tab strip (Tabs, a scroll container, two list containers, the Tab
labels, the Underline) and the TabbedContent/TabPane wrappers cost CPU before the dashboard's
first paint (benchmarks/RESULTS.md, "Dashboard start-up"). :class:`ViewTabs` draws the strip
with one
:class:`TabStripFace` (the same two lines: labels, then the bar under the active one) and swaps
in a real :class:`textual.widgets.Tabs` when :meth:`ViewTabs.upgrade` runs (the app calls it
right after the first paint), so focus, left/right and clicks then work as in TabbedContent.
The panes are the caller's widgets (their ids are the tab ids); only the active one is shown.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.style import Style
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.renderables.bar import Bar
from textual.widget import Widget
from textual.widgets import ContentSwitcher, Tab, Tabs

#: Prefix of the Tab ids (the pane ids are the tab ids the app uses).
_TAB_PREFIX = "strip-"


class TabStripFace(Widget):
    """Two lines drawn as textual's Tabs draws them unfocused: the labels (padded by one
    cell, the active one in full colour) and the underline bar under the active label."""

    COMPONENT_CLASSES = {"tab-strip-face--active", "tab-strip-face--bar"}

    # mirrors textual's Tab (colour $foreground 50%, active $foreground) and Underline
    DEFAULT_CSS = """
    TabStripFace {
        width: 100%;
        height: 2;
        color: $foreground 50%;
    }
    TabStripFace > .tab-strip-face--active {
        color: $foreground;
    }
    TabStripFace > .tab-strip-face--bar {
        color: $block-cursor-background;
        background: $foreground 10%;
    }
    """

    ALLOW_SELECT = False

    def __init__(self, titles: list[tuple[str, str]], active: str) -> None:
        super().__init__()
        self.titles = titles  # (pane id, label)
        self.active = active

    def spans(self) -> list[tuple[str, int, int]]:
        """(pane id, first column, end column) of each label, padding included."""
        out, x = [], 0
        for pane_id, label in self.titles:
            out.append((pane_id, x, x + len(label) + 2))
            x += len(label) + 2
        return out

    def render(self) -> Group:
        labels = Text(no_wrap=True, overflow="crop")
        active_style = self.get_component_rich_style("tab-strip-face--active")
        highlight = (0, 0)
        for (pane_id, label), (_, start, end) in zip(self.titles, self.spans()):
            is_active = pane_id == self.active
            labels.append(f" {label} ", style=active_style if is_active else "")
            if is_active:
                highlight = (start + 1, end - 1)  # the label without its padding
        bar_style = self.get_component_rich_style("tab-strip-face--bar")
        bar = Bar(highlight_range=highlight, highlight_style=Style.from_color(bar_style.color),
                  background_style=Style.from_color(bar_style.bgcolor))
        return Group(labels, bar)

    def _on_mouse_down(self, event: events.MouseDown) -> None:
        # on the press: a click whose widget is swapped away before the release never arrives
        for pane_id, start, end in self.spans():
            if start <= event.x < end and isinstance(self.parent, ViewTabs):
                self.parent.active = pane_id

    def _on_click(self, event: events.Click) -> None:
        event.stop()  # handled on the press


class ViewTabs(Vertical):
    """Tabbed panes. ``panes``: (label, widget with an id) in tab order; the first is shown.

    :attr:`active` is the shown pane's id (set it to switch). Key bindings and focus follow
    textual's Tabs once :meth:`upgrade` has run.
    """

    # as TabbedContent's: the strip docked on top, panes as tall as their content
    DEFAULT_CSS = """
    ViewTabs > Tabs, ViewTabs > TabStripFace {
        dock: top;
    }
    ViewTabs > ContentSwitcher {
        height: auto;
    }
    """

    def __init__(self, *panes: tuple[str, Widget], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._panes = panes
        self._titles = [(str(widget.id), label) for label, widget in panes]
        self._active = self._titles[0][0]
        self._tabs: Tabs | None = None
        self._upgrading = False

    def compose(self) -> ComposeResult:
        yield TabStripFace(self._titles, self._active)
        yield ContentSwitcher(*(widget for _, widget in self._panes), initial=self._active)

    @property
    def active(self) -> str:
        """The id of the pane on show."""
        return self._active

    @active.setter
    def active(self, pane_id: str) -> None:
        if pane_id not in dict(self._titles):
            raise ValueError(f"no pane {pane_id!r}")
        self._active = pane_id
        self.query_one(ContentSwitcher).current = pane_id
        if self._tabs is not None:
            self._tabs.active = _TAB_PREFIX + pane_id
        else:
            face = self.query_children(TabStripFace)
            if face:
                face.first().active = pane_id
                face.first().refresh()

    def upgrade(self) -> None:
        """Swap the light strip for a real, focusable Tabs (no-op when done)."""
        if self._tabs is not None or self._upgrading or not self.is_attached:
            return
        self._upgrading = True
        self.call_later(self._swap)

    async def _swap(self) -> None:
        if not self.is_attached:  # the app is closing
            return
        faces = self.query_children(TabStripFace)
        # no active= here: Tabs would look for that tab even when the app closes before
        # the tabs are mounted; it activates the first tab itself
        tabs = Tabs(*(Tab(label, id=_TAB_PREFIX + pane_id) for pane_id, label in self._titles))
        with self.app.batch_update():
            await self.mount(tabs, before=0)
            await faces.remove()
        self._tabs = tabs
        if self._active != self._titles[0][0] and tabs.is_mounted:
            tabs.active = _TAB_PREFIX + self._active  # switched while the face was up

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        if event.tab.id and event.tab.id.startswith(_TAB_PREFIX):
            pane_id = event.tab.id[len(_TAB_PREFIX):]
            self._active = pane_id
            self.query_one(ContentSwitcher).current = pane_id
