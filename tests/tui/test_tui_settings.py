"""The dashboard's settings form, generated from the catalog: a widget for every setting,
stored runs round-trip through it, and a ConfigError highlights the setting it names."""

from __future__ import annotations

import pytest
from textual.widgets import Input, Static

from diffbench.engine import catalog
from diffbench.engine.config import RunConfig
from diffbench.engine.result import RunResult
from diffbench.tui.app import DiffbenchApp
from fakes import MemoryHistory
from fakes import FakeEngine, wait_until
from settings_samples import every_setting_changed

SIZE = (100, 30)
pytestmark = pytest.mark.asyncio


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


async def _expand_more(pilot) -> None:
    pilot.app.query_one("#more").collapsed = False  # mounts the advanced rows
    await wait_until(pilot, lambda: bool(pilot.app.query("#compile_cache_dir")))


@pytest.mark.parametrize("shown", [False, True], ids=["more-hidden", "more-shown"])
async def test_loading_any_stored_run_and_running_it_gives_the_same_config(tmp_path, shown):
    """Every setting away from its default (ControlNet, control image, custom pipeline,
    cache layer/block ids, device cuda:1 included): ctrl+l on the stored run, then ctrl+r."""
    stored = RunConfig(**every_setting_changed(tmp_path))
    history = MemoryHistory()
    run = RunResult(run_id="stored000001", status="finished",
                    started_at="2026-01-01T00:00:00+00:00", config=stored.to_dict())
    history.add(run)
    engine = FakeEngine()
    app = DiffbenchApp(engine=engine, history=history, export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app._environment_problem = lambda cfg: None  # oneflow/cuda:1 need no GPU here
        await pilot.pause()
        if shown:
            await _expand_more(pilot)
        app._select_run(run.run_id)
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert app.form().build_config().to_dict() == stored.to_dict()
        if not shown:  # mounting the rows after the load keeps every value
            await _expand_more(pilot)
            assert app.form().build_config().to_dict() == stored.to_dict()
        await wait_until(pilot, lambda: app.config_error is None)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: bool(engine.calls) and not app.running)
    assert engine.calls[0].to_dict() == stored.to_dict()


async def test_every_setting_has_its_declared_widget(tmp_path):
    app = DiffbenchApp(engine=FakeEngine(), history=MemoryHistory(), export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        for setting in catalog.SETTINGS:  # the first screen's are there at once
            found = bool(app.query(f"#{setting.widget_id}"))
            assert found == (setting.widget.group == "main"), setting.name
        await _expand_more(pilot)
        for setting in catalog.SETTINGS:
            assert app.query(f"#{setting.widget_id}"), setting.name


def _bad_text(setting: catalog.Setting):
    """Text the setting's widget holds that validation refuses (None if none is simple)."""
    kind = setting.widget.kind
    if kind == "integer":
        return str(setting.low - 1)
    if kind == "number":
        return "-1" if setting.check is not None else "abc"
    if kind == "json":
        return "{not json"
    if setting.name in ("input_image", "control_image"):
        return "no-such-image.png"
    if kind == "size":
        return "100x100"
    return None


async def test_a_config_error_highlights_the_field_it_names(tmp_path):
    engine = FakeEngine()
    app = DiffbenchApp(engine=engine, history=MemoryHistory(), export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await _expand_more(pilot)
        checked = set()
        for setting in catalog.SETTINGS:
            bad = _bad_text(setting)
            if bad is None or setting.widget_id in checked:
                continue
            checked.add(setting.widget_id)
            field = app.query_one(f"#{setting.widget_id}", Input)
            good = field.value
            field.value = bad
            await wait_until(pilot, lambda: app.config_error is not None)
            assert field.has_class("invalid"), (setting.name, app.config_error)
            assert [w.id for w in app.query(".invalid")] == [setting.widget_id]
            assert "Cannot run" in str(app.query_one("#validation", Static).content)
            field.value = good
            await wait_until(pilot, lambda: app.config_error is None)
            assert not field.has_class("invalid")
        assert {"steps", "seed", "cache_layer_id", "cache_block_id", "strength", "timeout_s",
                "compiler_config", "extra_call_kwargs", "control_image", "size"} <= checked
        # a rule across settings: custom_pipeline needs trust_remote_code
        app.query_one("#custom_pipeline", Input).value = "my_pipeline"
        await wait_until(pilot, lambda: app.config_error is not None)
        assert "--trust-remote-code" in app.config_error
        assert [w.id for w in app.query(".invalid")] == ["custom_pipeline"]
        app.query_one("#trust_remote_code").value = True
        await wait_until(pilot, lambda: app.config_error is None)
        assert not app.query(".invalid")
