"""History side of issue 18: "running" rows and their owners, the v1 -> v2 migration,
interrupted rows never used as a baseline, private files and folders."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys


from diffbench.engine import run_owner
from diffbench.engine.history import History
from diffbench.engine.history_schema import SCHEMA_VERSION, _SCHEMA_V1
from diffbench.engine.result import Metrics, RunResult

CFG = {"model": "tiny-sd15", "compiler": "none", "height": 64, "width": 64, "steps": 2,
       "prompt": "p", "seed": 1}


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_owner_liveness():
    me = run_owner.current()
    assert run_owner.is_alive(me)
    assert not run_owner.is_alive({**me, "pid": dead_pid()})
    assert not run_owner.is_alive({**me, "started": me["started"] - 3600})  # a reused pid
    assert run_owner.is_alive({"pid": dead_pid(), "host": "another-host.example"})
    assert not run_owner.is_alive(None) and not run_owner.is_alive({"pid": "x"})


def test_orphaned_running_rows_are_marked_on_open_and_live_ones_are_not(tmp_path):
    path = tmp_path / "history.sqlite"
    writer = History(path)
    me = run_owner.current()
    writer.begin(RunResult(run_id="live", status="running", config=CFG), me)
    writer.begin(RunResult(run_id="dead", status="running", config=CFG),
                 {**me, "pid": dead_pid()})
    writer.begin(RunResult(run_id="remote", status="running", config=CFG),
                 {"pid": 1, "started": 0.0, "host": "another-host.example"})
    runs = {r.run_id: r for r in History(path).list()}  # a new process opens it
    assert runs["live"].status == "running" and runs["remote"].status == "running"
    assert runs["dead"].status == "interrupted" and "ended without finishing" in \
        runs["dead"].error
    # the live run ends: its result replaces the row
    writer.add(RunResult(run_id="live", config=CFG, metrics=Metrics(it_per_s=5.0)))
    assert History(path).get("live").status == "finished"
    assert not History(path).mark_interrupted("live", "too late")  # only a running row


def test_an_interrupted_run_is_never_a_baseline(tmp_path):
    history = History(tmp_path / "history.sqlite")
    history.begin(RunResult(run_id="cut", status="running", config=CFG))
    history.mark_interrupted("cut", "diffbench got SIGTERM")
    later = RunResult(run_id="later", config={**CFG, "compiler": "sfast"})
    assert history.find_baseline(later) is None
    history.add(RunResult(run_id="eager", config=CFG))
    assert history.find_baseline(later).run_id == "eager"


def test_a_version_1_history_is_upgraded_and_keeps_its_rows(tmp_path):
    path = tmp_path / "history.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(_SCHEMA_V1)
    conn.execute("INSERT INTO runs (run_id, started_at, status, model, config, environment, "
                 "metrics, notices) VALUES ('old1', '2026-01-01T00:00:00+00:00', 'finished', "
                 "'tiny-sd15', ?, '{}', '{\"it_per_s\": 2.5}', '[]')", (json.dumps(CFG),))
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    history = History(path)
    [old] = history.list()
    assert (old.run_id, old.status, old.metrics.it_per_s) == ("old1", "finished", 2.5)
    history.begin(RunResult(run_id="new1", status="running", config=CFG))
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert json.loads(conn.execute("SELECT owner FROM runs WHERE run_id = 'new1'")
                      .fetchone()[0])["pid"] == os.getpid()
    conn.close()


def test_history_files_and_folders_are_private(tmp_path):
    home = tmp_path / "new" / "home"
    history = History(home / "history.sqlite")
    history.add(RunResult(run_id="r1", config=CFG))
    assert mode(home) == 0o700
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{history.path}{suffix}"):
            assert mode(f"{history.path}{suffix}") == 0o600, suffix


def test_existing_open_files_are_tightened_on_open(tmp_path):
    path = tmp_path / "history.sqlite"
    History(path).add(RunResult(run_id="r1", config=CFG))
    images = tmp_path / "images"
    images.mkdir(mode=0o755)
    (images / "r1.png").write_bytes(b"png")
    for target, bits in ((path, 0o644), (images, 0o755), (images / "r1.png", 0o644)):
        os.chmod(target, bits)  # as an older diffbench left them
    assert History(path).count() == 1
    assert mode(path) == 0o600 and mode(images) == 0o700 and mode(images / "r1.png") == 0o600


def test_kept_images_are_private(tmp_path, monkeypatch):
    from PIL import Image

    from diffbench.engine.worker import keep_image

    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DIFFBENCH_KEEP_IMAGE", raising=False)
    result = RunResult(run_id="img1", config=CFG)
    result.image = Image.new("RGB", (8, 8))  # type: ignore[attr-defined]
    keep_image(result)
    assert result.image_path and mode(result.image_path) == 0o600
    assert mode(tmp_path / "home" / "images") == 0o700 and mode(tmp_path / "home") == 0o700


def test_tightening_never_adds_a_permission(tmp_path):
    from diffbench.engine.history_schema import restrict

    path = tmp_path / "history.sqlite"
    History(path).add(RunResult(run_id="r1", config=CFG))
    os.chmod(path, 0o444)  # the user made it read-only on purpose
    restrict(path, 0o600)
    assert mode(path) == 0o400
