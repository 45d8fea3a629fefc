"""Pilot tests of the dashboard's analysis views (sweep matrix, throughput fit, image vs
baseline) against scripted engines: deterministic, no torch, a few seconds in all.

The sweep is the engine's own (diffbench.engine.sweep.run.run_sweep through
diffbench.tui.bridge.analysis); only the run function is a fake whose cells finish when the
test releases them.
"""

from __future__ import annotations

import io
import math
import threading
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Input, Static

from diffbench.engine.result import RunResult
from diffbench.tui.app import DiffbenchApp
from diffbench.tui.screens.image_compare import ImageCompareScreen
from diffbench.tui.screens.sweep import SweepScreen
from diffbench.tui.screens.throughput import ThroughputScreen
from diffbench.tui.sweep_matrix import SweepMatrix, parse_cell_key, ratio_style
from fakes import MemoryHistory, FakeEngine, wait_until
from diffbench.tui.widgets.image import HalfBlockImage

SIZE = (120, 40)
#: FakeEngine it/s = 1000 / step_ms: eager 50 it/s, compile 100 it/s -> ratio 2.0.
STEP_MS = {"none": 20.0, "compile": 10.0}


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


class GatedEngine:
    """A run function whose cells wait for ``release()``; compile + 8 steps fails."""

    def __init__(self) -> None:
        self.gate = threading.Semaphore(0)
        self.started: list = []

    def release(self, n: int = 1) -> None:
        for _ in range(n):
            self.gate.release()

    def __call__(self, cfg, on_event, cancel=None):
        self.started.append(cfg)
        if not self.gate.acquire(timeout=10):
            raise RuntimeError("test never released this cell")
        fail = "out of memory" if (cfg.compiler, cfg.steps) == ("compile", 8) else None
        return FakeEngine(step_ms=STEP_MS[cfg.compiler], fail_with=fail)(cfg, on_event, cancel)


async def open_sweep(pilot) -> SweepScreen:
    await pilot.press("ctrl+n")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, SweepScreen))
    screen = pilot.app.screen
    for i, (name, values) in enumerate([("compiler", "none,compile"), ("steps", "4,8"),
                                        ("", "")]):
        screen.query_one(f"#grid_field_{i}", Input).value = name
        screen.query_one(f"#grid_values_{i}", Input).value = values
    await pilot.pause()
    return screen


KEYS = ["compiler=none,steps=4", "compiler=none,steps=8", "compiler=compile,steps=4",
        "compiler=compile,steps=8"]


def shown(screen: SweepScreen) -> dict[str, str]:
    return {key: screen.cell_display(key)[0] for key in KEYS}


# ------------------------------------------------------------------ pure model
def test_ratio_colours_use_named_colours_from_fast_to_slow():
    assert ratio_style(2.0) == "bold green"
    assert ratio_style(1.2) == "green"
    assert ratio_style(1.0) == ""
    assert ratio_style(0.9) == "yellow"
    assert ratio_style(0.5) == "bold red"
    assert ratio_style(None) == ""


def test_cell_keys_with_json_values_parse_back():
    key = 'compiler_config={"mode":"max-autotune","fullgraph":true},size=64x64'
    assert parse_cell_key(key) == {"compiler_config": '{"mode":"max-autotune","fullgraph":true}',
                                   "size": "64x64"}


