"""Pilot tests of the problems a new user found in the dashboard (issue 17, "Found" 1-7).

Each test failed on the dashboard before its fix. Runs come from the scripted fake engine
or are stored by hand (tests/stored_runs.py), so every figure is known.
"""

from __future__ import annotations

import io

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


# ---------------------------------------------------------------- 2. task auto + image
async def test_form_shows_the_task_auto_resolves_to_and_t2i_drops_the_image(tmp_path):
    image = tmp_path / "in.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n")  # the form checks only that it is readable
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.query_one("#input_image", Input).value = str(image)  # left from an i2i run
        await wait_until(pilot, lambda: "i2i" in str(app.query_one("#task_note").content))
        note = app.query_one("#task_note", Static)
        assert note.display and "auto runs i2i" in str(note.content)
        assert "i2i" in str(app.query_one("#validation", Static).content)
        app.query_one("#task").value = "t2i"
        await wait_until(pilot, lambda: app.query_one("#input_image", Input).value == "")
        await wait_until(pilot, lambda: "t2i" in str(app.query_one("#validation").content))
        assert app.form().build_config().input_image is None
        assert not app.query_one("#task_note").display  # an explicit task needs no note


async def test_t2i_from_memory_does_not_inherit_a_stored_image(tmp_path):
    image = tmp_path / "in.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.form().load({"model": "tiny-sd15", "task": "t2i", "input_image": str(image)})
        await pilot.pause()
        cfg = app.form().build_config()
        assert (cfg.task, cfg.input_image) == ("t2i", None)


# ---------------------------------------------------------------- 3. errors in full
async def test_every_field_error_shows_at_once_and_abc_in_steps_is_named():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        steps = app.query_one("#steps", Input)
        steps.focus()
        steps.value = ""
        await pilot.press("a", "b", "c")
        assert steps.value == "abc"  # typed, not dropped
        app.query_one("#size", Input).value = "12x"
        await wait_until(pilot, lambda: "size" in (app.config_error or ""))
        error = app.config_error
        assert "steps must be an integer, got 'abc'" in error
        assert "size must be WIDTHxHEIGHT" in error
        assert steps.has_class("invalid") and app.query_one("#size").has_class("invalid")
        shown = str(app.query_one("#validation", Static).content)
        assert "'abc'" in shown and "WIDTHxHEIGHT" in shown


@pytest.mark.parametrize("model,tail", [
    ("owner/not-cached", "`hf download owner/not-cached`, or pass a local diffusers folder"),
    ("tiny-sd16", "tiny-sd3, tiny-sdxl"),
])
async def test_a_long_model_error_is_shown_whole_at_80_columns(model, tail):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one("#model", Input).value = model
        await wait_until(pilot, lambda: tail in (app.config_error or ""), timeout_s=15)
        box = app.query_one("#validation").parent
        # the whole text is laid out (wrapped, nothing cut), and what does not fit scrolls
        label = app.query_one("#validation", Static)

        def laid_out() -> str:
            lines = label.render_lines(label.region.reset_offset)
            return " ".join(" ".join("".join(seg.text for seg in line).split())
                            for line in lines)

        await wait_until(pilot, lambda: " ".join(tail.split()) in laid_out(), timeout_s=5)
        last = app.config_error.split()[-1]  # other tests may register more built-ins
        await pilot.pause()
        box.scroll_end(animate=False)
        await wait_until(pilot, lambda: last in screen_text(app), timeout_s=5)


# ---------------------------------------------------------------- 7. small things
async def test_help_scrolls_without_tab():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f1")
        await pilot.pause()
        help_box = app.screen.query_one("#help")
        assert help_box.max_scroll_y > 0
        await pilot.press("pagedown")
        await pilot.pause()
        assert help_box.scroll_y > 0


async def test_image_compare_on_an_eager_run_says_it_is_the_baseline(tmp_path):
    eager = stored_run("eager-run")
    eager.image_path = str(tmp_path / "eager.png")
    app = make_app(eager)
    async with app.run_test(size=SIZE) as pilot:
        app.query_one(HistoryTable).focus()
        await pilot.press("ctrl+k")
        assert any("baseline itself" in text for _, text in app.notes)
        assert not any("compiler none first" in text for _, text in app.notes)


async def test_log_tab_of_an_older_run_says_why_it_is_empty():
    app = make_app(stored_run("older-run"))
    async with app.run_test(size=SIZE) as pilot:
        app.query_one(HistoryTable).focus()
        await pilot.press("l")
        await pilot.pause()
        note = app.query_one("#log_note", Static)
        assert note.display and "older-run ran before this session" in str(note.content)
        assert "older-run ran before this session" in screen_text(app)


