"""A Select that is drawn by one light line until it is first used.

Why: a Textual Select is six widgets (the current-value row with a label and two arrows, and
the drop-down OptionList) plus their stylesheets; the four on the dashboard's first screen
cost a sizeable share of the CPU before the first paint (benchmarks/RESULTS.md, "Dashboard
start-up").
:class:`LazySelect` is a real :class:`textual.widgets.Select` (same id, type, options, value
checks and ``Select.Changed`` messages, so code and tests that query ``#compiler`` see no
difference), but it composes a one-line :class:`SelectFace` that shows the same text instead
of those parts. :meth:`LazySelect.upgrade` swaps the face for the real parts; the app calls it
right after the first paint, and focusing or clicking the field does it too. A key or click
that arrives before the swap is done opens the drop-down once it is (nothing is lost).
Until then a click opens the drop-down on the press rather than the release.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.css.query import NoMatches
from textual.widget import Widget
from textual.widgets import Select


class SelectFace(Widget):
    """The current value (or the prompt, dimmed) and a down arrow, as a compact Select's
    current-value row draws them (same colours, padding and arrow column)."""

    COMPONENT_CLASSES = {"select-face--value"}

    # mirrors textual's SelectCurrent in a compact Select: $surface background, label
    # $foreground (50% without a value), arrow $foreground 50% after one cell of padding
    DEFAULT_CSS = """
    SelectFace {
        width: 1fr;
        height: 1;
        padding: 0 1 0 0;
        background: $surface;
        color: $foreground 50%;
        pointer: pointer;
    }
    SelectFace > .select-face--value {
        color: $foreground;
    }
    """

    ALLOW_SELECT = False

    def __init__(self, label: Any, has_value: bool) -> None:
        super().__init__()
        self.label, self.has_value = label, has_value

    def show(self, label: Any, has_value: bool) -> None:
        """Show ``label`` (a value's prompt, or the placeholder when ``has_value`` is False)."""
        self.label, self.has_value = label, has_value
        self.refresh()

    def render(self) -> Text:
        width = max(self.content_region.width, 2)
        label = self.label.plain if isinstance(self.label, Text) else str(self.label)
        style = self.get_component_rich_style("select-face--value") if self.has_value else ""
        text = Text(no_wrap=True, overflow="crop", end="")
        text.append(label[:max(width - 2, 0)].ljust(width - 2), style=style)
        text.append(" ▼")
        return text

    def _on_mouse_down(self, event: events.MouseDown) -> None:
        # on the press, not the click: the press focuses the Select, which starts the swap,
        # and a click whose widget is swapped away before the release never arrives
        select = self.parent
        if isinstance(select, LazySelect):
            select.action_show_overlay()

    def _on_click(self, event: events.Click) -> None:
        event.stop()  # handled on the press


class LazySelect(Select):
    """A :class:`textual.widgets.Select` whose drop-down parts are built on first use.

    Takes Select's arguments. Until :meth:`upgrade` has run, the value, options and
    ``Select.Changed`` messages behave as Select's; the drop-down opens after the upgrade.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # set first: Select's __init__ may already run the watchers below
        self._composed = False  # compose has run: value changes post Changed, as Select's do
        self._compose_full = False  # compose yields the real parts
        self._full = False  # the real parts are in place
        self._upgrading = False
        self._open_when_ready = False
        super().__init__(*args, **kwargs)

    @property
    def upgraded(self) -> bool:
        """True once the real Select parts are in place."""
        return self._full

    def compose(self) -> ComposeResult:
        self._composed = True
        if self._compose_full:
            yield from super().compose()
        else:
            yield SelectFace(*self._face_label())

    def _face_label(self) -> tuple[Any, bool]:
        value = self._value
        if value == self.NULL:
            return self.prompt, False
        for prompt, option_value in self._options:
            if option_value == value:
                return prompt, True
        return self.prompt, False

    # ------------------------------------------------------------------ the swap
    def upgrade(self) -> None:
        """Replace the face by the real Select parts (no-op when done or under way)."""
        if self._full or self._upgrading or not self.is_attached:
            return
        self._upgrading = True
        self.call_later(self._swap)

    async def _swap(self) -> None:
        self._compose_full = True
        await self.recompose()
        self._full = True
        try:
            super()._setup_options_renderables()
            # show the value in the new parts; the value did not change: no Changed message
            with self.prevent(Select.Changed):
                super()._watch_value(self.value)
        except NoMatches:  # the app is closing: the new parts were never mounted
            return
        self._upgrading = False
        if self._open_when_ready:
            self._open_when_ready = False
            self.action_show_overlay()

    def _on_focus(self, event: events.Focus) -> None:
        self.upgrade()

    def _watch_expanded(self, expanded: bool) -> None:
        super()._watch_expanded(expanded)
        if expanded and self._full:
            # Select focuses its drop-down after the messages already queued (Widget.focus);
            # keys typed while the swap ran are queued, and would each re-open the drop-down
            # instead of moving in it: give it the focus at once
            try:
                overlay = self.query_one("SelectOverlay")
            except NoMatches:  # removed meanwhile (as Select's own watcher allows)
                return
            self.screen.set_focus(overlay, scroll_visible=False)

    # ------------------------------------------------------------------ Select internals
    # Select reaches for its parts in these; until the swap there is only the face.
    def _setup_options_renderables(self) -> None:
        if self._full:
            super()._setup_options_renderables()
        else:
            self._refresh_face()

    def _watch_value(self, value: Any) -> None:
        if self._full:
            super()._watch_value(value)
            return
        self._value = value
        self._refresh_face()
        if self._composed:  # as Select: Changed once its parts exist
            self.post_message(self.Changed(self, value))

    def _watch_prompt(self, prompt: str) -> None:
        if self._full:
            super()._watch_prompt(prompt)
        else:
            self._refresh_face()

    def _refresh_face(self) -> None:
        faces = self.query_children(SelectFace)
        if faces:
            faces.first().show(*self._face_label())

    def action_show_overlay(self) -> None:
        """Open the drop-down; before the swap, open it as soon as the swap is done."""
        if self._full and not self._upgrading:
            super().action_show_overlay()
            return
        self._open_when_ready = True
        self.upgrade()
