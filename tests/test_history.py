"""History store: add/get/list/delete, baselines, concurrency, corrupt and newer databases."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from diffbench.engine.history import History, HistoryError, RunNotFoundError, default_path
from diffbench.engine.history_schema import SCHEMA_VERSION
from diffbench.engine.result import Metrics, RunResult

ROOT = Path(__file__).resolve().parents[1]


def make(run_id: str, model: str = "tiny-sd15", compiler: str = "none", status: str = "finished",
         started_at: str = "2026-01-01T00:00:00+00:00", **cfg) -> RunResult:
    config = {"model": model, "compiler": compiler, "task": "t2i", "height": 64, "width": 64,
              "steps": 4, "seed": 333, "prompt": "p", "negative_prompt": "", "dtype": "float32",
              "device": "cpu", "quantize": "none", "deepcache": False, "scheduler": "none"}
    config.update(cfg)
    return RunResult(run_id=run_id, status=status, started_at=started_at, config=config,
                     environment={"python": "3.11", "gpu": None},
                     metrics=Metrics(it_per_s=10.0, inference_s=0.4, warmup_s=1.0,
                                     step_ms=[1.0, 2.0]),
                     image_path=f"/img/{run_id}.png" if status == "finished" else None,
                     error=None if status == "finished" else "child killed by SIGKILL",
                     notices=["n1"], log_tail=None if status == "finished" else "tail\n")


@pytest.fixture
def hist(tmp_path) -> History:
    return History(tmp_path / "h.sqlite")


def test_default_path_honours_diffbench_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    assert default_path() == tmp_path / "home" / "history.sqlite"
    History().add(make("abc"))
    assert (tmp_path / "home" / "history.sqlite").exists()


def test_add_get_round_trip_and_upsert(hist):
    result = make("abc123")
    hist.add(result)
    assert hist.get("abc123").to_dict() == result.to_dict()
    result.status, result.error = "failed", "boom"
    hist.add(result)
    assert hist.count() == 1
    assert hist.get("abc").error == "boom"


def test_schema_version_and_wal(hist):
    hist.add(make("a"))
    conn = sqlite3.connect(hist.path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    row = conn.execute("SELECT model, compiler, height, it_per_s FROM runs").fetchone()
    assert row == ("tiny-sd15", "none", 64, 10.0)


def test_prefix_lookup_errors(hist):
    hist.add(make("abc111"))
    hist.add(make("abc222"))
    with pytest.raises(RunNotFoundError, match="ambiguous: it matches"):
        hist.get("abc")
    with pytest.raises(RunNotFoundError, match="no run 'zzz'"):
        hist.get("zzz")
    assert hist.get("abc2").run_id == "abc222"


def test_list_filters_order_and_limit(hist):
    hist.add(make("r1", started_at="2026-01-01T00:00:01+00:00"))
    hist.add(make("r2", compiler="compile", started_at="2026-01-01T00:00:02+00:00"))
    hist.add(make("r3", model="tiny-sdxl", status="failed",
                  started_at="2026-01-01T00:00:03+00:00"))
    assert [r.run_id for r in hist.list()] == ["r3", "r2", "r1"]
    assert [r.run_id for r in hist.list(model="tiny-sd15")] == ["r2", "r1"]
    assert [r.run_id for r in hist.list(compiler="compile")] == ["r2"]
    assert [r.run_id for r in hist.list(status="failed")] == ["r3"]
    assert [r.run_id for r in hist.list(limit=1)] == ["r3"]
    hist.add(make("s1", sweep_id="sw1", started_at="2026-01-01T00:00:04+00:00"))
    assert [r.run_id for r in hist.list(sweep_id="sw1")] == ["s1"]


def test_delete(hist):
    hist.add(make("gone1"))
    hist.add(make("kept1"))
    assert hist.delete("gone") == "gone1"
    assert [r.run_id for r in hist.list()] == ["kept1"]
    with pytest.raises(RunNotFoundError):
        hist.delete("gone")


def test_find_baseline(hist):
    run = make("comp", compiler="compile", started_at="2026-01-01T00:00:09+00:00")
    assert hist.find_baseline(run) is None
    hist.add(make("old", started_at="2026-01-01T00:00:01+00:00"))
    hist.add(make("new", started_at="2026-01-01T00:00:02+00:00"))
    hist.add(make("failedbase", status="failed", started_at="2026-01-01T00:00:03+00:00"))
    hist.add(make("otherseed", seed=1, started_at="2026-01-01T00:00:04+00:00"))
    hist.add(make("quant", quantize="int8wo", started_at="2026-01-01T00:00:05+00:00"))
    hist.add(make("dc", deepcache=True, started_at="2026-01-01T00:00:06+00:00"))
    hist.add(run)
    assert hist.find_baseline(run).run_id == "new"
    # a baseline run is not its own baseline
    assert hist.find_baseline(hist.get("new")).run_id == "old"


def test_new_metrics_fields_need_no_migration(hist):
    hist.add(make("x"))
    conn = sqlite3.connect(hist.path)
    row = conn.execute("SELECT metrics FROM runs").fetchone()[0]
    assert '"step_ms": [1.0, 2.0]' in row and '"psnr_db": null' in row


def test_corrupt_database_gives_way_out_and_reset_keeps_backup(tmp_path):
    path = tmp_path / "h.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(HistoryError) as err:
        History(path).list()
    message = str(err.value)
    assert "damaged" in message and "diffbench history --reset" in message
    assert "\n" not in message
    backup = History(path).reset()
    assert backup.read_bytes() == b"this is not a database" * 100
    History(path).add(make("fresh"))
    assert [r.run_id for r in History(path).list()] == ["fresh"]
    # a second reset never overwrites the first backup
    second = History(path).reset()
    assert second != backup and backup.exists() and second.exists()


def test_newer_schema_is_refused_and_untouched(tmp_path):
    path = tmp_path / "h.sqlite"
    History(path).add(make("keep"))
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(HistoryError, match="newer than this diffbench knows"):
        History(path).add(make("new"))
    assert path.read_bytes() == before


def test_foreign_sqlite_file_is_refused(tmp_path):
    path = tmp_path / "h.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()
    with pytest.raises(HistoryError, match="not a diffbench history"):
        History(path).list()


def test_history_under_a_regular_file_is_one_line_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(HistoryError, match="cannot create the history folder"):
        History(blocker / "sub" / "h.sqlite").list()


def test_concurrent_threads_and_processes(hist):
    # Two other processes and four threads write at once; nothing is lost.
    script = ("import sys; from diffbench.engine.history import History; from diffbench.engine.result import "
              "RunResult; h = History(sys.argv[1]); [h.add(RunResult(run_id=f'{sys.argv[2]}"
              "{i}', config={'model': 'm'})) for i in range(25)]")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    procs = [subprocess.Popen([sys.executable, "-c", script, str(hist.path), tag], env=env)
             for tag in ("p", "q")]
    errors = []

    def writer(tag: str) -> None:
        try:
            for i in range(25):
                hist.add(RunResult(run_id=f"{tag}{i}", config={"model": "m"}))
                hist.list(limit=5)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    assert not errors
    assert hist.count() == 150
