"""The dashboard at 80x24, 120x36 and 200x60 (issue 17, found problem 6, and the SVG
snapshots): the form, result panels and history filled from stored runs, every key figure
(it/s, step p50, peak GiB, vs eager) on screen at each size.

The SVG screenshots are checked by their text, not pixel by pixel, so a font or colour
change does not break them. ``DIFFBENCH_UPDATE_SNAPSHOTS=1`` also writes them to
docs/screenshots/ (review them in a browser before committing).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from textual.widgets import Input

from diffbench.tui.app import DiffbenchApp
from diffbench.tui.widgets.history import HistoryTable
from fakes import FakeEngine, MemoryHistory, wait_until
from stored_runs import screen_text, stored_run, svg_text

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
pytestmark = pytest.mark.asyncio

#: The selected run's key figures as the result panels print them (stored_runs figures:
#: compiled 0.5 s against an eager 0.9 s -> 1.80x).
KEY_FIGURES = {"it/s": "20.00", "step p50": "50.0 ms", "peak alloc": "2.75 GiB",
               "vs eager": "1.80x"}


@pytest.fixture(autouse=True)
def _fixed_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TZ", "UTC")  # the history shows local times
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def filled_app(engine=None) -> DiffbenchApp:
    """The dashboard over two stored runs: eager, then the same settings compiled (the
    newest, selected at start-up)."""
    history = MemoryHistory()
    history.add(stored_run("eager-0001", minute=0, inference_s=0.9, it_per_s=11.11,
                           p50_ms=90.0, peak_gib=2.5))
    history.add(stored_run("compile-0002", minute=1, compiler="compile", inference_s=0.5,
                           it_per_s=20.0, p50_ms=50.0, peak_gib=2.75, compile_s=41.0))
    return DiffbenchApp(engine=engine or FakeEngine(step_ms=40.0, fixed=True),
                        history=history)


async def settle(pilot) -> None:
    """No blinking cursor, no toasts, layout finished (two equal captures in a row)."""
    app = pilot.app
    for field in app.query(Input):
        field.cursor_blink = False
    app.clear_notifications()
    previous = None
    for _ in range(40):
        await pilot.pause()
        current = app.export_screenshot(title="diffbench")
        if current == previous:
            break
        previous = current


def columns_in_view(table: HistoryTable) -> set[str]:
    view, right, shown = table.scrollable_content_region.width, 0, set()
    for column in table.ordered_columns:
        right += column.get_render_width(table)
        if right <= view:
            shown.add(str(column.key.value))
    return shown


@pytest.mark.parametrize("size", [(80, 24), (120, 36), (200, 60)])
async def test_snapshot_shows_every_key_figure(size):
    app = filled_app()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        svg = app.export_screenshot(title="diffbench")
        text, shown = svg_text(svg), screen_text(app)
        for label, value in KEY_FIGURES.items():
            assert value in text, f"{label} {value} not in the {size} screenshot"
            # with its label on the same line, neither cut ("infer… 19.…")
            assert any(label in line and value in line for line in shown.splitlines()), \
                f"{label} {value} not shown whole at {size}"
        assert "…" not in "".join(line for line in shown.splitlines() if "│" in line
                                  and ("it/s" in line or "peak" in line))
        assert "compile-0002" in text and "eager-0001" in text  # the history is filled
        if os.environ.get("DIFFBENCH_UPDATE_SNAPSHOTS") == "1":
            DOCS.mkdir(parents=True, exist_ok=True)
            (DOCS / f"dashboard-{size[0]}x{size[1]}.svg").write_text(svg, encoding="utf-8")


async def test_narrow_form_leaves_the_result_panels_room_at_80_columns():
    app = filled_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.query_one("#left").size.width <= 30
        shown = screen_text(app)
        assert "inference 0.500 s" in shown and "infer…" not in shown
        assert not app.query_one("#warmup_panel").display  # the first to go


async def test_history_shows_key_figures_steps_and_task_at_120_columns():
    app = filled_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        shown = columns_in_view(app.query_one(HistoryTable))
        for key in ("id", "model", "accel", "it_per_s", "vs_eager", "step_ms_p50", "peak_gib",
                    "steps", "task"):
            assert key in shown, f"column {key} cut off at 120 columns"


async def test_live_panel_grows_on_a_tall_screen():
    heights = {}
    for size in ((100, 30), (200, 60)):
        engine = FakeEngine(step_ms=20.0, hold_at_step=3)
        app = filled_app(engine)
        async with app.run_test(size=size) as pilot:
            await pilot.press("ctrl+r")
            await wait_until(pilot, engine.held.is_set)
            await pilot.pause(0.1)
            heights[size] = (app.query_one("#live").size.height,
                             app.query_one("#spark").size.height)
            engine.release.set()
            await wait_until(pilot, lambda: not app.running)
    small, tall = heights[(100, 30)], heights[(200, 60)]
    assert tall[0] > small[0] and tall[1] > small[1], heights
