"""Pilot tests of the problems a new user found in the dashboard (issue 17, "Found" 1-7).

Each test failed on the dashboard before its fix. Runs come from the scripted fake engine
or are stored by hand (tests/stored_runs.py), so every figure is known.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Input, Static

from diffbench.tui.app import DiffbenchApp
from diffbench.tui.screens.compare import CompareScreen
from diffbench.tui.widgets.history import HistoryTable
from fakes import FakeEngine, MemoryHistory, wait_until
from stored_runs import screen_text, stored_run

SIZE = (100, 30)
pytestmark = pytest.mark.asyncio


class RecordingApp(DiffbenchApp):
    """The dashboard, remembering every notification it showed."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.notes: list[tuple[str, str]] = []

    def notify(self, message, *, title="", severity="information", **kwargs):  # noqa: D102
        self.notes.append((severity, str(message)))
        return super().notify(message, title=title, severity=severity, **kwargs)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def make_app(*runs, engine=None) -> RecordingApp:
    history = MemoryHistory()
    for run in runs:
        history.add(run)
    return RecordingApp(engine=engine or FakeEngine(step_ms=40.0), history=history)


def plain(renderable, width: int = 120) -> str:
    console = Console(width=width, file=io.StringIO(), record=True)
    console.print(renderable)
    return console.export_text()


async def mark(pilot, table: HistoryTable, run_id: str) -> None:
    table.move_cursor(row=table.get_row_index(run_id))
    table.focus()
    await pilot.press("space")


# ---------------------------------------------------------------- 1. compare
async def test_compare_keeps_marking_order_and_warns_on_different_work():
    eager = stored_run("eager-run", minute=0, inference_s=0.9, it_per_s=11.0)
    compiled = stored_run("compiled-run", minute=1, compiler="compile", inference_s=0.5)
    app = make_app(eager, compiled)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(HistoryTable)
        await mark(pilot, table, "compiled-run")  # X, shown "A"
        await mark(pilot, table, "eager-run")     # Y, shown "B"
        await pilot.press("ctrl+t")
        assert isinstance(app.screen, CompareScreen)
        assert (app.screen.a.run_id, app.screen.b.run_id) == ("compiled-run", "eager-run")
        text = plain(app.screen.query(Static).last().content)
        assert "A compiled-run" in text and "B eager-run" in text
        assert "1.80x slower" in text  # B (eager) vs A (compiled)
        assert "task" in text.split("accelerator")[0]  # a task row, above the accelerator
        assert not app.screen.query("#compare_warning")  # same model, same task


async def test_compare_warns_when_models_or_tasks_differ():
    a = stored_run("sd15-run", minute=0)
    b = stored_run("sdxl-run", minute=1, model="tiny-sdxl")
    app = make_app(a, b)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(HistoryTable)
        await mark(pilot, table, "sd15-run")
        await mark(pilot, table, "sdxl-run")
        await pilot.press("ctrl+t")
        assert isinstance(app.screen, CompareScreen)
        warning = str(app.screen.query_one("#compare_warning", Static).content)
        assert "differ in model" in warning
        assert any(s == "warning" and "differ in model" in t for s, t in app.notes)
