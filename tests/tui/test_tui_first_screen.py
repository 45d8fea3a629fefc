"""The dashboard's first screen, made quick to paint: the light stand-ins
(diffbench.tui.widgets.lazy_select, diffbench.tui.widgets.view_tabs) look like the real widgets, keep their values
and messages, and lose no key or click that arrives before they are swapped for the real
ones; the skipped first restyle changes nothing; the start-up heap is frozen while the app
runs (see diffbench.tui.app)."""

from __future__ import annotations

import asyncio
import gc
import io

import pytest
from rich.console import Console
from textual import events
from textual.app import App, ComposeResult
from textual.widgets import Input, Select, Static, Tabs
from textual.widgets._select import SelectCurrent, SelectOverlay

from diffbench.tui.app import DiffbenchApp
from fakes import MemoryHistory, FakeEngine, wait_until
from diffbench.tui.widgets.history import HistoryTable
from diffbench.tui.widgets.lazy_select import LazySelect, SelectFace
from diffbench.tui.widgets.view_tabs import TabStripFace, ViewTabs

SIZE = (100, 30)
pytestmark = pytest.mark.asyncio

OPTIONS = [("none", "none"), ("compile", "compile"), ("onediff", "onediff")]


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


class SelectApp(App):
    """One LazySelect (never upgraded by itself) and an Input that has the focus."""

    def __init__(self, **select_kwargs) -> None:
        super().__init__()
        self.select_kwargs = select_kwargs
        self.changes: list[object] = []

    def compose(self) -> ComposeResult:
        yield Input(id="first")
        yield LazySelect(OPTIONS, id="pick", compact=True, **self.select_kwargs)

    def on_select_changed(self, event: Select.Changed) -> None:
        self.changes.append(event.value)


def face_text(select: LazySelect) -> str:
    face = select.query_one(SelectFace)
    console = Console(width=40, file=io.StringIO(), record=True)
    console.print(face.render())
    return console.export_text().strip()


async def test_lazy_select_keeps_select_semantics_before_and_after_the_swap():
    app = SelectApp(value="compile", allow_blank=False)
    async with app.run_test() as pilot:
        await pilot.pause()
        select = app.query_one("#pick", Select)
        assert isinstance(select, LazySelect) and not select.upgraded
        assert not select.query(SelectOverlay)  # the drop-down is not built yet
        assert select.value == "compile" and "compile" in face_text(select)
        assert app.changes == ["compile"]  # as Select: Changed with the initial value

        select.value = "onediff"
        await pilot.pause()
        assert app.changes[-1] == "onediff" and "onediff" in face_text(select)
        with pytest.raises(Exception):  # InvalidSelectValueError, as Select
            select.value = "not-an-option"
        select.set_options([("eager", "none"), ("inductor", "compile")])
        await pilot.pause()
        assert select.value == "none" and "eager" in face_text(select)

        changes = len(app.changes)
        select.upgrade()
        await wait_until(pilot, lambda: select.upgraded)
        await pilot.pause()
        assert select.query_one(SelectCurrent).label == "eager"
        assert len(app.changes) == changes  # the swap itself changes no value
        select.value = "compile"
        await pilot.pause()
        assert app.changes[-1] == "compile"
        assert select.query_one(SelectCurrent).label == "inductor"


async def test_blank_lazy_select_shows_its_prompt():
    app = SelectApp(prompt="(none)")
    async with app.run_test() as pilot:
        await pilot.pause()
        select = app.query_one(LazySelect)
        assert select.value is Select.NULL
        assert face_text(select).startswith("(none)")


async def test_keys_pressed_before_the_swap_open_and_use_the_drop_down():
    app = SelectApp(value="none", allow_blank=False)
    async with app.run_test() as pilot:
        await pilot.pause()
        select = app.query_one(LazySelect)
        await pilot.press("tab", "enter")  # focus the stand-in and open it at once
        await wait_until(pilot, lambda: select.upgraded and select.expanded)
        assert app.focused is select.query_one(SelectOverlay)
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: not select.expanded)
        assert select.value == "compile" and app.changes[-1] == "compile"
        assert app.focused is select


