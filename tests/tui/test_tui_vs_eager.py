"""The history's "vs eager" column: each run's speed-up over its eager baseline by the engine's
one rule, the pairing visible (the speed panel names the baseline run), sortable."""

from __future__ import annotations

import pytest

from diffbench.engine.result import Metrics, RunResult
from diffbench.tui import baselines
from diffbench.tui.app import DiffbenchApp
from fakes import FakeEngine, MemoryHistory, wait_until


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def run(run_id: str, compiler: str, inference_s: float, seed: int = 1, minute: int = 0,
        model: str = "tiny-sd15", baseline_run_id=None, status="finished") -> RunResult:
    return RunResult(run_id=run_id, status=status,
                     started_at=f"2026-01-15T09:{minute:02d}:00+00:00",
                     config={"model": model, "compiler": compiler, "seed": seed, "steps": 4,
                             "width": 64, "height": 64, "device": "cpu"},
                     metrics=Metrics(inference_s=inference_s, it_per_s=3 / inference_s,
                                     baseline_run_id=baseline_run_id))


RUNS = [  # newest first, as the history lists them
    run("comp-seed2", "compile", 1.0, seed=2, minute=6),    # no eager run with seed 2
    run("comp-old-base", "compile", 1.0, minute=5, baseline_run_id="eager-old"),
    run("comp-1", "compile", 1.0, minute=4),
    run("eager-new", "none", 2.0, minute=3),
    run("other-model", "compile", 0.5, model="tiny-sdxl", minute=2),
    run("eager-old", "none", 4.0, minute=1),
]


def test_pairings_follow_the_engine_baseline_rule():
    pairs = baselines.pairings(RUNS)
    assert pairs["comp-1"] == baselines.Pairing(2.0, "eager-new", False)  # the newest eager
    assert pairs["comp-old-base"] == baselines.Pairing(4.0, "eager-old", False)  # as recorded
    assert pairs["comp-seed2"] == baselines.Pairing(None, None, False)  # settings differ
    assert pairs["other-model"] == baselines.Pairing(None, None, False)  # other model
    assert pairs["eager-new"].eager and pairs["eager-old"].eager
    assert [baselines.cell(pairs[r]).plain for r in ("comp-1", "eager-new", "comp-seed2")] == \
        ["2.00x", "eager", "-"]


async def test_history_shows_vs_eager_and_the_baseline_it_pairs_with():
    history = MemoryHistory()
    for r in reversed(RUNS):
        history.add(r)
    app = DiffbenchApp(engine=FakeEngine(), history=history)
    async with app.run_test(size=(140, 36)) as pilot:
        table = app.table()
        await wait_until(pilot, lambda: table.row_count == len(RUNS))
        column = [str(table.get_cell(r.run_id, "vs_eager")) for r in RUNS]
        assert column == ["-", "4.00x", "2.00x", "eager", "-", "eager"]
        # the selected run's speed panel names the eager run it was compared with
        table.move_cursor(row=table.get_row_index("comp-1"))
        await pilot.pause()
        assert app.query_one("#speed_panel").border_subtitle == "vs eager-new"
        table.move_cursor(row=table.get_row_index("comp-seed2"))
        await pilot.pause()
        assert app.query_one("#speed_panel").border_subtitle == ""
        # sortable: fastest vs eager first
        table.sort_key, table.sort_reverse = "vs_eager", True
        table.rebuild()
        assert [r.run_id for r in table.visible_runs()][:2] == ["comp-old-base", "comp-1"]
