"""The dashboard driving the real engine (tiny-sd15 on CPU, in a child process) to the end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import Input

from diffbench.engine.export import read_toml
from diffbench.engine.history import History
from diffbench.tui.app import DiffbenchApp
from diffbench.tui.widgets.history import HistoryTable

pytestmark = pytest.mark.asyncio


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


async def test_real_tiny_run_to_completion_persists_and_exports(tmp_path: Path):
    history = History()
    app = DiffbenchApp(history=history, export_dir=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        app.query_one("#profile").value = "tiny-sd15"
        await pilot.pause()
        for field, value in (("steps", "4"), ("size", "64x64"), ("warmups", "1")):
            app.query_one(f"#{field}", Input).value = value
        for _ in range(3):
            await pilot.pause()
        assert app.config_error is None
        await pilot.press("ctrl+r")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 240
        while app.running and loop.time() < deadline:
            await pilot.pause(0.1)
        assert not app.running, "the run did not end in time"

        run = app.query_one(HistoryTable).selected_run()
        assert run.status == "finished", run.error
        assert run.metrics.steps_run == 4
        assert (run.config["width"], run.config["height"]) == (64, 64)
        assert run.metrics.it_per_s and run.metrics.it_per_s > 0
        assert run.image_path and Path(run.image_path).is_file()
        # persisted: a new store on the same folder sees it (the next start of the dashboard)
        assert [r.run_id for r in History().list()] == [run.run_id]

        await pilot.press("ctrl+e")
        await pilot.press("enter")
        await pilot.pause()
        exported = read_toml(tmp_path / f"diffbench-{run.run_id}.toml")
        assert exported[0].run_id == run.run_id
        assert exported[0].metrics.steps_run == 4
