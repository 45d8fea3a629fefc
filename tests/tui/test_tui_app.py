"""Pilot tests of the dashboard against the scripted fake engine (deterministic, no torch)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Button, Input, ProgressBar, RichLog, Static

from diffbench.engine.export import read_toml
from diffbench.tui.app import DiffbenchApp
from diffbench.tui.screens.compare import CompareScreen
from diffbench.tui.screens.export import ExportScreen
from fakes import MemoryHistory, FakeEngine, wait_until
from diffbench.tui.widgets.history import HistoryTable

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


def make_app(tmp_path: Path, engine: FakeEngine) -> RecordingApp:
    return RecordingApp(engine=engine, history=MemoryHistory(), export_dir=tmp_path)


async def set_field(pilot, field_id: str, value: str) -> None:
    pilot.app.query_one(f"#{field_id}", Input).value = value
    for _ in range(3):  # Input.Changed -> SettingsForm.Changed -> app validation
        await pilot.pause()


def plain(widget: Static) -> str:
    """What a Static shows, as plain text (Rich tables and Text alike)."""
    console = Console(width=max(widget.size.width, 60), file=io.StringIO(), record=True)
    console.print(widget.content)
    return console.export_text()


def log_text(app: DiffbenchApp) -> str:
    return "\n".join(line.text for line in app.query_one("#log", RichLog).lines)


def status_text(app: DiffbenchApp) -> str:
    return plain(app.query_one("#status", Static))


@pytest.mark.parametrize("cache,shown", [("first-block", "skipped 2/4"),
                                         ("pab", "skipped n/a"), ("none", None)])
async def test_live_step_row_shows_steps_computed_and_skipped(tmp_path, cache, shown):
    engine = FakeEngine(step_ms=25.0, hold_at_step=4)
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await set_field(pilot, "steps", "8")
        app.query_one("#more").collapsed = False  # mounts the advanced rows
        await pilot.pause()
        app.query_one("#cache").value = cache
        await pilot.pause()
        await pilot.press("ctrl+r")
        await wait_until(pilot, engine.held.is_set)
        await wait_until(pilot, lambda: app.query_one(ProgressBar).progress == 4)
        await wait_until(pilot, lambda: "measured 4/8" in plain(app.query_one("#step_text",
                                                                              Static)))
        text = plain(app.query_one("#step_text", Static))
        assert engine.calls[-1].cache == cache
        if shown:
            assert shown in text
        else:
            assert "skipped" not in text
        engine.release.set()
        await wait_until(pilot, lambda: not app.running)


async def test_run_shows_progress_results_and_exports(tmp_path):
    engine = FakeEngine(step_ms=25.0, hold_at_step=4)
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await set_field(pilot, "steps", "8")
        await pilot.press("ctrl+r")
        await wait_until(pilot, engine.held.is_set)
        await wait_until(pilot, lambda: app.query_one(ProgressBar).progress == 4)
        bar = app.query_one(ProgressBar)
        assert bar.total == 8
        assert "measured 4/8" in plain(app.query_one("#step_text", Static))
        assert app.query_one("#run", Button).disabled  # no second run while one is live
        engine.release.set()
        await wait_until(pilot, lambda: not app.running)

        table = app.query_one(HistoryTable)
        assert table.row_count == 1
        run = table.selected_run()
        assert run.status == "finished"
        assert run.metrics.steps_run == 8
        speed = plain(app.query_one("#speed_panel", Static))
        assert f"{run.metrics.it_per_s:.2f}" in speed
        assert "Finished tiny-sd15" in status_text(app)
        assert not app.query_one("#run", Button).disabled

        await pilot.press("ctrl+e")
        assert isinstance(app.screen, ExportScreen)
        await pilot.press("enter")
        await pilot.pause()
        target = tmp_path / f"diffbench-{run.run_id}.toml"
        assert target.is_file()
        assert [r.run_id for r in read_toml(target)] == [run.run_id]
        assert any(str(target) in text for _, text in app.notes)


async def test_cancel_names_what_is_cancelled_and_records_the_run(tmp_path):
    engine = FakeEngine(hold_at_step=3)
    engine.hold_through_cancel = True  # the step in flight finishes before the cancel lands
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await set_field(pilot, "steps", "10")
        await pilot.press("ctrl+r")
        await wait_until(pilot, engine.held.is_set)
        await pilot.pause()
        await pilot.press("ctrl+g")
        assert "Cancelling measured call of tiny-sd15" in status_text(app)
        assert app.running
        engine.release.set()
        await wait_until(pilot, lambda: not app.running)
        run = app.query_one(HistoryTable).selected_run()
        assert run.status == "cancelled"
        assert "step 3/10" in run.error
        assert "Cancelled" in status_text(app)
        assert any(sev == "warning" and "Cancelled" in text for sev, text in app.notes)
        assert not app.query_one("#run", Button).disabled


async def test_invalid_settings_disable_run_with_the_reason(tmp_path):
    engine = FakeEngine()
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await set_field(pilot, "steps", "0")
        reason = plain(app.query_one("#validation", Static))
        assert "steps must be between 1" in reason
        assert app.query_one("#run", Button).disabled
        assert app.query_one("#steps").has_class("invalid")
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert engine.calls == [] and not app.running

        await set_field(pilot, "steps", "4")
        await set_field(pilot, "size", "100x100")
        assert "multiple of 8" in plain(app.query_one("#validation", Static))
        assert app.query_one("#size").has_class("invalid")
        assert app.query_one("#run", Button).disabled

        await set_field(pilot, "size", "64x64")
        assert not app.query_one("#run", Button).disabled
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: not app.running and engine.calls)
        assert (engine.calls[0].width, engine.calls[0].height, engine.calls[0].steps) == \
            (64, 64, 4)


async def test_failed_run_is_reported_in_one_line_and_kept(tmp_path):
    engine = FakeEngine(fail_with="CUDA out of memory while compiling the UNet")
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await set_field(pilot, "steps", "3")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: not app.running and engine.calls)
        await pilot.pause()
        run = app.query_one(HistoryTable).selected_run()
        assert run.status == "failed"
        assert "Failed tiny-sd15: CUDA out of memory" in status_text(app)
        assert any(sev == "error" and "out of memory" in text for sev, text in app.notes)


async def test_compare_two_marked_runs_and_delete(tmp_path):
    engine = FakeEngine(step_ms=40.0)
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await set_field(pilot, "steps", "5")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: not app.running and len(engine.calls) == 1)
        engine.step_ms = 20.0
        app.query_one("#compiler").value = "compile"
        await pilot.pause()
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: not app.running and len(engine.calls) == 2)
        table = app.query_one(HistoryTable)
        assert table.row_count == 2
        # the compiled run is compared with its eager baseline in the speed panel
        assert "2.00x" in plain(app.query_one("#speed_panel", Static))

        table.focus()
        await pilot.press("space", "down", "space")
        assert len(table.marked_runs()) == 2
        await pilot.press("ctrl+t")
        assert isinstance(app.screen, CompareScreen)
        assert {app.screen.a.config["compiler"], app.screen.b.config["compiler"]} == \
            {"none", "compile"}
        await pilot.press("escape")
        await pilot.press("d")
        await pilot.press("y")
        await pilot.pause()
        assert table.row_count == 0
        assert app.history.list() == []


async def test_rerun_loads_a_past_config_into_the_form(tmp_path):
    engine = FakeEngine()
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await set_field(pilot, "steps", "6")
        await set_field(pilot, "seed", "42")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: not app.running and engine.calls)
        await set_field(pilot, "steps", "20")
        await set_field(pilot, "seed", "1")
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert app.query_one("#steps", Input).value == "6"
        assert app.query_one("#seed", Input).value == "42"


async def test_history_filter_narrows_rows(tmp_path):
    engine = FakeEngine()
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await set_field(pilot, "steps", "2")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: not app.running and len(engine.calls) == 1)
        await set_field(pilot, "model", "tiny-sdxl")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: not app.running and len(engine.calls) == 2)
        table = app.query_one(HistoryTable)
        assert table.row_count == 2
        await pilot.press("ctrl+f")
        await pilot.press(*"sdxl")
        await pilot.pause()
        assert table.row_count == 1
        assert table.selected_run().config["model"] == "tiny-sdxl"


async def test_image_preview_toggles_with_one_key(tmp_path):
    from diffbench.tui.screens.preview import PreviewScreen

    engine = FakeEngine(image_dir=str(tmp_path))
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await set_field(pilot, "steps", "2")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: not app.running and engine.calls)
        await pilot.press("ctrl+o")
        await pilot.pause(0.2)
        assert isinstance(app.screen, PreviewScreen)
        shown = plain(app.screen.query_one("#preview", Static))
        assert shown.count("▀") > 100  # half-block cells: two pixels each
        await pilot.press("ctrl+o")
        assert not isinstance(app.screen, PreviewScreen)


async def test_help_screen_opens_and_closes(tmp_path):
    from diffbench.tui.screens.help import HelpScreen

    app = make_app(tmp_path, FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_unavailable_compiler_and_unknown_model_disable_run(tmp_path):
    from textual.widgets import Select

    engine = FakeEngine()
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.device is not None)  # the probe has answered
        app.query_one("#more").collapsed = False  # mounts the advanced rows
        await wait_until(pilot, lambda: bool(app.query("#device")))
        app.query_one("#device", Select).value = "cpu"
        app.query_one("#compiler", Select).value = "cudagraph"
        await wait_until(pilot, lambda: app.config_error is not None)
        assert "compiler cudagraph cannot run here" in app.config_error
        assert app.query_one("#run", Button).disabled
        labels = [str(prompt) for prompt, _ in app.query_one("#compiler", Select)._options]
        assert any("cudagraph (n/a on cpu)" in label for label in labels)

        app.query_one("#compiler", Select).value = "none"
        await wait_until(pilot, lambda: app.config_error is None)
        await set_field(pilot, "model", "tiny-nope")
        await wait_until(pilot, lambda: app.config_error is not None)
        assert "unknown built-in model 'tiny-nope'" in app.config_error
        assert app.query_one("#model").has_class("invalid")
        await pilot.press("ctrl+r")
        assert engine.calls == []


async def test_palette_exports_all_runs_to_one_file(tmp_path):
    engine = FakeEngine()
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await set_field(pilot, "steps", "2")
        for compiler in ("none", "compile"):
            app.query_one("#compiler").value = compiler
            await pilot.pause()
            await pilot.press("ctrl+r")
            await wait_until(pilot, lambda: not app.running and app.last_result is not None
                             and app.last_result.config["compiler"] == compiler)
        await pilot.press("ctrl+p")
        await pilot.press(*"Export all runs")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ExportScreen))
        target = tmp_path / "both.toml"
        app.screen.query_one("#path", Input).value = str(target)
        await pilot.press("enter")
        await pilot.pause()
        runs = read_toml(target)
        assert sorted(r.config["compiler"] for r in runs) == ["compile", "none"]
        assert app.last_exported == target


async def test_quitting_during_a_run_cancels_it(tmp_path):
    engine = FakeEngine(hold_at_step=2)
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await set_field(pilot, "steps", "6")
        await pilot.press("ctrl+r")
        await wait_until(pilot, engine.held.is_set)
        cancel = app.cancel_event
        await pilot.press("ctrl+q")
    assert cancel.is_set()  # the worker thread was told to stop, so the process can exit


async def test_advanced_settings_round_trip_before_and_after_they_are_shown(tmp_path):
    app = make_app(tmp_path, FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        form = app.form()
        form.load({"model": "tiny-sdxl", "deepcache": True, "scheduler": "none",
                   "compiler_config": {"mode": "max-autotune"}, "guidance_scale": 5.0})
        await pilot.pause()
        cfg = form.build_config()  # the advanced rows are not mounted yet
        assert (cfg.deepcache, cfg.scheduler, cfg.guidance_scale) == (True, "none", 5.0)
        assert cfg.compiler_config == {"mode": "max-autotune"}
        app.query_one("#more").collapsed = False
        await wait_until(pilot, lambda: bool(app.query("#deepcache")))
        await wait_until(pilot, lambda: app.query_one("#deepcache").value is True)
        assert form.build_config().deepcache is True
        app.query_one("#compiler_config", Input).value = "{not json"
        await wait_until(pilot, lambda: app.config_error is not None)
        assert "compiler_config is not valid JSON" in app.config_error
        assert app.query_one("#compiler_config").has_class("invalid")


async def test_run_refuses_an_unknown_model_before_the_background_check_answers(tmp_path):
    """ctrl+r right after typing: the model check that waits for typing to stop has not
    answered, so Run asks itself (as the CLI's preflight does) and starts nothing."""
    engine = FakeEngine()
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        app._check_model_worker = lambda name: None  # a check that has not answered yet
        app.query_one("#model", Input).value = "nope-model"
        await pilot.pause()
        assert not app.model_problems.get("nope-model")
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert engine.calls == [] and not app.running
        await wait_until(pilot, lambda: "unknown model 'nope-model'" in
                         plain(app.query_one("#validation", Static)))
        assert app.query_one("#model").has_class("invalid")
