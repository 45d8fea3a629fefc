"""Pilot tests: quitting during a run keeps the run; the form is remembered across starts;
the 100x30 layout keeps the key figures in view (scripted fake engine, no torch)."""

from __future__ import annotations

import json
import time

import pytest
from textual.widgets import Input

from diffbench.engine.config import RunConfig
from diffbench.tui import form_memory
from diffbench.tui.app import DiffbenchApp
from diffbench.tui.screens.confirm import ConfirmScreen
from fakes import MemoryHistory, FakeEngine, wait_until
from diffbench.tui.widgets.history import HistoryTable
from diffbench.tui.widgets.results import ResultPanels

SIZE = (100, 30)
pytestmark = pytest.mark.asyncio


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


async def start_held_run(pilot, engine: FakeEngine) -> None:
    await pilot.press("ctrl+r")
    await wait_until(pilot, engine.held.is_set)
    await pilot.pause()


async def test_quit_during_a_run_asks_then_records_the_cancelled_run(tmp_path):
    engine = FakeEngine(hold_at_step=2)
    history = MemoryHistory()
    app = DiffbenchApp(engine=engine, history=history, export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await start_held_run(pilot, engine)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)  # asked, not gone
        assert app.running and not engine.release.is_set()
        await pilot.press("n")  # changed my mind: the run goes on
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert app.running and app.quit_state is None

        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_until(pilot, lambda: app.return_code is not None)
    runs = history.list()
    assert [r.status for r in runs] == ["cancelled"]
    assert runs[0].config["model"] == "tiny-sd15"


async def test_second_quit_while_cancelling_exits_at_once(tmp_path):
    engine = FakeEngine(hold_at_step=2)
    engine.hold_through_cancel = True  # the cancel cannot land: the run would go on
    history = MemoryHistory()
    app = DiffbenchApp(engine=engine, history=history, export_dir=tmp_path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await start_held_run(pilot, engine)
            await pilot.press("ctrl+q")
            await pilot.pause()
            await pilot.press("y")
            await pilot.pause()
            assert app.quit_state == "cancelling" and app.running
            assert "Cancelling" in str(app.query_one("#status").content)
            assert app.return_code is None  # waiting for the cancelled run
            await pilot.press("ctrl+q")
            await wait_until(pilot, lambda: app.return_code is not None, timeout_s=3)
            assert app.cancel_event is None or app.cancel_event.is_set()
    finally:
        engine.release.set()  # let the fake's thread end
    # Quit at once still keeps the run: the run's thread stores it as it ends (the app's
    # shutdown waits for that thread; a real child is killed, so it ends at once).
    deadline = time.monotonic() + 5
    while not history.list() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r.status for r in history.list()] == ["cancelled"]


async def test_quit_without_a_run_asks_nothing(tmp_path):
    app = DiffbenchApp(engine=FakeEngine(), history=MemoryHistory(), export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: app.return_code is not None, timeout_s=3)


async def test_form_settings_of_the_last_run_come_back_at_the_next_start(tmp_path):
    engine = FakeEngine()
    app = DiffbenchApp(engine=engine, history=MemoryHistory(), export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.query_one("#steps", Input).value = "7"
        app.query_one("#seed", Input).value = "42"
        app.query_one("#size", Input).value = "64x64"
        app.query_one("#prompt", Input).value = "a red fox"
        for _ in range(3):
            await pilot.pause()
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: not app.running and engine.calls)
    saved = json.loads(form_memory.path().read_text(encoding="utf-8"))
    assert (saved["steps"], saved["seed"], saved["prompt"]) == (7, 42, "a red fox")
    assert "task" not in saved  # "auto" stays auto, not the task the model resolved to

    again = DiffbenchApp(engine=FakeEngine(), history=MemoryHistory(), export_dir=tmp_path)
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        cfg = again.form().build_config()
        assert (cfg.steps, cfg.seed, cfg.prompt) == (7, 42, "a red fox")
        assert (cfg.width, cfg.height) == (64, 64)
        assert again.query_one("#task").value == "auto"
        assert again.query_one("#size", Input).value == "64x64"
        assert again.config_error is None


