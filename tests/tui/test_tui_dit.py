"""The dashboard with the diffusion transformers: the model field suggests the new built-ins as
the user types, and the real engine (a child process) runs tiny-flux, tiny-flux-kontext's edit
and tiny-sd3's img2img to the end, recording what the call ran."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import Input

from diffbench.engine.history import History
from diffbench.tui.app import DiffbenchApp
from diffbench.tui.widgets.history import HistoryTable
from fakes import FakeEngine, MemoryHistory

pytestmark = pytest.mark.asyncio


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.parametrize("typed,accepted", [
    ("tiny-f", "tiny-flux"), ("tiny-flux-", "tiny-flux-kontext"), ("tiny-sd3", "tiny-sd3"),
    ("synthetic-flux-s", "synthetic-flux-schnell"), ("synthetic-sd35-m", "synthetic-sd35-medium"),
])
async def test_model_picker_suggests_the_transformer_builtins(typed, accepted):
    app = DiffbenchApp(engine=FakeEngine(step_ms=1.0, fixed=True), history=MemoryHistory())
    async with app.run_test(size=(100, 30)) as pilot:
        field = app.query_one("#model", Input)
        field.value = ""
        field.focus()
        await pilot.press(*typed)
        for _ in range(20):  # the suggester answers from a worker
            await pilot.pause(0.02)
            if field._suggestion:
                break
        await pilot.press("right")  # accept the suggestion
        assert field.value == accepted
        await pilot.pause()
        assert app.form().values()["model"] == accepted


async def _run_in_dashboard(app, pilot, values: dict) -> object:
    for field, value in values.items():
        app.query_one(f"#{field}", Input).value = value
    for _ in range(3):
        await pilot.pause()
    assert app.config_error is None, app.config_error
    await pilot.press("ctrl+r")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 240
    while app.running and loop.time() < deadline:
        await pilot.pause(0.1)
    assert not app.running, "the run did not end in time"
    return app.query_one(HistoryTable).selected_run()


@pytest.mark.parametrize("model,image,task,rows", [
    ("tiny-flux", False, "t2i", 1),
    ("tiny-flux-kontext", True, "pix2pix", 1),
    ("tiny-sd3", True, "i2i", 2),
])
async def test_real_transformer_run_from_the_dashboard(tmp_path: Path, input_png, model, image,
                                                       task, rows):
    app = DiffbenchApp(history=History(), export_dir=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        values = {"model": model, "steps": "4", "size": "64x64", "warmups": "0"}
        if image:
            values["input_image"] = input_png
        run = await _run_in_dashboard(app, pilot, values)
        assert run.status == "finished", run.error
        assert run.config["model"] == model and run.config["task"] == task
        assert (run.config["width"], run.config["height"]) == (64, 64)
        assert run.metrics.steps_run == 4 and run.metrics.it_per_s > 0
        assert run.metrics.denoiser_batch == rows
        assert run.metrics.guidance_used == (3.5 if "flux" in model else 4.5)
        assert run.config["max_sequence_length"] == (512 if "flux" in model else 256)
        assert run.image_path and Path(run.image_path).is_file()
        assert [r.run_id for r in History().list()] == [run.run_id]  # persisted


async def test_steps_follow_the_model_card_until_the_user_types_them():
    app = DiffbenchApp(engine=FakeEngine(step_ms=1.0, fixed=True), history=MemoryHistory())
    async with app.run_test(size=(100, 30)) as pilot:
        model, steps = app.query_one("#model", Input), app.query_one("#steps", Input)
        default = steps.value
        model.value = "synthetic-flux-schnell"
        await pilot.pause()
        assert steps.value == "4" and app.form().values()["steps"] == 4
        model.value = "synthetic-sd35-medium"
        await pilot.pause()
        assert steps.value == "40"
        model.value = "tiny-sd15"  # a UNet family: back to the catalog's default
        await pilot.pause()
        assert steps.value == default
        steps.value = "12"  # typed by the user: kept across model changes
        await pilot.pause()
        model.value = "synthetic-flux-schnell"
        await pilot.pause()
        assert steps.value == "12"
