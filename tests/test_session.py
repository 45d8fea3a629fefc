"""diffbench.engine.session: one launch decision, one baseline rule, the same record from the
CLI and the dashboard; throughput and check-params in a child process."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from diffbench.engine import baseline as rule
from diffbench.engine.config import RunConfig
from diffbench.engine.errors import ConfigError
from diffbench.engine.history import History
from diffbench.engine.result import RunResult
from diffbench.engine.session import CHILD, ENGINE, IN_PROCESS, Session

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "diffbench"
TINY = ["--model", "tiny-sd15", "--height", "64", "--width", "64", "--steps", "2",
        "--warmups", "0"]


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh DIFFBENCH_HOME (the children inherit it) and working folder."""
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DIFFBENCH_IN_PROCESS", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ------------------------------------------------------------------ one launch decision
def test_the_launch_decision(monkeypatch):
    monkeypatch.delenv("DIFFBENCH_IN_PROCESS", raising=False)
    assert Session().launch_mode() == CHILD
    assert Session(in_process=True).launch_mode() == IN_PROCESS
    assert Session(engine=lambda *a: None).launch_mode() == ENGINE
    monkeypatch.setenv("DIFFBENCH_IN_PROCESS", "1")
    assert Session(in_process=None).launch_mode() == IN_PROCESS
    assert Session(in_process=False).launch_mode() == CHILD  # e.g. one child per GPU


def test_only_the_session_launches():
    """Nothing but engine/session.py starts a child or calls the runner, the throughput fit
    or the parameter check (their own modules and the worker's job table aside)."""
    # calls of the session's own methods (session.start_child, the dashboard bridge's
    # analysis.run_throughput -> Session.throughput) are fine; direct calls of the launchers
    # are not
    launching = re.compile(r"(?<!session\.)(?<!analysis\.)\b(run_in_child|"
                           r"run_job_in_child|start_child|runner\.run|run_throughput|"
                           r"check_param)\(|\bfrom diffbench\.engine\.runner import run\b")
    allowed = {"engine/session.py", "engine/client.py", "engine/child_process.py",
               "engine/jobs.py", "engine/worker.py", "engine/throughput.py",
               "engine/check_params.py", "tui/bridge/analysis.py"}
    offenders = []
    for path in SRC.rglob("*.py"):
        name = path.relative_to(SRC).as_posix()
        code = "\n".join(line for line in path.read_text().splitlines()
                         if not line.lstrip().startswith(("#", "def ")))
        if name not in allowed and launching.search(code):
            offenders.append(name)
    assert offenders == []
    # the dashboard's throughput wrapper is a definition that calls the session's
    bridge = (SRC / "tui" / "bridge" / "analysis.py").read_text()
    assert "session.throughput(" in bridge and "throughput.run_throughput" not in bridge


# ------------------------------------------------------------------ one baseline rule
def _stored(history: History, tmp_path: Path, run_id: str, color: int, **config) -> RunResult:
    path = tmp_path / f"{run_id}.png"
    Image.new("RGB", (16, 16), (color, 20, 30)).save(path)
    cfg = RunConfig(model="tiny-sd15", steps=3, **config).to_dict()
    result = RunResult(run_id=run_id, config=cfg, image_path=str(path),
                       started_at=f"2026-01-01T00:00:0{len(history.list())}+00:00")
    history.add(result)
    return result


@pytest.mark.parametrize("setting", [
    {"prompt": "a red fox"}, {"negative_prompt": "blurry"}, {"guidance_scale": 3.0},
    {"lora": "some-lora.safetensors"}, {"controlnet": "random"}])
def test_a_baseline_with_other_image_settings_is_never_used(home, setting):
    """Every finder — the session's attach (CLI, sweeps, dashboard runs, the child), the
    History SQL finder, the dashboard's finders — refuses an eager run that differs in an
    image-affecting setting, and takes the one that matches."""
    from diffbench.tui.bridge.analysis import find_image_baseline
    from diffbench.tui.runs import find_baseline as dashboard_find

    history = History(home / "h.sqlite")
    other = _stored(history, home, "other", 10, **setting)
    run = RunResult(run_id="accel", config=RunConfig(model="tiny-sd15", steps=3,
                                                     deepcache=True).to_dict(),
                    image_path=str(home / "other.png"))
    assert not rule.is_baseline_of(other, run)
    assert history.find_baseline(run) is None
    assert rule.find_baseline(run, history) is None
    assert dashboard_find(run, history.list()) is None
    assert find_image_baseline(run, history) is None
    assert Session(history).attach_baseline(run) is False
    assert run.metrics.baseline_run_id is None and run.metrics.psnr_db is None

    same = _stored(history, home, "same", 12)
    for found in (history.find_baseline(run), rule.find_baseline(run, history),
                  dashboard_find(run, history.list()),
                  find_image_baseline(run, history)):
        assert found is not None and found.run_id == same.run_id
    assert Session(history).attach_baseline(run) is True
    assert run.metrics.baseline_run_id == "same"


