"""Past sweeps: the sweeps stored in the history, and the dialog that picks one to show."""

from __future__ import annotations

from typing import Any, Optional

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from diffbench.engine.result import RunResult
from diffbench.tui.runs import accel_of, size_of


def past_sweeps(history: Any) -> list[tuple[str, list[RunResult]]]:
    """Sweeps in ``history``, newest first: [(sweep_id, runs)]."""
    from diffbench.tui.sweep_matrix import list_sweeps

    return list_sweeps(history.list())


class SweepPickerScreen(ModalScreen[Optional[str]]):
    """Choose one past sweep; dismisses with its id (None: escape)."""

    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, groups: list[tuple[str, list[RunResult]]]) -> None:
        super().__init__()
        self.groups = groups

    def compose(self) -> ComposeResult:
        options = []
        for sweep_id, runs in self.groups:
            newest = max(runs, key=lambda r: r.started_at or "")
            cells = {r.config.get("sweep_cell") for r in runs}
            failed = sum(1 for r in runs if r.status == "failed")
            label = (f"{sweep_id}  {newest.config.get('model', '?')} {size_of(newest)}  "
                     f"{len(cells)} cells, {len(runs)} runs"
                     f"{f', {failed} failed' if failed else ''}  "
                     f"{(newest.started_at or '')[:16]}  ({accel_of(newest)} last)")
            options.append(Option(label, id=sweep_id))
        with Vertical(classes="dialog wide", id="sweep_picker"):
            yield Static("Past sweeps (newest first); enter opens one", classes="dialog-title")
            yield OptionList(*options, id="sweep_options")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#sweep_picker").border_title = "Open a sweep"
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_close(self) -> None:
        self.dismiss(None)
