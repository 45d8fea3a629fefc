"""Done-when tests of child-process runs through `diffbench run` (the CLI path):

- SIGKILL, SIGSEGV or an out-of-memory error in the child mid-run leaves the run recorded in
  the history as failed with its reason, and the next run is fine;
- kill -9 of `diffbench export` at any moment leaves the export file old or new, never torn.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from diffbench.engine.export import read_toml
from diffbench.engine.history import History
from diffbench.engine.result import Metrics, RunResult

from repo_paths import ROOT, TESTS
RUN = ["run", "--model", "tiny-sd15", "--steps", "2", "--warmups", "0", "--height", "64",
       "--width", "64"]


def diffbench(args: list[str], home: Path, timeout: float = 300,
              **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "DIFFBENCH_HOME": str(home), "HF_HUB_OFFLINE": "1",
               "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(TESTS)]), "COLUMNS": "200",
               **env}
    environ.pop("DIFFBENCH_TEST_FAULT", None) if "DIFFBENCH_TEST_FAULT" not in env else None
    return subprocess.run([sys.executable, "-m", "diffbench.cli.main", *args], capture_output=True,
                          text=True, timeout=timeout, env=environ)


@pytest.mark.parametrize("fault, reason", [
    ("kill@2", "child killed by SIGKILL (out of memory?"),
    ("segv@2", "child crashed with SIGSEGV (segmentation fault)"),
    ("oom@2", "OutOfMemoryError: CUDA out of memory"),
])
def test_fault_mid_run_is_recorded_and_next_run_works_fake_runner(tmp_path, fault, reason):
    fake = {"DIFFBENCH_WORKER_RUN": "test_worker_fakes:run"}
    broken = diffbench(RUN, tmp_path, DIFFBENCH_TEST_FAULT=fault, **fake)
    assert broken.returncode == 1, broken.stderr
    assert reason in broken.stderr and "Traceback" not in broken.stderr
    fine = diffbench(RUN, tmp_path, **fake)
    assert fine.returncode == 0, fine.stderr
    runs = History(tmp_path / "history.sqlite").list()
    assert [r.status for r in runs] == ["finished", "failed"]
    assert reason in runs[1].error and runs[1].log_tail
    assert f"test fault: {fault.split('@')[0]}" in runs[1].log_tail


def test_real_runner_survives_kill_and_oom_then_runs_fine(tmp_path):
    """The same with the real tiny pipeline, at the measured call's first step: an OOM error
    goes through the runner's own failure handling; a signal death (SIGSEGV behaves as
    SIGKILL here, see the fake-runner cases) does not."""
    reasons = {"kill@1": "child killed by SIGKILL", "oom@1": "out of memory"}
    for fault, reason in reasons.items():
        broken = diffbench(RUN, tmp_path, DIFFBENCH_TEST_FAULT=fault)
        assert broken.returncode == 1, broken.stderr
        assert reason in broken.stderr
    fine = diffbench(RUN, tmp_path)
    assert fine.returncode == 0, fine.stderr
    runs = History(tmp_path / "history.sqlite").list()
    assert [r.status for r in runs] == ["finished", "failed", "failed"]
    for run, reason in zip(reversed(runs[1:]), reasons.values()):
        assert reason in run.error, run.error
        assert "\n" not in run.error
    finished = runs[0]
    assert finished.metrics.steps_run == 2 and finished.metrics.it_per_s > 0
    assert finished.image_path and os.path.isfile(finished.image_path)


#: Enough runs that one export outlasts the interpreter's start (a kill must land mid-write).
ROWS = 2000


def test_kill_9_during_export_never_leaves_a_torn_file(tmp_path):
    history = History(tmp_path / "history.sqlite")
    history.add_many(RunResult(run_id=f"run{i:05d}", config={"model": "tiny-sd15",
                                                              "prompt": "p" * 200},
                               metrics=Metrics(step_ms=[float(s) for s in range(50)],
                                               it_per_s=float(i))) for i in range(ROWS))
    target = tmp_path / "all.toml"
    first = diffbench(["export", "--all", "-o", str(target)], tmp_path)
    assert first.returncode == 0, first.stderr
    old = target.read_bytes()
    rng = random.Random(7)
    environ = {**os.environ, "DIFFBENCH_HOME": str(tmp_path), "PYTHONPATH": str(ROOT / "src")}
    interrupted = 0
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-m", "diffbench.cli.main", "export", "--all",
                                 "--model", "tiny-sd15", "-o", str(target)],
                                env=environ, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 0.6))
        interrupted += proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # old or new, and always a complete export
        assert len(read_toml(target)) == ROWS
    assert interrupted, "no kill landed while the export ran; the test proved nothing"
    assert target.read_bytes() == old  # same runs, same text: old and new are identical


def test_kill_9_in_the_middle_of_a_large_write(tmp_path):
    """Kill the writer while it is writing 200 MB: the target keeps its old content."""
    target = tmp_path / "big.toml"
    target.write_text("old = true\n")
    script = ("import sys; from diffbench.engine.atomic import write_bytes\n"
              "data = b'x' * (200 * 2**20)\nprint('writing', flush=True)\n"
              "write_bytes(sys.argv[1], data)\nprint('done', flush=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(target)], text=True,
                            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert proc.stdout.readline().strip() == "writing"
    temp = None
    deadline = time.monotonic() + 30
    while temp is None and time.monotonic() < deadline:  # wait for the temp file to grow
        found = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        if found and found[0].stat().st_size > 0:
            temp = found[0]
        time.sleep(0.001)
    proc.kill()
    proc.wait()
    assert temp is not None, "never saw the write in progress"
    assert target.read_text() == "old = true\n"


def test_ctrl_c_cancels_gracefully_and_records_the_run(tmp_path):
    environ = {**os.environ, "DIFFBENCH_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1",
               "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(TESTS)]),
               "DIFFBENCH_WORKER_RUN": "test_worker_fakes:run", "FAKE_STEP_S": "0.3",
               "FAKE_STEPS": "20"}
    proc = subprocess.Popen([sys.executable, "-m", "diffbench.cli.main", *RUN], env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    history = History(tmp_path / "history.sqlite")
    _wait_for_worker_child(proc.pid)
    time.sleep(1.5)  # the child's start-up, then a few fake steps of the warmup
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    runs = history.list()
    assert [r.status for r in runs] == ["cancelled"]
    assert runs[0].metrics.load_s == 0.01  # what was measured before the cancel is kept


def _wait_for_worker_child(pid: int, timeout_s: float = 60.0) -> None:
    """Block until the CLI process ``pid`` has started its diffbench.engine.worker child (a loaded
    machine can take seconds to start the CLI; a SIGINT before that tests nothing)."""
    import psutil

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            children = psutil.Process(pid).children()
        except psutil.NoSuchProcess:
            return
        if any("diffbench.engine.worker" in " ".join(c.cmdline()) for c in children
               if c.is_running()):
            return
        time.sleep(0.05)
    raise AssertionError("the CLI never started its worker child")