async def test_a_click_on_the_stand_in_opens_the_drop_down():
    app = SelectApp(value="none", allow_blank=False)
    async with app.run_test() as pilot:
        await pilot.pause()
        select = app.query_one(LazySelect)
        assert not select.upgraded
        # the press focuses the field and starts the swap; the button is still down when
        # the drop-down opens. (A terminal sends no click when the widget under the pointer
        # changed between press and release; Pilot.click would send one anyway.)
        await pilot.mouse_down(SelectFace)
        await wait_until(pilot, lambda: select.upgraded and select.expanded)
        await pilot.mouse_up()
        await pilot.pause()
        assert select.expanded and app.focused is select.query_one(SelectOverlay)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not select.expanded)
        assert select.value == "none"



class SlowSwapSelect(LazySelect):
    """A stand-in whose swap takes a while, as on a busy 2-core box."""

    async def _swap(self) -> None:
        await asyncio.sleep(0.2)
        await super()._swap()


class SlowSwapApp(SelectApp):
    def compose(self) -> ComposeResult:
        yield Input(id="first")
        yield SlowSwapSelect(OPTIONS, id="pick", compact=True, **self.select_kwargs)


async def test_keys_typed_while_a_slow_swap_runs_reach_the_drop_down():
    # keys a terminal delivers at typing pace wait behind the swap and then arrive together:
    # the first opens the drop-down, the others must move and pick in it
    app = SlowSwapApp(value="none", allow_blank=False)
    async with app.run_test() as pilot:
        await pilot.pause()
        select = app.query_one(LazySelect)
        for key in ("tab", "enter", "down", "enter"):
            app.post_message(events.Key(key, None))
            await asyncio.sleep(0.05)
        await wait_until(pilot, lambda: select.upgraded)
        for _ in range(5):
            await pilot.pause(0.02)
        assert not select.expanded
        assert select.value == "compile" and app.changes[-1] == "compile"
        assert app.focused is select

class TabsApp(App):
    def compose(self) -> ComposeResult:
        yield ViewTabs(("History", Static("runs", id="pane_a")),
                       ("Log", Static("lines", id="pane_b")), id="tabs")


async def test_view_tabs_switch_panes_before_and_after_the_swap():
    app = TabsApp()
    async with app.run_test(size=(60, 10)) as pilot:
        await pilot.pause()
        tabs = app.query_one(ViewTabs)
        a, b = app.query_one("#pane_a"), app.query_one("#pane_b")
        assert tabs.active == "pane_a" and a.display and not b.display
        await pilot.mouse_down(TabStripFace, offset=(10, 0))  # on " Log "
        await pilot.pause()
        assert tabs.active == "pane_b" and b.display and not a.display
        tabs.upgrade()  # the real strip keeps the pane chosen on the stand-in
        await wait_until(pilot, lambda: bool(app.query(Tabs)))
        for _ in range(3):
            await pilot.pause()
        assert not app.query(TabStripFace)
        real = app.query_one(Tabs)
        assert real.active.endswith("pane_b") and tabs.active == "pane_b" and b.display
        real.focus()
        await pilot.press("left")  # Tabs' own key binding
        await wait_until(pilot, lambda: tabs.active == "pane_a")
        assert a.display and not b.display
        tabs.active = "pane_b"
        await pilot.pause()
        assert real.active.endswith("pane_b") and b.display


