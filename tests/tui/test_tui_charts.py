"""Pilot tests of the Charts and GPU tabs and the live telemetry line: charts drawn from
stored runs, the live step chart (warmup and measured calls apart), it/s by accelerator with
the eager baseline marked, and telemetry from a fake NVML source (and a CPU-only run)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from textual.widgets import Static

from diffbench.engine.result import Metrics, RunResult
from diffbench.tui.app import DiffbenchApp
from diffbench.tui.chart_data import throughput_groups
from fakes import FakeEngine, MemoryHistory, wait_until
from telemetry_fakes import FakeGpuSource, TelemetryEngine

SIZE = (120, 40)
BRAILLE = {chr(c) for c in range(0x2801, 0x2900)}


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def text_of(renderable, width: int = 160) -> str:
    console = Console(width=width, file=io.StringIO(), record=True)
    console.print(renderable)
    return console.export_text()


def static_text(app, selector: str) -> str:
    return text_of(app.query_one(selector, Static).content)


def plot_text(app, selector: str) -> str:
    """What a PlotextPlot draws at its current size."""
    return app.query_one(selector).render().plain


def stored(run_id: str, compiler: str, it_per_s: float, steps=(50.0, 52.0, 51.0),
           model: str = "tiny-sd15", minute: int = 0) -> RunResult:
    return RunResult(run_id=run_id, started_at=f"2026-01-15T09:{minute:02d}:00+00:00",
                     config={"model": model, "compiler": compiler, "steps": len(steps) + 1,
                             "width": 64, "height": 64, "seed": 1, "device": "cpu"},
                     metrics=Metrics(it_per_s=it_per_s, inference_s=4.0 / it_per_s,
                                     step_ms=list(steps)))


def history_of(*runs: RunResult) -> MemoryHistory:
    history = MemoryHistory()
    for run in runs:
        history.add(run)
    return history


async def open_tab(pilot, tab: str) -> None:
    pilot.app.action_show_tab(tab)
    await wait_until(pilot, lambda: getattr(pilot.app.query_one(f"#{tab}"), "content", None)
                     is not None and pilot.app.query_one(f"#{tab}").content.is_mounted)
    await pilot.pause()
    await pilot.pause()


def test_throughput_groups_median_per_accelerator_eager_first():
    runs = [stored("e1", "none", 10.0), stored("e2", "none", 12.0), stored("c1", "compile", 20.0),
            stored("c2", "compile", 30.0), stored("c3", "compile", 25.0),
            RunResult(run_id="f", status="failed", config={"compiler": "cudagraph"})]
    assert throughput_groups(runs) == [("none", 11.0, 2, True), ("compile", 25.0, 3, False)]


def test_step_series_places_a_long_call_by_its_step_index():
    from types import SimpleNamespace

    from diffbench.tui.chart_data import StepSeries

    series = StepSeries()
    # a 300-step call at step 200: the message keeps the latest 120 step times only
    series.add(SimpleNamespace(call="measured", warmup_index=0, index=200, total=300,
                               recent_ms=tuple(float(i) for i in range(81, 201))))
    assert series.first["measured"] == 81 and series.calls["measured"][0] == 81.0
    series.add(SimpleNamespace(call="warmup", warmup_index=2, index=3, total=300,
                               recent_ms=(5.0, 6.0)))
    assert series.first["warmup 2"] == 2 and series.totals["warmup 2"] == 300


async def test_charts_tab_draws_a_stored_run_and_it_per_s_by_accelerator():
    history = history_of(stored("eager-1", "none", 10.0, minute=1),
                         stored("eager-2", "none", 12.0, minute=2),
                         stored("comp-1", "compile", 24.0, steps=(40.0, 41.0, 42.0), minute=3))
    app = DiffbenchApp(engine=FakeEngine(), history=history)
    async with app.run_test(size=SIZE) as pilot:
        await open_tab(pilot, "tab_charts")
        # the newest run is selected: its measured call, steps 2..4 (step 1 has the prompt)
        caption = static_text(app, "#step_chart_caption")
        assert "run comp-1" in caption and "measured 4/4 steps, p50 41.0 ms" in caption
        assert "warmup" not in caption  # warmup steps are not stored in the history
        step_plot = plot_text(app, "#step_plot")
        assert "denoising step" in step_plot and set(step_plot) & BRAILLE
        tp_caption = static_text(app, "#tp_chart_caption")
        assert "median of 3 runs" in tp_caption and "eager baseline 11.00 it/s (*)" in tp_caption
        tp_plot = plot_text(app, "#tp_plot")
        assert "none * (n=2)" in tp_plot and "compile (n=1)" in tp_plot
        # another row: the step chart follows the selection
        app.table().move_cursor(row=app.table().get_row_index("eager-1"))
        await wait_until(pilot, lambda: "run eager-1" in static_text(app, "#step_chart_caption"))
        # marking two runs narrows the it/s chart to them
        app.table().marked = ["comp-1", "eager-2"]
        app.table().rebuild()
        app._redraw_charts()
        await pilot.pause()
        assert "median of 2 marked runs" in static_text(app, "#tp_chart_caption")


async def test_step_chart_is_live_and_keeps_warmup_and_measured_apart():
    engine = FakeEngine(step_ms=20.0, hold_at_step=3, step_ms_fn=lambda i: 10.0 + i)
    app = DiffbenchApp(engine=engine, history=MemoryHistory())
    async with app.run_test(size=SIZE) as pilot:
        app.query_one("#steps").value = "6"
        await pilot.pause()
        await open_tab(pilot, "tab_charts")
        await pilot.press("ctrl+r")
        await wait_until(pilot, engine.held.is_set)
        # during the measured call: the warmup call done, the measured one at step 3
        await wait_until(pilot, lambda: "measured 3/6" in static_text(app, "#step_chart_caption"))
        caption = static_text(app, "#step_chart_caption")
        assert "warmup 1 6/6 steps, p50 14.0 ms" in caption  # steps 2..6: 12..16 ms
        assert "running" in caption
        engine.release.set()
        await wait_until(pilot, lambda: not app.running)
        await pilot.pause(0.3)
        # the finished run, selected: its warmup call is still shown (watched here)
        caption = static_text(app, "#step_chart_caption")
        assert "warmup 1 6/6" in caption and "measured 6/6 steps, p50 14.0 ms" in caption
        assert f"run {app.last_result.run_id}" in caption


async def test_telemetry_line_and_gpu_tab_from_a_fake_nvml_source():
    source = FakeGpuSource(util=(35.0, 60.0, 93.0), used_gib=(9.5, 12.0, 12.5))
    engine = TelemetryEngine(source, step_ms=20.0, hold_at_step=4)
    app = DiffbenchApp(engine=engine, history=MemoryHistory())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_until(pilot, engine.held.is_set)
        await wait_until(pilot, lambda: app.query_one("#gpu_text").display)
        line = static_text(app, "#gpu_text")
        assert line.startswith("GPU 93% · 12.5/80 GiB · 500 W · 1980 MHz · 61°C")
        assert "host load" in line
        await open_tab(pilot, "tab_gpu")
        panel_line = static_text(app, "#tele_line")
        assert panel_line.startswith("GPU 93%")
        assert "samples" in static_text(app, "#tele_note")
        assert "GPU util" in static_text(app, "#tele_key")
        assert app.query_one("#tele_mem").display
        mem_plot = plot_text(app, "#tele_mem")
        assert "memory used GiB (of 80)" in mem_plot and set(mem_plot) & BRAILLE
        assert set(plot_text(app, "#tele_util")) & BRAILLE
        n = len(app._telemetry.samples)
        assert n >= 10  # one per step so far: warmup + 4 measured
        engine.release.set()
        await wait_until(pilot, lambda: not app.running)


async def test_cpu_only_run_says_so_in_one_line():
    engine = TelemetryEngine(None, step_ms=20.0)
    app = DiffbenchApp(engine=engine, history=MemoryHistory())
    async with app.run_test(size=SIZE) as pilot:
        await open_tab(pilot, "tab_gpu")
        assert "none yet" in static_text(app, "#tele_note")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: not app.running)
        await wait_until(pilot, lambda: "CPU-only" in static_text(app, "#tele_line"))
        line = static_text(app, "#tele_line")
        assert line.startswith("CPU-only run: no GPU telemetry  host load")
        assert len(line.strip().splitlines()) == 1
        assert not app.query_one("#tele_mem").display  # no GPU memory chart
        assert "GPU util" not in static_text(app, "#tele_key")
        assert static_text(app, "#gpu_text").startswith("CPU-only run: no GPU telemetry")


async def test_host_bound_run_is_flagged_live():
    # GPU mostly idle while the run's process keeps a core busy
    engine = TelemetryEngine(FakeGpuSource(util=(20.0,)), step_ms=20.0, hold_at_step=2)
    engine.sampler._host = lambda: {"cpus": 16, "load1": 1.0, "cpu_pct": 7.0,
                                    "proc_cpu_pct": 100.0}
    app = DiffbenchApp(engine=engine, history=MemoryHistory())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_until(pilot, engine.held.is_set)
        await wait_until(pilot, lambda: "host-bound?" in static_text(app, "#gpu_text"))
        engine.release.set()
        await wait_until(pilot, lambda: not app.running)


def test_first_screen_imports_no_plotting_or_image_library(tmp_path):
    # the Charts and GPU tabs import plotext when first shown, never before the first screen
    import subprocess
    import sys

    code = ("import sys\n"
            "from diffbench.tui.app import DiffbenchApp\n"
            "class Probe(DiffbenchApp):\n"
            "    def on_mount(self):\n"
            "        self.call_after_refresh(self._done)\n"
            "    def _done(self):\n"
            "        heavy = ('plotext', 'textual_plotext', 'textual_image', 'torch')\n"
            "        print('HEAVY', sorted(m for m in heavy if m in sys.modules), flush=True)\n"
            "        self.exit()\n"
            "Probe().run(headless=True, size=(100, 30))\n")
    env = {**__import__("os").environ, "DIFFBENCH_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=env)
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr[-2000:]
