"""Child-process runs (diffbench.engine.client + diffbench.engine.worker) with a fake runner: every way a child can
die ends as a failed RunResult with a one-line reason and its log tail; cancel escalates."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from diffbench.engine import events as ev
from diffbench.engine.child_process import child_env, start_child
from diffbench.engine.client import run_in_child
from diffbench.engine.config import RunConfig

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def fake_env(**extra: str) -> dict[str, str]:
    env = {"DIFFBENCH_WORKER_RUN": "test_worker_fakes:run",
           "PYTHONPATH": str(TESTS), "FAKE_STEPS": "4", "FAKE_STEP_S": "0.01"}
    env.update(extra)
    return env


def run(fault: str | None = None, cancel=None, timeout_s=None, grace_s=10.0, **extra):
    env = fake_env(**extra)
    if fault:
        env["DIFFBENCH_TEST_FAULT"] = fault
    events: list = []
    result = run_in_child(RunConfig(model="tiny-sd15", steps=4), events.append, cancel,
                          timeout_s=timeout_s, grace_s=grace_s, env=env)
    return result, events


def assert_failed(result, events, reason_part: str) -> None:
    assert result.status == "failed", result
    assert reason_part in result.error
    assert "\n" not in result.error
    assert isinstance(events[-1], ev.RunFailed) and events[-1].reason == result.error
    assert events[-1].result["run_id"] == result.run_id


def test_finished_run_streams_events_and_keeps_noise_out():
    result, events = run()
    assert result.status == "finished" and result.error is None
    assert result.metrics.steps_run == 4 and result.metrics.it_per_s == pytest.approx(100.0)
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "PhaseStarted" and kinds[-1] == "RunFinished"
    assert kinds.count("StepFinished") == 8
    # The parent named the run; the last event carries the final result.
    assert events[-1].result == result.to_dict()


@pytest.mark.parametrize("fault, reason", [
    ("segv@2", "child crashed with SIGSEGV (segmentation fault)"),
    ("abort@2", "child aborted (SIGABRT)"),
    ("kill@2", "child killed by SIGKILL (out of memory?"),
    ("exit@2", "child exited with code 3"),
    ("garbage@2", "protocol error: child wrote a line that is not a JSON object"),
    ("truncate@2", "event stream ended mid-line (truncated)"),
])
def test_child_faults_end_as_failed_runs_with_log_tail(fault, reason):
    result, events = run(fault)
    assert_failed(result, events, reason)
    assert f"test fault: {fault.split('@')[0]} at step 2" in result.log_tail
    # what the fake printed to stdout went to the log, not the protocol
    assert "fake diffusers warning" in result.log_tail
    # what was measured before the crash is kept
    assert result.metrics.load_s == 0.01
    assert sum(isinstance(e, ev.StepFinished) for e in events) == 2


def test_segfault_log_has_python_stack():
    result, _ = run("segv@1")
    assert "Fatal Python error: Segmentation fault" in result.log_tail


def test_cuda_oom_raised_in_child_is_a_failed_run():
    result, events = run("oom@3")
    assert_failed(result, events, "OutOfMemoryError: CUDA out of memory")


def test_runner_that_raises_is_a_failed_run():
    result, events = run(DIFFBENCH_WORKER_RUN="test_worker_fakes:run_raises")
    assert_failed(result, events, "RuntimeError: runner bug")


def test_hang_past_timeout_is_stopped():
    start = time.monotonic()
    result, events = run("hang@1", timeout_s=1.5)
    assert_failed(result, events, "timed out after 1.5 s")
    assert time.monotonic() - start < 8


def test_graceful_cancel_stops_after_current_step():
    cancel = threading.Event()
    seen = []

    def on_event(event):
        seen.append(event)
        if isinstance(event, ev.StepFinished) and event.index == 2:
            cancel.set()

    result = run_in_child(RunConfig(steps=4), on_event, cancel,
                          env=fake_env(FAKE_STEP_S="0.05"))
    assert result.status == "cancelled"
    assert isinstance(seen[-1], ev.RunFailed) and seen[-1].status == "cancelled"
    assert sum(isinstance(e, ev.StepFinished) for e in seen) < 8


def test_cancel_of_a_deaf_child_escalates_to_terminate():
    cancel = threading.Event()
    events: list = []

    def on_event(event):
        events.append(event)
        # Cancel only once the child has reached the fault (it hangs, deaf, at step 1): a
        # timer could fire while a slow child is still starting and stop it gracefully.
        if isinstance(event, ev.StepFinished):
            cancel.set()

    env = fake_env()
    env["DIFFBENCH_TEST_FAULT"] = "hang@1"
    start = time.monotonic()
    result = run_in_child(RunConfig(model="tiny-sd15", steps=4), on_event, cancel,
                          grace_s=0.5, env=env)
    assert result.status == "cancelled"
    assert "SIGTERM" in result.error
    assert any("did not stop within 0.5 s" in n for n in result.notices)
    assert time.monotonic() - start < 8


def test_cancel_before_the_run_begins_stops_the_child_at_once():
    """Ctrl-C while the child still imports torch: nothing to save, no 10 s grace."""
    cancel = threading.Event()
    timer = threading.Timer(1.0, cancel.set)
    timer.start()
    start = time.monotonic()
    try:
        result = run_in_child(RunConfig(model="tiny-sd15", steps=4), None, cancel,
                              grace_s=30.0,
                              env=fake_env(DIFFBENCH_WORKER_RUN="test_worker_fakes:run_silent"))
    finally:
        timer.cancel()
    assert result.status == "cancelled"
    assert time.monotonic() - start < 10


def test_unknown_event_type_is_skipped_with_a_notice():
    result, events = run(DIFFBENCH_WORKER_RUN="test_client:run_with_future_event")
    assert result.status == "finished"
    assert any("unknown event type 'FutureEvent'" in n for n in result.notices)


@dataclasses.dataclass(frozen=True)
class FutureEvent:
    """An event type a newer worker might send."""

    value: int = 1


def run_with_future_event(cfg, on_event=None, cancel=None):
    """Fake runner (used in the child) that also emits an event type the parent lacks."""
    sys.path.insert(0, str(TESTS))
    import test_worker_fakes

    on_event(FutureEvent())
    return test_worker_fakes.run(cfg, on_event, cancel)


def test_missing_interpreter_is_a_failed_run():
    events = []
    result = run_in_child(RunConfig(), events.append, python="/nonexistent/python3")
    assert_failed(result, events, "cannot start the child interpreter /nonexistent/python3")


def test_interpreter_that_is_not_python():
    result = run_in_child(RunConfig(), None, python="/bin/false", env=fake_env())
    assert result.status == "failed"
    assert "child exited with code 1 before it started (/bin/false)" in result.error


def test_child_dies_with_its_parent(tmp_path):
    # A parent process runs a hanging child; SIGKILL of the parent must not leave an orphan.
    pid_file = tmp_path / "child.pid"
    script = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "from diffbench.engine.child_process import child_env\n"
        "from diffbench.engine.client import run_in_child\nfrom diffbench.engine.config import RunConfig\n"
        "import os\n"
        "env = {'DIFFBENCH_WORKER_RUN': 'test_worker_fakes:run', 'PYTHONPATH': sys.argv[2],"
        " 'DIFFBENCH_TEST_FAULT': 'hang@1'}\n"
        "def on_event(e):\n"
        "    open(sys.argv[3], 'w').write('x')\n"
        "run_in_child(RunConfig(), on_event, env=env)\n")
    parent = subprocess.Popen([sys.executable, "-c", script, str(ROOT / "src"), str(TESTS),
                               str(pid_file)])
    deadline = time.monotonic() + 20
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pid_file.exists(), "child never started"
    children = _children_of(parent.pid)
    assert children, "no child process found"
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in children)


def _children_of(pid: int) -> list[int]:
    import psutil

    return [c.pid for c in psutil.Process(pid).children(recursive=True)]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_other_interpreter_gets_the_package_on_its_path(tmp_path, monkeypatch):
    """--python: a different interpreter path, run from a folder where `engine` is not
    importable by accident (python -m puts the cwd on sys.path)."""
    other = tmp_path / "python-other"
    other.symlink_to(sys.executable)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    result = run_in_child(RunConfig(steps=2), None, python=str(other), env=fake_env())
    assert result.status == "finished", result.error
    env = child_env({"PYTHONPATH": "/somewhere"})
    assert env["PYTHONPATH"].split(os.pathsep) == [str(ROOT / "src"), "/somewhere"]


def test_exit_of_the_parent_while_a_thread_waits_on_a_child(tmp_path):
    """A non-daemon thread runs a hanging child and the main thread ends: the interpreter
    exits promptly, the child is killed, and the run reports itself cancelled."""
    script = (
        "import sys, threading, time; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "from diffbench.engine.client import run_in_child\nfrom diffbench.engine.config import RunConfig\n"
        "env = {'DIFFBENCH_WORKER_RUN': 'test_worker_fakes:run', 'PYTHONPATH': sys.argv[2],"
        " 'DIFFBENCH_TEST_FAULT': 'hang@1'}\n"
        "started = threading.Event()\n"
        "def work():\n"
        "    r = run_in_child(RunConfig(), lambda e: started.set(), env=env)\n"
        "    open(sys.argv[3], 'w').write(r.status + ': ' + r.error)\n"
        "threading.Thread(target=work).start()\n"
        "started.wait(30)\ntime.sleep(0.5)\n")
    out = tmp_path / "status.txt"
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", script, str(ROOT / "src"), str(TESTS), str(out)],
                   timeout=60, check=True)
    assert time.monotonic() - start < 30
    assert out.read_text() == "cancelled: cancelled: diffbench exited during the run"


# ------------------------------------------------------------------ a child started ahead
def test_child_started_ahead_runs_one_config():
    child = start_child(env=fake_env())
    time.sleep(0.3)  # the caller's own checks; the child waits for its request
    events: list = []
    result = run_in_child(RunConfig(model="tiny-sd15", steps=4), events.append, child=child)
    assert result.status == "finished" and result.metrics.steps_run == 4
    assert isinstance(events[-1], ev.RunFinished) and events[-1].result == result.to_dict()
    assert child.used and child.proc.returncode == 0
    with pytest.raises(ValueError, match="already used"):
        run_in_child(RunConfig(), None, child=child)
    child.discard()  # after a run: nothing to do
    assert child.proc.returncode == 0


def test_discarded_child_is_killed_and_reaped():
    with start_child(env=fake_env()) as child:
        assert child.proc.poll() is None
    assert child.proc.returncode == -9 and not _alive(child.proc.pid)
    child.discard()  # idempotent
    with pytest.raises(ValueError, match="already used or discarded"):
        run_in_child(RunConfig(), None, child=child)


def test_child_started_ahead_with_a_missing_interpreter_is_a_failed_run():
    child = start_child("/nonexistent/python3")
    assert child.proc is None
    events: list = []
    result = run_in_child(RunConfig(), events.append, child=child)
    assert_failed(result, events, "cannot start the child interpreter /nonexistent/python3")