# ------------------------------------------------------------------ sweep view
@pytest.mark.asyncio
async def test_sweep_matrix_fills_cell_by_cell_with_ratios_and_failures(tmp_path):
    engine = GatedEngine()
    history = MemoryHistory()
    app = DiffbenchApp(engine=engine, history=history, export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_sweep(pilot)
        await pilot.press("ctrl+y")  # one analysis view at a time
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("ctrl+r")  # the view's own binding, not the app's single run
        await wait_until(pilot, lambda: len(engine.started) == 1)
        assert not app.running
        await wait_until(pilot, lambda: shown(screen)[KEYS[0]].startswith("running"))
        assert [shown(screen)[k] for k in KEYS[1:]] == ["·", "·", "·"]
        assert screen.matrix.rows == ["compiler"] and screen.matrix.cols == ["steps"]

        engine.release()  # eager, 4 steps: the baseline of its column
        await wait_until(pilot, lambda: screen.matrix.cells[KEYS[0]].status == "finished")
        assert shown(screen)[KEYS[0]] == "50.00 it/s base"
        assert shown(screen)[KEYS[2]] == "·"  # nothing beyond the next cell has moved

        engine.release()
        await wait_until(pilot, lambda: screen.matrix.cells[KEYS[1]].status == "finished")
        engine.release()  # compile, 4 steps: twice the eager it/s
        await wait_until(pilot, lambda: screen.matrix.cells[KEYS[2]].status == "finished")
        assert screen.cell_display(KEYS[2]) == ("100.00 it/s x2.00", "bold green")
        assert shown(screen)[KEYS[3]].startswith("running")

        engine.release()  # compile, 8 steps: fails; the sweep goes on and ends
        await wait_until(pilot, lambda: not screen.running)
        text, style = screen.cell_display(KEYS[3])
        assert text == "FAILED" and "red" in style
        status = str(screen.query_one("#sweep_status", Static).render())
        assert "3/4 cells finished (1 failed)" in status
        stored = history.list()
        assert len(stored) == 4
        assert {r.config["sweep_id"] for r in stored} == {screen.matrix.sweep_id}

        # the same sweep, rebuilt from the history, shows the same matrix
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, SweepScreen))
        app._select_run(stored[0].run_id)
        app.action_open_sweep()
        await wait_until(pilot, lambda: isinstance(app.screen, SweepScreen))
        past = app.screen
        await pilot.pause()
        assert past.base is None
        assert shown(past)[KEYS[2]] == "100.00 it/s x2.00"
        assert shown(past)[KEYS[3]] == "FAILED"


@pytest.mark.asyncio
async def test_bad_grid_then_stop_after_current_cell_and_resume(tmp_path):
    engine = GatedEngine()
    app = DiffbenchApp(engine=engine, history=MemoryHistory(), export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_sweep(pilot)
        screen.query_one("#grid_values_1", Input).value = "4,lots"
        await pilot.press("ctrl+r")
        await pilot.pause()
        status = str(screen.query_one("#sweep_status", Static).render())
        assert status.startswith("Cannot start:") and "lots" in status and "\n" not in status
        assert not screen.running and engine.started == []

        screen.query_one("#grid_values_1", Input).value = "4,8"
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: len(engine.started) == 1)
        await pilot.press("ctrl+g")  # stop after the current cell
        engine.release()
        await wait_until(pilot, lambda: not screen.running)
        assert len(engine.started) == 1
        assert screen.matrix.counts() == {"finished": 1, "pending": 3}
        assert "Stopped" in str(screen.query_one("#sweep_status", Static).render())

        engine.release(3)
        await pilot.press("ctrl+r")  # same grid, same sweep id: the finished cell is kept
        await wait_until(pilot, lambda: not screen.running and len(engine.started) == 4)
        assert [c.steps for c in engine.started[1:]] == [8, 4, 8]
        assert shown(screen)[KEYS[0]] == "50.00 it/s base"
        assert screen.matrix.cells[KEYS[0]].resumed


# ------------------------------------------------------------------ throughput view
@pytest.mark.asyncio
async def test_throughput_view_shows_the_fit_and_the_plot(tmp_path):
    app = DiffbenchApp(engine=FakeEngine(), history=MemoryHistory(), export_dir=tmp_path)
    app.throughput_timer = lambda steps: 0.5 + 0.025 * steps  # base 0.5 s, 25 ms per step
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+y")
        await wait_until(pilot, lambda: isinstance(app.screen, ThroughputScreen))
        screen = app.screen
        screen.query_one("#tp_steps", Input).value = "7"
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert "Cannot measure" in str(screen.query_one("#tp_status", Static).render())

        screen.query_one("#tp_steps", Input).value = "2:10:2"
        screen.query_one("#tp_repeats", Input).value = "1"
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: screen.result is not None)
        await pilot.pause()
        figures = str(screen.query_one("#tp_figures", Static).render())
        assert "0.500 s" in figures  # base cost
        assert "25.0 ms" in figures  # per-step cost
        assert "40.00" in figures  # it/s without base = 1 / 25 ms
        assert "1.0000" in figures  # R^2 of points on a line
        plot = str(screen.query_one("#tp_plot", Static).render())
        assert plot.count("●") == 5 and "denoising steps" in plot
        assert not app.running


