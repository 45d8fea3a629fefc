"""The model picker (F2, or "Pick a model" in ctrl+p): the built-in models, the diffusers
pipelines already in the local Hugging Face cache, and well-known ones that need a download
first (diffbench.tui.model_list). Enter puts the name into the form's Model field.

The cache is scanned in a thread after the dialog is up (a large cache takes a moment); the
built-ins show at once.
"""

from __future__ import annotations

from typing import Optional

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from diffbench.engine.catalog.settings import BUILTIN_MODELS
from diffbench.tui.model_list import ModelEntry, builtin_note

#: Group headings, in display order.
GROUPS = (("built-in", "Built in (no download)"),
          ("cached", "In the local Hugging Face cache"),
          ("download", "Need a download first (no network is used here)"))


class ModelPickerScreen(ModalScreen[Optional[str]]):
    """Dismisses with the picked model name, or None (escape)."""

    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, current: str = "", cache_dir=None) -> None:
        super().__init__()
        self.current = current
        self.cache_dir = cache_dir
        self.entries: list[ModelEntry] = [ModelEntry(n, "built-in", builtin_note(n))
                                          for n in BUILTIN_MODELS]
        self.scanned = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Models: enter picks one, escape closes", classes="dialog-title")
            yield OptionList(id="models")
            yield Label("scanning the local cache...", id="models_status")

    def on_mount(self) -> None:
        self._fill()
        self.query_one(OptionList).focus()
        self._scan()

    @work(thread=True, exit_on_error=False)
    def _scan(self) -> None:
        from diffbench.tui.model_list import model_entries

        entries = model_entries(self.cache_dir)
        self.app.call_from_thread(self._scanned, entries)

    def _scanned(self, entries: list[ModelEntry]) -> None:
        self.entries = entries
        self.scanned = True
        counts = {g: sum(e.group == g for e in entries) for g, _ in GROUPS}
        self.query_one("#models_status", Label).update(
            f"{counts['built-in']} built in, {counts['cached']} cached, "
            f"{counts['download']} to download")
        self._fill()

    def _fill(self) -> None:
        options = self.query_one(OptionList)
        highlighted = options.highlighted_option.id if options.highlighted_option else None
        options.clear_options()
        for group, heading in GROUPS:
            members = [e for e in self.entries if e.group == group]
            if not members and group != "cached":
                continue
            options.add_option(Option(Text(heading, style="bold"), disabled=True))
            if not members:
                options.add_option(Option(Text("  (none found)" if self.scanned
                                               else "  (scanning...)", style="dim"),
                                          disabled=True))
            for entry in members:
                label = Text("  " + entry.name)
                label.append(f"  {entry.note}", style="dim")
                options.add_option(Option(label, id=f"{group}:{entry.name}"))
        wanted = highlighted or next((f"{e.group}:{e.name}" for e in self.entries
                                      if e.name == self.current), None)
        if wanted is not None:
            try:
                options.highlighted = options.get_option_index(wanted)
            except Exception:  # noqa: BLE001 - gone after a rescan
                pass

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.dismiss(event.option.id.split(":", 1)[1])

    def action_close(self) -> None:
        self.dismiss(None)
