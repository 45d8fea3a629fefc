"""SVG snapshots of the dashboard's main screens at 100x30, against tests/tui/snapshots/*.svg.

The screens are made deterministic: the scripted fake engine in fixed mode (run ids, start
times and phase times do not depend on the clock or the machine), UTC, no blinking cursor,
notifications cleared, and the background environment probe finished before the capture.
An SVG holds the screen's text and colours, so fonts do not matter.

After an intended change of a screen, rewrite the files and review them (open the SVGs in a
browser) before committing:

    DIFFBENCH_UPDATE_SNAPSHOTS=1 python3 -m pytest tests/tui/test_tui_snapshots.py

(pytest-textual-snapshot would do the same, but its syrupy pin needs pytest < 9.)
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from textual.widgets import Input

from diffbench.tui.app import DiffbenchApp
from diffbench.tui.screens.compare import CompareScreen
from diffbench.tui.screens.help import HelpScreen
from fakes import MemoryHistory, FakeEngine

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
UPDATE_ENV = "DIFFBENCH_UPDATE_SNAPSHOTS"
SIZE = (100, 30)
pytestmark = pytest.mark.asyncio


@pytest.fixture(autouse=True)
def _fixed_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TZ", "UTC")  # the history table shows local times
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def assert_snapshot(app: DiffbenchApp, name: str, tmp_path: Path) -> None:
    """Compare the current screen's SVG with tests/tui/snapshots/NAME.svg (or write it when
    DIFFBENCH_UPDATE_SNAPSHOTS=1). On a mismatch the new SVG is left in tmp_path."""
    svg = app.export_screenshot(title="diffbench")
    expected = SNAPSHOTS / f"{name}.svg"
    if os.environ.get(UPDATE_ENV) == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        expected.write_text(svg, encoding="utf-8")
        return
    assert expected.is_file(), (f"no snapshot {expected.name}; write it with "
                                f"{UPDATE_ENV}=1 and review it")
    if svg != expected.read_text(encoding="utf-8"):
        actual = tmp_path / f"{name}.svg"
        actual.write_text(svg, encoding="utf-8")
        raise AssertionError(f"screen {name!r} differs from {expected.name}; new one: "
                             f"{actual} (if intended: {UPDATE_ENV}=1, then review)")


async def settle(pilot) -> None:
    """Wait for the start-up probe, stop cursor blinking, drop toasts, let layout finish."""
    app = pilot.app
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not app.all_backends and loop.time() < deadline:
        await pilot.pause(0.05)
    assert app.all_backends, "the environment probe did not finish"
    for field in app.query(Input):
        field.cursor_blink = False
    app.clear_notifications()
    # until two captures agree: some widgets finish when idle (the history table sizes its
    # columns in its idle handler), which a fixed number of pauses may not reach on a busy box
    previous = None
    for _ in range(40):
        await pilot.pause()
        current = app.export_screenshot(title="diffbench")
        if current == previous:
            break
        previous = current


async def run_to_end(pilot, compiler: str) -> None:
    app = pilot.app
    app.query_one("#compiler").value = compiler
    await pilot.pause()
    await pilot.press("ctrl+r")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while app.running and loop.time() < deadline:
        await pilot.pause(0.05)
    assert not app.running


def make_app() -> DiffbenchApp:
    return DiffbenchApp(engine=FakeEngine(step_ms=40.0, fixed=True), history=MemoryHistory())


async def test_snapshot_settings_screen(tmp_path):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert_snapshot(app, "settings", tmp_path)


async def test_snapshot_finished_run_results(tmp_path):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run_to_end(pilot, "none")
        await settle(pilot)
        assert "Finished tiny-sd15" in str(app.query_one("#status").content)
        assert_snapshot(app, "results", tmp_path)


async def test_snapshot_history_and_compare(tmp_path):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await run_to_end(pilot, "none")
        await run_to_end(pilot, "compile")
        await settle(pilot)
        assert_snapshot(app, "history", tmp_path)
        await pilot.press("ctrl+t")  # the compiled run against its eager baseline
        assert isinstance(app.screen, CompareScreen)
        await settle(pilot)
        assert_snapshot(app, "compare", tmp_path)


async def test_snapshot_help_screen(tmp_path):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await settle(pilot)
        assert_snapshot(app, "help", tmp_path)