def screen_cells(app: App) -> list[list[tuple[str, object, object]]]:
    """What the user sees: per cell the character, its colour (None for blanks, whose colour
    cannot be seen) and the background colour."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", legacy_windows=False, safe_box=False)
    update = app.screen._compositor.render_update(full=True)  # as export_screenshot does
    rows = []
    for line in console.render_lines(update, console.options, pad=False):
        cells = []
        for segment in line:
            style = segment.style
            for char in segment.text:
                visible = char.strip() != ""
                cells.append((char if visible else " ",
                              style.color if (visible and style) else None,
                              style.bgcolor if style else None))
        rows.append(cells)
    return rows


class NoSwapApp(DiffbenchApp):
    """The dashboard as its first paint shows it: the stand-ins stay."""

    def _after_first_paint(self) -> None:
        self.first_painted = True


async def test_first_screen_stand_ins_look_like_the_real_widgets():
    app = NoSwapApp(engine=FakeEngine(), history=MemoryHistory())
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(3):
            await pilot.pause()
        assert len(app.query(SelectFace)) == 4 and app.query(TabStripFace)
        for field in app.query(Input):
            field.cursor_blink = False
        before = screen_cells(app)
        app.form().upgrade_selects()
        app.query_one(ViewTabs).upgrade()
        await wait_until(pilot, lambda: not app.query(SelectFace) and not app.query(TabStripFace))
        for _ in range(3):
            await pilot.pause()
        assert screen_cells(app) == before


async def test_dashboard_swaps_its_stand_ins_after_the_first_paint():
    app = DiffbenchApp(engine=FakeEngine(), history=MemoryHistory())
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: all(s.upgraded for s in app.query(LazySelect))
                         and bool(app.query(Tabs)))
        assert {s.id for s in app.query(LazySelect)} == {"profile", "task", "size_preset",
                                                          "compiler"}
        assert isinstance(app.focused, Input) and app.focused.id == "model"
        app.query_one(HistoryTable).focus()
        await pilot.press("l")  # the table's key for the log pane
        await wait_until(pilot, lambda: app.query_one(ViewTabs).active == "tab_log")
        assert app.query_one("#tab_log").display and not app.query_one("#tab_history").display
        await pilot.press("ctrl+f")  # the filter is on the history pane
        await wait_until(pilot, lambda: app.query_one(ViewTabs).active == "tab_history")
        assert app.focused is app.query_one("#filter")


async def test_the_skipped_first_restyle_would_change_nothing():
    # the dashboard's screen skips Textual's restyle of every widget on its first resume
    # (diffbench.tui.app.DashboardScreen); doing it now must leave the screen as it is
    app = NoSwapApp(engine=FakeEngine(), history=MemoryHistory())
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(3):
            await pilot.pause()
        for field in app.query(Input):
            field.cursor_blink = False
        await pilot.pause()
        before = screen_cells(app)
        app.screen.update_node_styles(animate=False)
        for _ in range(3):
            await pilot.pause()
        assert screen_cells(app) == before


async def test_the_start_up_heap_is_frozen_while_the_app_runs():
    assert gc.get_freeze_count() == 0
    app = DiffbenchApp(engine=FakeEngine(), history=MemoryHistory())
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.first_painted)
        assert gc.get_freeze_count() > 10_000  # widgets, styles, modules
    assert gc.get_freeze_count() == 0  # collectable again once the app has ended


async def test_quitting_while_the_stand_ins_are_swapped_is_clean():
    app = DiffbenchApp(engine=FakeEngine(), history=MemoryHistory())
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.first_painted)
        await pilot.press("ctrl+q")  # the swaps are under way
    assert app.return_code == 0


async def test_keys_show_the_log_charts_and_gpu_tabs_but_not_while_typing():
    app = DiffbenchApp(engine=FakeEngine(), history=MemoryHistory())
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(app.query(Tabs)))
        model = app.query_one("#model", Input)
        model.focus()
        await pilot.press("g", "p")  # typed into the field: no tab changes
        assert app.query_one(ViewTabs).active == "tab_history"
        assert model.value.endswith("gp")
        app.query_one(HistoryTable).focus()
        for key, tab in (("p", "tab_charts"), ("g", "tab_gpu"), ("l", "tab_log"),
                         ("g", "tab_gpu")):  # from another tab too, not only the history
            await pilot.press(key)
            await wait_until(pilot, lambda: app.query_one(ViewTabs).active == tab)
            assert app.query_one(f"#{tab}").display


async def test_help_says_what_vs_eager_and_inference_are_and_lists_the_tab_keys():
    from diffbench.tui.screens.help import HELP

    text = " ".join(HELP.split())  # the markdown's line breaks do not matter
    assert "one measured pipeline call" not in text
    assert "median wall time over the measured pipeline calls (`--repeat`" in text
    assert "**vs eager**: speed-up in inference time (eager's seconds / this run's)" in text
    assert "| l / p / g | show the Log, Charts (plots) or GPU tab" in text