def test_accelerated_or_unfinished_runs_are_no_baselines(home):
    history = History(home / "h.sqlite")
    _stored(history, home, "compiled", 10, compiler="compile")
    _stored(history, home, "cached", 10, deepcache=True)
    failed = _stored(history, home, "failed", 10)
    failed.status = "failed"
    history.add(failed)
    run = RunResult(run_id="q", config=RunConfig(model="tiny-sd15", steps=3,
                                                 quantize="int8wo").to_dict())
    assert history.find_baseline(run) is None
    assert rule.pick(run, history.list(), image=False) is None


# ------------------------------------------------------------------ the same record
def _cli(argv: list[str]) -> int:
    from diffbench.cli.main import main

    return main(["run", *argv])


async def _dashboard_run(cfg: RunConfig) -> None:
    from fakes import wait_until

    from diffbench.tui.app import DiffbenchApp

    app = DiffbenchApp(export_dir=Path.cwd())  # the real engine (child) and SQLite history
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: app.history is not None)
        before = len(app.history.list())
        app.start_run(cfg)
        await wait_until(pilot, lambda: not app.running and len(app.history.list()) > before,
                         timeout_s=240)


async def test_a_dashboard_run_and_a_cli_run_give_the_same_record(home, capsys):
    """An eager baseline, then the same --deepcache run from the CLI and from the dashboard
    (Pilot, real child-process engine): both rows carry the same fields and PSNR/SSIM
    against the same baseline."""
    assert _cli(TINY) == 0, capsys.readouterr().err
    [base] = History().list()
    assert _cli([*TINY, "--deepcache"]) == 0, capsys.readouterr().err
    cfg = RunConfig(model="tiny-sd15", height=64, width=64, steps=2, warmups=0,
                    deepcache=True)
    await _dashboard_run(cfg)
    dashboard, cli_run = History().list()[:2]
    for run in (dashboard, cli_run):
        assert run.status == "finished" and run.config["deepcache"] is True
        assert run.metrics.baseline_run_id == base.run_id
        assert run.metrics.psnr_db is not None and run.metrics.ssim is not None
        assert run.image_path and Path(run.image_path).is_file()

    def fields(run: RunResult) -> tuple:
        data = run.to_dict()
        metrics = {k for k, v in data.pop("metrics").items() if v is not None}
        return (set(data), metrics, set(data["environment"]), set(data["config"]))

    assert fields(dashboard) == fields(cli_run)
    assert dashboard.config == cli_run.config
    # same seed, same settings, same baseline: the same similarity
    assert dashboard.metrics.psnr_db == pytest.approx(cli_run.metrics.psnr_db)
    assert dashboard.metrics.ssim == pytest.approx(cli_run.metrics.ssim)


# ------------------------------------------------------------------ measurements in a child
def test_check_params_in_a_child_raises_the_childs_error(home):
    with pytest.raises(ConfigError, match="compares an accelerated pipeline"):
        Session(record=False).check_params(RunConfig(model="tiny-sd15"), "guidance_scale")


_THROUGHPUT_IN_THE_DASHBOARD = """
import asyncio, sys
sys.path.insert(0, sys.argv[1])
from fakes import wait_until
from diffbench.tui.app import DiffbenchApp
from diffbench.tui.screens.throughput import ThroughputScreen
from textual.widgets import Input

async def main():
    app = DiffbenchApp()
    async with app.run_test(size=(160, 48)) as pilot:
        for field, value in (("size", "64x64"), ("warmups", "0")):
            app.query_one("#" + field, Input).value = value
        for _ in range(3):
            await pilot.pause()
        await pilot.press("ctrl+y")
        await wait_until(pilot, lambda: isinstance(app.screen, ThroughputScreen))
        screen = app.screen
        screen.query_one("#tp_steps", Input).value = "1,3"
        screen.query_one("#tp_repeats", Input).value = "1"
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: not screen.running and screen.token, timeout_s=240)
        status = str(screen.query_one("#tp_status").render())
        print("RESULT", screen.result is not None, screen.result and screen.result.steps,
              screen.cfg.width, screen.cfg.height)
        print("STATUS", status)
        print("TORCH", "torch" in sys.modules)

asyncio.run(main())
"""


def test_the_dashboard_throughput_fit_runs_in_a_child(home):
    """ctrl+y on the real engine path: the fit comes back, and torch never loaded into the
    dashboard's process (it ran in the worker child)."""
    import os

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-c", _THROUGHPUT_IN_THE_DASHBOARD,
                           str(ROOT / "tests")], capture_output=True, text=True,
                          timeout=300, env=env, cwd=home)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "RESULT True [1, 3] 64 64" in out, out[-2000:]
    assert "TORCH False" in out