async def test_a_damaged_settings_file_leaves_the_defaults(tmp_path):
    target = form_memory.path()
    target.parent.mkdir(parents=True)
    target.write_text("{not json", encoding="utf-8")
    app = DiffbenchApp(engine=FakeEngine(), history=MemoryHistory(), export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.form().build_config().steps == RunConfig().steps
        assert app.query_one("#model", Input).value == "tiny-sd15"
        assert app.config_error is None


async def test_history_keeps_id_model_accel_and_key_figures_in_view_at_100_columns(tmp_path):
    engine = FakeEngine(fixed=True)
    app = DiffbenchApp(engine=engine, history=MemoryHistory(), export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: not app.running and engine.calls)
        await pilot.pause()
        table = app.query_one(HistoryTable)
        view = table.scrollable_content_region.width
        right = 0
        shown = {}
        for column in table.ordered_columns:
            right += column.get_render_width(table)
            shown[str(column.key.value)] = right <= view
        # issue 17: the key figures (it/s, p50, peak) are the last to go, before size and
        # status (which now follow steps and task)
        for key in ("id", "model", "accel", "it_per_s", "step_ms_p50", "peak_gib"):
            assert shown[key], f"column {key} is cut off at 100 columns ({view} wide)"


async def test_result_panels_say_they_show_the_previous_run_during_a_new_one(tmp_path):
    engine = FakeEngine(fixed=True, hold_at_step=2)
    engine.release.set()  # the first run goes straight through
    app = DiffbenchApp(engine=engine, history=MemoryHistory(), export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: not app.running and engine.calls)
        panels = app.query_one(ResultPanels)
        memory = app.query_one("#memory_panel")
        assert memory.border_subtitle == "run fake-0001"
        assert not panels.has_class("previous")

        engine.release.clear()
        engine.held.clear()
        await start_held_run(pilot, engine)
        assert panels.has_class("previous")
        assert app.query_one("#speed_panel").border_subtitle == "previous run"
        assert memory.border_subtitle == "run fake-0001"
        engine.release.set()
        await wait_until(pilot, lambda: not app.running)
        await pilot.pause()
        assert not panels.has_class("previous")
        assert not app.query_one("#speed_panel").border_subtitle
        assert memory.border_subtitle == "run fake-0002"


@pytest.mark.parametrize("phase", [None, "load"], ids=["importing", "loading"])
async def test_quit_while_the_run_is_starting_exits_at_once(tmp_path, phase):
    """The child is still importing / loading and hears no cancel until it is done: quit
    does not wait for it (it used to wait QUIT_WAIT_S, 15 s); the child is stopped and
    the run's thread still records the cancelled run."""
    engine = FakeEngine(block_at_start=True)
    history = MemoryHistory()
    app = DiffbenchApp(engine=engine, history=history, export_dir=tmp_path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("ctrl+r")
            await wait_until(pilot, engine.blocked.is_set)
            app.current_phase = phase  # as the child's PhaseStarted("load") would set it
            await pilot.press("ctrl+q")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)  # still asked
            started = time.monotonic()
            await pilot.press("y")
            await wait_until(pilot, lambda: app.return_code is not None, timeout_s=3)
            assert time.monotonic() - started < app.QUIT_WAIT_S / 3
            assert app.cancel_event is None or app.cancel_event.is_set()
    finally:
        engine.release.set()  # the "child" ends; a real one is killed by the quit
    deadline = time.monotonic() + 5
    while not history.list() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r.status for r in history.list()] == ["cancelled"]


async def test_sigterm_during_start_up_quits_and_records_the_run(tmp_path):
    """SIGTERM to the dashboard while the run starts: the app quits as a second ctrl+q does
    (run cancelled, child stopped, run recorded) instead of dying on the signal."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    script = f"""
import asyncio, os, signal, sys
sys.path.insert(0, {str(tests)!r})
from fakes import FakeEngine, MemoryHistory, wait_until
from diffbench.tui.app import DiffbenchApp

async def main():
    engine = FakeEngine(block_at_start=True)
    history = MemoryHistory()
    app = DiffbenchApp(engine=engine, history=history, export_dir={str(tmp_path)!r})
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+r")
        await wait_until(pilot, engine.blocked.is_set)
        os.kill(os.getpid(), signal.SIGTERM)
        await wait_until(pilot, lambda: app.return_code is not None, timeout_s=3)
        print("QUIT", app.cancel_event is None or app.cancel_event.is_set(), flush=True)
    engine.release.set()
    for _ in range(100):
        if history.list():
            break
        await asyncio.sleep(0.05)
    print("RECORDED", [r.status for r in history.list()], flush=True)

asyncio.run(main())
"""
    env = {**os.environ, "DIFFBENCH_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120, cwd=tests.parent)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert "QUIT True" in proc.stdout and "RECORDED ['cancelled']" in proc.stdout
