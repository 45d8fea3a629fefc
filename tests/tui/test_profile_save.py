"""A profile saved from the dashboard loads again: through the CLI's loader (``--profile``,
diffbench.engine.profiles) and the dashboard's "Load profile file", with every setting away
from its default. The form's own ``profile`` (the preset it started from) is not written: a
profile cannot name a profile, and the loader refuses unknown keys."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from diffbench.cli.main import main as cli
from diffbench.engine.config import RunConfig
from diffbench.engine.export import read_toml
from diffbench.engine.profiles import build_config, load_profile
from diffbench.engine.result import RunResult
from diffbench.tui.bridge import store
from diffbench.tui.app import DiffbenchApp
from diffbench.tui.screens.export import PathScreen
from fakes import FakeEngine, MemoryHistory, wait_until
from settings_samples import every_setting_changed

SIZE = (100, 30)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _without_profile(config: dict) -> dict:
    return {k: v for k, v in config.items() if k != "profile"}


def test_every_setting_saved_loads_again_with_the_cli_loader(tmp_path):
    cfg = RunConfig(**every_setting_changed(tmp_path))
    assert cfg.profile  # the sample started from a shipped profile
    path = store.save_profile(cfg, tmp_path / "saved.toml")
    assert "profile" not in load_profile(str(path)).settings
    again = build_config(str(path))  # what `diffbench run --profile saved.toml` builds
    assert again.to_dict() == {**cfg.to_dict(), "profile": "saved"}
    assert store.load_profile(str(path)) == load_profile(str(path)).settings


async def _answer_path(pilot, path) -> None:
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, PathScreen)
                     and bool(pilot.app.screen.query("#path")))
    pilot.app.screen.query_one("#path", Input).value = str(path)
    await pilot.press("enter")
    await wait_until(pilot, lambda: not isinstance(pilot.app.screen, PathScreen))


async def test_dashboard_save_then_load_gives_the_same_settings(tmp_path):
    """Every setting (ControlNet, control image, device cuda:1...): a stored run into the
    form, "Save settings as profile", the form back to defaults, "Load profile file"."""
    stored = RunConfig(**every_setting_changed(tmp_path))
    history = MemoryHistory()
    history.add(RunResult(run_id="stored000001", status="finished",
                          started_at="2026-01-01T00:00:00+00:00", config=stored.to_dict()))
    app = DiffbenchApp(engine=FakeEngine(), history=history, export_dir=tmp_path)
    path = tmp_path / "from-the-dashboard.toml"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app._select_run("stored000001")
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert app.form().build_config().to_dict() == stored.to_dict()
        app.action_save_profile()
        await _answer_path(pilot, path)
        await wait_until(pilot, path.exists)
        app.form().load({})
        await pilot.pause()
        assert app.form().build_config().to_dict() != _without_profile(stored.to_dict())
        app.action_open_profile()
        await _answer_path(pilot, path)
        await pilot.pause()
        loaded = app.form().build_config().to_dict()
    assert _without_profile(loaded) == _without_profile(stored.to_dict())
    assert build_config(str(path)).to_dict() == {**stored.to_dict(),
                                                 "profile": "from-the-dashboard"}


async def test_a_profile_saved_after_picking_a_preset_runs_from_the_cli(tmp_path, capsys):
    """The reported case: pick the tiny-sd15 preset in the form, save, then
    ``diffbench run --profile saved.toml`` (it used to stop on "unknown key 'profile'")."""
    app = DiffbenchApp(engine=FakeEngine(), history=MemoryHistory(), export_dir=tmp_path)
    path = tmp_path / "mine.toml"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        form = app.form()
        form.post_message(form.ProfileChosen("tiny-sd15"))
        await wait_until(pilot, lambda: form.values().get("profile") == "tiny-sd15")
        await pilot.pause()
        cfg = form.build_config()
        assert cfg.profile == "tiny-sd15" and cfg.seed == 333
        app.action_save_profile()
        await _answer_path(pilot, path)
        await wait_until(pilot, path.exists)
    export = tmp_path / "run.toml"
    code = cli(["run", "--profile", str(path), "--steps", "2", "--warmups", "0", "--height",
                "64", "--width", "64", "--in-process", "--no-history", "--export",
                str(export)])
    assert code == 0, capsys.readouterr().err
    [result] = read_toml(export)
    assert result.status == "finished" and result.config["profile"] == "mine"
    assert result.config["seed"] == 333
    assert result.config["scheduler"] == "EulerAncestralDiscreteScheduler"
