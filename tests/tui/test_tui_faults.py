"""A run's child process dying mid-run, driven from the dashboard (issue 3's done-when).

The dashboard runs each run through the real child-process bridge (diffbench.engine.client); the child
swaps the pipeline for the fast fake runner of tests/test_worker_fakes.py and is made to die
on purpose by diffbench.engine.worker's test-only fault hook: SIGKILL (as the OOM killer does),
SIGSEGV, or a CUDA out-of-memory error, at the measured call's second step. Each test checks
that a key press is handled while the run is in flight and after the child died, that the
run is in the history as failed with its one-line reason, and that the next run finishes.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from diffbench.engine.history import History
from diffbench.tui.app import DiffbenchApp
from diffbench.tui.screens.help import HelpScreen
from diffbench.tui.widgets.history import HistoryTable

from repo_paths import ROOT, TESTS
SIZE = (100, 30)
FAKE_STEPS = 4
pytestmark = pytest.mark.asyncio


@pytest.fixture(autouse=True)
def _child_uses_the_fake_runner(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("DIFFBENCH_IN_PROCESS", raising=False)
    monkeypatch.delenv("DIFFBENCH_TEST_FAULT", raising=False)
    # read by the child process: the fake runner and its pace (4 steps per call, 0.25 s each)
    monkeypatch.setenv("DIFFBENCH_WORKER_RUN", "test_worker_fakes:run")
    monkeypatch.setenv("FAKE_STEPS", str(FAKE_STEPS))
    monkeypatch.setenv("FAKE_STEP_S", "0.25")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT / "src"), str(TESTS), os.environ.get("PYTHONPATH", "")]))


async def wait_until(pilot, predicate, timeout_s: float = 120.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"not reached in {timeout_s} s: {what}")
        await pilot.pause(0.05)


async def key_is_handled(pilot) -> None:
    """F1 opens the help screen and escape closes it: the event loop is serving keys."""
    app = pilot.app
    await pilot.press("f1")
    await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), 5, "help opened")
    await pilot.press("escape")
    await wait_until(pilot, lambda: not isinstance(app.screen, HelpScreen), 5, "help closed")


@pytest.mark.parametrize("fault, reason", [
    ("kill", "child killed by SIGKILL (out of memory?"),
    ("segv", "child crashed with SIGSEGV (segmentation fault)"),
    ("oom", "OutOfMemoryError: CUDA out of memory"),
])
async def test_child_dies_mid_run_dashboard_survives_and_next_run_works(
        tmp_path, monkeypatch, fault, reason):
    # the 2nd step of the measured call: after the warmup call's FAKE_STEPS steps
    monkeypatch.setenv("DIFFBENCH_TEST_FAULT", f"{fault}@{FAKE_STEPS + 2}")
    history = History(tmp_path / "history.sqlite")
    app = DiffbenchApp(history=history, export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.config_error is None, app.config_error
        await pilot.press("ctrl+r")
        assert app.running
        # the child is up and streaming (its warmup call lasts 4 x 0.25 s before the fault
        # fires): a key press is still served mid-run
        await wait_until(pilot, lambda: app.current_phase in ("warmup", "measure")
                         or not app.running, what="the child's first phase")
        assert app.running, "the run ended before a key could be pressed during it"
        await key_is_handled(pilot)
        await wait_until(pilot, lambda: not app.running, what="the run to end")

        await key_is_handled(pilot)  # the dashboard outlived its child
        table = app.query_one(HistoryTable)
        failed = table.selected_run()
        assert failed.status == "failed"
        assert reason in failed.error and "\n" not in failed.error
        assert f"test fault: {fault}" in (failed.log_tail or "")
        assert "Failed" in str(app.query_one("#status").content)
        assert [r.status for r in History(tmp_path / "history.sqlite").list()] == ["failed"]

        monkeypatch.delenv("DIFFBENCH_TEST_FAULT")  # the next child runs clean
        assert app.config_error is None, app.config_error
        await pilot.press("ctrl+r")
        assert app.running, app.query_one("#status").content
        await wait_until(pilot, lambda: not app.running, what="the next run to end")
        fine = table.selected_run()
        assert fine.status == "finished", fine.error
        assert fine.metrics.steps_run == FAKE_STEPS
        stored = History(tmp_path / "history.sqlite").list()
        assert [r.status for r in stored] == ["finished", "failed"]
        assert reason in stored[1].error
