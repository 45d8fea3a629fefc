"""Sweeps with the real runner on tiny-sd15 (CPU, 32-64 px, 2 steps): interrupt and resume,
similarity to the baseline cell, and `diffbench sweep` end to end."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from diffbench.engine.sweep.grid import cell_key
from diffbench.engine.sweep.plan import Sweep
from diffbench.engine.sweep.run import run_sweep
from diffbench.cli.main import main as cli_main
from diffbench.engine.config import RunConfig
from diffbench.engine.history import History


@pytest.fixture(autouse=True)
def offline_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))


def _counting_run():
    from diffbench.engine.runner import run

    calls = []

    def counted(cfg, on_event=None, cancel=None):
        calls.append(cfg)
        return run(cfg, on_event, cancel)

    return counted, calls


BASE = dict(model="tiny-sd15", steps=2, warmups=1, device="cpu")


def test_3x3_sweep_interrupted_and_resumed_runs_each_cell_once(tmp_path):
    history = History(tmp_path / "h.sqlite")
    grid = {"scheduler": ["EulerDiscreteScheduler", "DDIMScheduler", "DPMSolverMultistepScheduler"],
            "size": [32, 48, 64]}
    stop = threading.Event()
    seen = []

    def stop_after_four(outcome, total):
        seen.append(outcome.key)
        if len(seen) == 4:
            stop.set()

    run, first_calls = _counting_run()
    sweep = Sweep(base=RunConfig(**BASE), grid=dict(grid))
    first = run_sweep(sweep, history, run, stop=stop, on_cell_done=stop_after_four)
    assert len(first_calls) == 4 and sum(o.result is None for o in first) == 5

    run, second_calls = _counting_run()
    sweep = Sweep(base=RunConfig(**BASE), grid=dict(grid))  # as a rerun builds it
    outcomes = run_sweep(sweep, history, run)
    assert [cell_key({"scheduler": c.scheduler, "size": f"{c.width}x{c.height}"})
            for c in second_calls] == [o.key for o in outcomes[4:]]
    assert [o.resumed for o in outcomes] == [True] * 4 + [False] * 5
    assert all(o.status == "finished" for o in outcomes), [o.result.error for o in outcomes]
    stored = [r for r in history.list() if r.config.get("sweep_id") == sweep.sweep_id]
    assert len(stored) == 9 and len({r.config["sweep_cell"] for r in stored}) == 9
    for outcome in outcomes:  # each cell ran at its own size, with its own warmup
        r = outcome.result
        assert (r.config["width"], r.config["height"]) == tuple(
            int(p) for p in outcome.cell["size"].split("x"))
        assert r.config["scheduler"] == outcome.cell["scheduler"]
        assert r.metrics.warmup_s is not None and r.metrics.steps_run == 2


def test_accelerated_cell_gets_psnr_ssim_against_its_baseline_cell(tmp_path):
    history = History(tmp_path / "h.sqlite")
    base = RunConfig(**{**BASE, "steps": 4, "height": 32, "width": 32,
                        "output_image": str(tmp_path / "img.png")})
    sweep = Sweep(base=base, grid={"deepcache": [False, True]})
    outcomes = run_sweep(sweep, history, _counting_run()[0])
    eager, cached = (o.result for o in outcomes)
    assert eager.status == cached.status == "finished"
    assert eager.metrics.psnr_db is None  # a baseline has no baseline
    assert cached.metrics.baseline_run_id == eager.run_id
    assert 10 < cached.metrics.psnr_db <= 200 and 0 < cached.metrics.ssim <= 1
    stored = history.get(cached.run_id)
    assert stored.metrics.psnr_db == pytest.approx(cached.metrics.psnr_db)
    assert eager.metrics.image_flag is None


def test_cli_sweep_table_toml_and_rerun(tmp_path, capsys):
    out = tmp_path / "sweep.toml"
    args = ["sweep", "--model", "tiny-sd15", "--steps", "2", "--warmups", "0", "--device",
            "cpu", "--grid", "size=32,48", "--grid", "scheduler=DDIMScheduler",
            "--rows", "scheduler", "--cols", "size", "--in-process", "-o", str(out)]
    assert cli_main(args) == 0
    captured = capsys.readouterr()
    assert "size=32x32" in captured.out and "it/s" in captured.out
    assert "[2/2] done" in captured.err
    import tomllib

    data = tomllib.loads(out.read_text())
    assert [c["status"] for c in data["cells"]] == ["finished", "finished"]
    assert data["sweep"]["rows"] == ["scheduler"] and data["sweep"]["cols"] == ["size"]
    assert cli_main(args) == 0  # rerun: nothing left to run
    captured = capsys.readouterr()
    assert captured.err.count("finished earlier") == 2
    assert len(History().list()) == 2


def test_cli_sweep_bad_input_is_one_line(capsys):
    assert cli_main(["sweep", "--grid", "height=64,65", "--in-process"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cell height=65" in err
    assert cli_main(["sweep", "--grid", "size=32", "--rows", "steps"]) == 2
    assert "not a grid field" in capsys.readouterr().err
    # --dry-run checks the cells as the real sweep does
    assert cli_main(["sweep", "--grid", "steps=0,4", "--dry-run"]) == 2
    assert "cell steps=0" in capsys.readouterr().err
    assert cli_main(["sweep", "--grid", "steps=2,4", "--dry-run"]) == 0
    assert "2 cells" in capsys.readouterr().out


def test_first_ctrl_c_stops_after_the_cell_second_cancels_it():
    from rich.console import Console

    from diffbench.cli.sweep import _Interrupts

    with _Interrupts(Console(stderr=True)) as interrupts:
        os.kill(os.getpid(), signal.SIGINT)
        assert interrupts.stop.is_set() and not interrupts.cancel.is_set()
        os.kill(os.getpid(), signal.SIGINT)
        assert interrupts.cancel.is_set()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_cli_sweep_that_cannot_write_its_file_still_prints_the_table(tmp_path, capsys,
                                                                    monkeypatch):
    from diffbench.engine.sweep import report
    from diffbench.engine.errors import ConfigError

    def full_disk(path, data):
        raise ConfigError(f"cannot write {path}: no space left on device")

    monkeypatch.setattr(report, "write_toml", full_disk)
    assert cli_main(["sweep", "--model", "tiny-sd15", "--steps", "2", "--warmups", "0",
                     "--device", "cpu", "--grid", "size=32", "--in-process",
                     "-o", str(tmp_path / "s.toml")]) == 2
    captured = capsys.readouterr()
    assert "it/s" in captured.out  # the table came first
    assert "no space left on device" in captured.err
    assert len(History().list()) == 1  # the cell's run is kept


def test_cli_sweep_writes_its_file_before_printing(tmp_path, monkeypatch):
    """`diffbench sweep ... -o s.toml | head`: printing the table fails on the closed pipe;
    the sweep's file is already written and the command ends with the closed-pipe code."""
    import diffbench.cli.sweep as sweep_command

    def closed_pipe(*args, **kwargs):
        raise BrokenPipeError

    monkeypatch.setattr(sweep_command, "render_table", closed_pipe)
    # The CLI's own closed-pipe exit would point this process's stdout at devnull.
    monkeypatch.setattr("diffbench.cli.main._closed_pipe", lambda: 141)
    out = tmp_path / "s.toml"
    assert cli_main(["sweep", "--model", "tiny-sd15", "--steps", "2", "--warmups", "0",
                     "--device", "cpu", "--grid", "size=32", "--in-process",
                     "-o", str(out)]) == 141
    import tomllib

    assert [c["status"] for c in tomllib.loads(out.read_text())["cells"]] == ["finished"]