async def test_filter_matching_nothing_says_so():
    app = make_app(stored_run("only-run"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+f")
        await pilot.press(*"zzz")
        await pilot.pause()
        assert app.query_one(HistoryTable).row_count == 0
        assert "no runs match 'zzz'" in screen_text(app)
        await pilot.press("backspace", "backspace", "backspace")
        await pilot.pause()
        assert "no runs match" not in screen_text(app)


async def test_ready_line_gives_way_to_running_during_a_run():
    engine = FakeEngine(step_ms=10.0, hold_at_step=2)
    app = make_app(engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        assert "Ready: ctrl+r" in str(app.query_one("#validation", Static).content)
        await pilot.press("ctrl+r")
        await wait_until(pilot, engine.held.is_set)
        await pilot.pause()
        shown = str(app.query_one("#validation", Static).content)
        assert "Ready" not in shown and "ctrl+g cancels" in shown
        engine.release.set()
        await wait_until(pilot, lambda: not app.running)
        await pilot.pause()
        assert "Ready: ctrl+r" in str(app.query_one("#validation", Static).content)


async def test_focused_field_stands_out_in_256_colours():
    from rich.color import ColorSystem

    def palette(widget) -> tuple[int, ...]:
        color = widget.rich_style.bgcolor.downgrade(ColorSystem.EIGHT_BIT)
        return color.get_truecolor()

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        steps, prompt = app.query_one("#steps", Input), app.query_one("#model", Input)
        steps.focus()
        await pilot.pause()
        focused, other = palette(steps), palette(prompt)
        assert focused != other
        distance = sum((a - b) ** 2 for a, b in zip(focused, other)) ** 0.5
        assert distance > 60, (focused, other)  # a step of the 256-colour cube or more


# ---------------------------------------------------------------- 4. compile progress
def compiling_engine(held):
    """An engine stuck in a long compile: warmup step 1 took 163 s (the compile), then
    inductor builds kernels until the run is cancelled."""
    from diffbench.engine import events as ev
    from diffbench.engine.result import RunResult

    def run(cfg, on_event, cancel):
        for phase in ("load", "accelerate"):
            on_event(ev.PhaseStarted(phase, detail=cfg.model))
            on_event(ev.PhaseFinished(phase, 0.1))
        on_event(ev.PhaseStarted("warmup", detail="warmup 1/1"))
        on_event(ev.StepFinished("warmup", 1, 10, 163288.0, warmup_index=1))
        on_event(ev.CompileProgress(frames=3, graphs=2, kernels=295, elapsed_s=125.0,
                                    stage="kernel builds", cache_hits=1, cache_misses=2))
        held.set()
        cancel.wait(10)
        return RunResult(status="cancelled", config=cfg.to_dict(),
                         error="cancelled during warmup 1/1")

    return run


async def test_compile_line_shows_stage_cache_elapsed_and_last_compile_then_cancel():
    import threading

    held = threading.Event()
    before = stored_run("earlier-compile", compiler="compile", compile_s=130.0)
    app = make_app(before, engine=compiling_engine(held))
    async with app.run_test(size=(120, 36)) as pilot:
        app.query_one("#compiler").value = "compile"
        await pilot.pause()
        await pilot.press("ctrl+r")
        await wait_until(pilot, held.is_set)
        await wait_until(pilot, lambda: "kernels 295" in str(
            app.query_one("#compile_text", Static).content))
        line = str(app.query_one("#compile_text", Static).content)
        assert "kernel builds 2m05s" in line  # the stage, elapsed formatted
        assert "last time 2m10s" in line      # the last compile of the same settings
        assert "cache 1 hit / 2 miss" in line
        step = str(app.query_one("#step_text", Static).content)
        assert "last step 2m43s" in step and "ms/step" not in step and "163288" not in step
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: not app.running)
        await pilot.pause()
        step = str(app.query_one("#step_text", Static).content)
        assert step == "cancelled in warmup 1 at step 1/10"
        assert "cancelled after 2m05s (in kernel builds)" in str(
            app.query_one("#compile_text", Static).content)


# ---------------------------------------------------------------- 5. live labels, start
async def test_live_figures_say_what_they_are():
    engine = FakeEngine(step_ms=40.0, hold_at_step=4)
    app = make_app(engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: engine.held.is_set() and "measured 4/" in str(
            app.query_one("#step_text", Static).content), timeout_s=15)
        step = str(app.query_one("#step_text", Static).content)
        assert "last step 40 ms" in step and "p50 so far 40 ms" in step
        assert "25.00 it/s" in step and "ms/step" not in step
        engine.release.set()
        await wait_until(pilot, lambda: not app.running)


async def test_start_up_is_a_phase_with_a_clock():
    engine = FakeEngine(step_ms=10.0, block_at_start=True)
    app = make_app(engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_until(pilot, engine.blocked.is_set)
        await wait_until(pilot, lambda: "model load next" in str(
            app.query_one("#status", Static).content), timeout_s=5)
        assert "start " in str(app.query_one("#timeline", Static).content)
        engine.release.set()
        await wait_until(pilot, lambda: not app.running)
        timeline = str(app.query_one("#timeline", Static).content)
        assert timeline.startswith("load ")  # the engine's phases once they run
        app.action_show_tab("tab_log")  # a RichLog renders its lines once shown
        await pilot.pause()
        assert "start-up took" in screen_text(app)


async def test_start_up_line_names_the_child_process_work():
    from diffbench.tui.widgets.live_text import fmt_ms, starting_line

    line = starting_line("starting tiny-sd15...", 6.4, child=True)
    assert "start 6.40 s" in line and "import torch + diffusers" in line
    assert (fmt_ms(41.2), fmt_ms(163288.0)) == ("41 ms", "2m43s")