# ------------------------------------------------------------------ image comparison
def _image(path: Path, offset: int) -> str:
    from PIL import Image

    image = Image.new("RGB", (32, 32))
    image.putdata([(4 * x + offset, 4 * y + offset, 100 + offset)
                   for y in range(32) for x in range(32)])
    image.save(path)
    return str(path)


def _run(compiler: str, image: str, started: str) -> RunResult:
    config = {"model": "tiny-sd15", "task": "t2i", "steps": 4, "seed": 0, "height": 32,
              "width": 32, "compiler": compiler, "device": "cpu", "dtype": "float32"}
    result = RunResult(status="finished", config=config, image_path=image)
    result.started_at = started
    result.metrics.it_per_s = 10.0
    return result


@pytest.mark.asyncio
async def test_image_comparison_shows_both_images_and_psnr_ssim(tmp_path):
    history = MemoryHistory()
    base = _run("none", _image(tmp_path / "base.png", 0), "2026-01-01T00:00:00")
    run = _run("compile", _image(tmp_path / "run.png", 4), "2026-01-01T00:01:00")
    history.add(run)
    notes = []
    app = DiffbenchApp(engine=FakeEngine(), history=history, export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        notify = app.notify
        app.notify = lambda message, **kw: notes.append(str(message))
        app._select_run(run.run_id)
        await pilot.press("ctrl+k")  # no baseline yet: say what to run
        await pilot.pause()
        assert not isinstance(app.screen, ImageCompareScreen)
        assert any("compiler none" in n for n in notes)
        app.notify = notify

        history.add(base)
        app.refresh_history()
        app._select_run(run.run_id)
        await pilot.press("ctrl+k")
        await wait_until(pilot, lambda: isinstance(app.screen, ImageCompareScreen))
        screen = app.screen
        await wait_until(pilot, lambda: screen.psnr_db is not None)
        # every pixel 4 levels brighter: MSE 16, PSNR = 10 log10(255^2 / 16)
        expected = 10 * math.log10(255 ** 2 / 16)
        assert screen.psnr_db == pytest.approx(expected, abs=1e-6)
        assert 0.9 < screen.ssim < 1.0
        scores = str(screen.query_one("#ic_scores", Static).render())
        assert f"PSNR {expected:.2f} dB" in scores and "(computed)" in scores
        await pilot.pause()
        for side, source in (("base", base), ("run", run)):
            preview = screen.query_one(f"#ic_{side}", Static).content
            assert isinstance(preview, HalfBlockImage) and preview.path == source.image_path
            console = Console(width=40, file=io.StringIO(), color_system="256")
            console.print(preview)
            assert console.file.getvalue().count("▀") >= 32 * 8  # 32 px wide, 16+ rows
        # stored with the run: opening again reads the stored figures
        assert history.get(run.run_id).metrics.baseline_run_id == base.run_id
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, ImageCompareScreen))
        app._select_run(run.run_id)
        await pilot.press("ctrl+k")
        await wait_until(pilot, lambda: isinstance(app.screen, ImageCompareScreen))
        assert app.screen.source == "stored"


def test_matrix_from_stored_runs_keeps_newest_finished_run_per_cell():
    def cell(key, status, ips, started):
        r = RunResult(status=status, config={"sweep_id": "s1", "sweep_cell": key})
        r.metrics.it_per_s, r.started_at = ips, started
        return r

    runs = [cell("compiler=none,size=64x64", "finished", 10.0, "1"),
            cell("compiler=compile,size=64x64", "cancelled", None, "2"),
            cell("compiler=compile,size=64x64", "finished", 15.0, "3")]
    matrix = SweepMatrix.from_runs(runs)
    assert matrix.baseline == {"compiler": "none"}
    assert matrix.ratio("compiler=compile,size=64x64") == pytest.approx(1.5)
    assert matrix.cell_text("compiler=compile,size=64x64") == ("15.00 it/s x1.50", "bold green")
