"""Runs that vanish or hang (issue 18), through the real `diffbench run` process with the fake
runner in its child:

- SIGTERM and SIGHUP of the CLI stop the child and leave an "interrupted" row with the reason;
- a SIGKILLed CLI leaves a "running" row that the next start marks "interrupted";
- the stall watchdog fails a run whose child was SIGSTOPped (no --timeout given);
- a run whose history write fails exits 3, its results still printed.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from diffbench.engine.history import History

from repo_paths import ROOT, TESTS

RUN = ["run", "--model", "tiny-sd15", "--steps", "2", "--warmups", "0", "--height", "64",
       "--width", "64"]


def environ(home: Path, **extra: str) -> dict:
    env = {**os.environ, "DIFFBENCH_HOME": str(home), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(TESTS)]), "COLUMNS": "200",
           "DIFFBENCH_WORKER_RUN": "test_worker_fakes:run", "FAKE_STEP_S": "0.2",
           "FAKE_STEPS": "50", "FAKE_STARTED_FILE": str(home / "steps-begin"), **extra}
    env.pop("DIFFBENCH_TEST_FAULT", None)
    return env


def start(home: Path, *flags: str, **extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "diffbench.cli.main", *RUN, *flags],
                            env=environ(home, **extra), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def worker_of(pid: int, timeout_s: float = 60.0) -> psutil.Process:
    """The CLI ``pid``'s worker child process."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for child in psutil.Process(pid).children():
            try:
                if "diffbench.engine.worker" in " ".join(child.cmdline()):
                    return child
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.05)
    raise AssertionError("the CLI never started its worker child")


def raw_rows(home: Path) -> list[tuple]:
    """(run_id, status, error) straight from SQLite: History() would mark orphans first."""
    conn = sqlite3.connect(home / "history.sqlite")
    try:
        return conn.execute("SELECT run_id, status, error FROM runs").fetchall()
    finally:
        conn.close()


def wait_running(home: Path, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    """Until the run's "running" row exists and its child is past its load phase."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            running = any(r[1] == "running" for r in raw_rows(home))
        except sqlite3.OperationalError:  # not created yet
            running = False
        if running and (home / "steps-begin").exists():
            time.sleep(0.3)  # the load event has reached the parent
            return
        time.sleep(0.05)
    raise AssertionError("the run never got to its steps")


@pytest.mark.parametrize("sig, code, reason", [
    (signal.SIGTERM, 143, "SIGTERM"),
    (signal.SIGHUP, 129, "SIGHUP (the terminal closed"),
])
def test_sigterm_and_sighup_leave_an_interrupted_row(tmp_path, sig, code, reason):
    proc = start(tmp_path)
    wait_running(tmp_path, proc)
    child = worker_of(proc.pid)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    [run] = History(tmp_path / "history.sqlite").list()
    assert run.status == "interrupted" and reason in run.error and "\n" not in run.error
    assert run.metrics.load_s == 0.01  # what was measured before the signal is kept
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_sigkilled_parent_row_is_marked_on_the_next_start(tmp_path):
    proc = start(tmp_path)
    wait_running(tmp_path, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    [(run_id, status, _)] = raw_rows(tmp_path)
    assert status == "running"  # nothing could finish it
    [run] = History(tmp_path / "history.sqlite").list()  # the next start opens the history
    assert (run.run_id, run.status) == (run_id, "interrupted")
    assert f"(pid {proc.pid})" in run.error and "SIGKILL" in run.error
    assert raw_rows(tmp_path)[0][1] == "interrupted"  # stored, not only shown


def test_stall_watchdog_fails_a_stopped_child(tmp_path):
    proc = start(tmp_path, "--stall-timeout", "0.5")
    wait_running(tmp_path, proc)
    child = worker_of(proc.pid)
    child.suspend()  # SIGSTOP: alive, silent, deaf to cancel and SIGTERM
    started = time.monotonic()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert time.monotonic() - started < 15
    last = err.strip().splitlines()[-1]
    assert "stalled: the child sent nothing for" in last and "--stall-timeout 0.5" in last
    [run] = History(tmp_path / "history.sqlite").list()
    assert run.status == "failed" and run.error.startswith("stalled:")
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_a_run_whose_history_write_fails_exits_3_and_keeps_its_results(tmp_path):
    (tmp_path / "history.sqlite").write_bytes(b"\x00garbage" * 512)
    done = subprocess.run([sys.executable, "-m", "diffbench.cli.main", *RUN,
                           "--export", str(tmp_path / "run.toml")],
                          env=environ(tmp_path, FAKE_STEPS="3", FAKE_STEP_S="0.01"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    assert "history not updated" in done.stderr and "damaged" in done.stderr
    assert "it/s" in done.stdout.lower() or "Iterations" in done.stdout  # results printed
    assert (tmp_path / "run.toml").exists()


def test_interrupted_rows_show_in_history_compare_and_exports(tmp_path, monkeypatch, capsys):
    from diffbench.cli.main import main as cli
    from diffbench.engine.export import read_toml
    from diffbench.engine.result import Metrics, RunResult

    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "250")
    cfg = {"model": "tiny-sd15", "compiler": "none", "height": 64, "width": 64}
    history = History()
    history.begin(RunResult(run_id="cut000000001", status="running", config=cfg,
                            started_at="2026-01-02T00:00:00+00:00"))
    assert history.mark_interrupted("cut000000001", "diffbench got SIGTERM (kill)")
    history.add(RunResult(run_id="fine00000001", config=cfg, metrics=Metrics(it_per_s=4.0),
                          started_at="2026-01-01T00:00:00+00:00"))
    assert cli(["history"]) == 0
    out = capsys.readouterr().out
    assert "interrupted" in out and "diffbench got SIGTERM (kill)" in out
    assert cli(["history", "--status", "interrupted", "--json"]) == 0
    assert capsys.readouterr().out.count("cut000000001") == 1
    assert cli(["compare", "fine00000001", "cut000000001"]) == 0
    assert "run cut000000001 interrupted: diffbench got SIGTERM" in capsys.readouterr().out
    export = tmp_path / "all.toml"
    assert cli(["export", "--all", "-o", str(export)]) == 0
    assert sorted(r.status for r in read_toml(export)) == ["finished", "interrupted"]
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "other"))
    assert cli(["history", "--import", str(export)]) == 0
    assert History().get("cut000000001").status == "interrupted"
