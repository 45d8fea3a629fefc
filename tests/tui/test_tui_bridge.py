"""The dashboard's engine bridge and messages: translation, replaceable progress, failures."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from diffbench.engine import events as ev
from diffbench.engine.errors import ModelNotFoundError
from diffbench.engine.result import RunResult
from diffbench.tui.bridge import store
from diffbench.tui.bridge.events import EventTranslator
from diffbench.tui.bridge.running import run_engine
from diffbench.tui import messages as msg
from diffbench.tui.runs import compare_rows, find_baseline, order_for_compare
from fakes import FakeEngine
from diffbench.tui.widgets.settings import parse_size

from repo_paths import ROOT


def test_dashboard_imports_without_torch():
    code = ("import sys; import diffbench.tui.app, diffbench.tui.bridge.analysis, "
            "diffbench.tui.bridge.store; "
            "print('torch' in sys.modules, 'diffusers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_steps_carry_live_it_per_s_eta_and_recent_history():
    posted = []
    translate = EventTranslator(posted.append, token=7)
    for i, ms in enumerate([300.0, 100.0, 100.0, 200.0], start=1):
        translate(ev.StepFinished("measured", i, 10, ms))
    last = posted[-1]
    assert isinstance(last, msg.StepProgress) and last.token == 7
    assert last.recent_ms == (100.0, 100.0, 200.0)  # step 1 (prompt encoding) left out
    # OneDiff's definition: steps 2..4 (3 steps) in 0.4 s -> 7.5 it/s; 6 steps left
    assert last.live_it_per_s == pytest.approx(3 / 0.4)
    assert last.eta_s == pytest.approx(6 / (3 / 0.4))
    assert posted[0].live_it_per_s is None  # one step gives no rate yet
    # a new call starts a new history
    translate(ev.StepFinished("warmup", 1, 5, 50.0, warmup_index=2))
    translate(ev.StepFinished("warmup", 2, 5, 40.0, warmup_index=2))
    assert posted[-1].recent_ms == (40.0,)


def test_step_progress_replaces_only_its_own_run():
    a1, a2 = msg.StepProgress(1, "measured", 1, 9, 1.0), msg.StepProgress(1, "measured", 2, 9, 1.0)
    b = msg.StepProgress(2, "measured", 1, 9, 1.0)
    assert a2.can_replace(a1)
    assert not b.can_replace(a1)
    assert not a2.can_replace(msg.LogLine(1, "info", "x"))
    # a compile update with a log text is never swallowed by a newer counter
    with_text = msg.CompileUpdate(1, 1, 1, 1, 0, 0.1, "compiled UNet")
    assert not msg.CompileUpdate(1, 2, 2, 2, 0, 0.2).can_replace(with_text)
    assert msg.CompileUpdate(1, 2, 2, 2, 0, 0.2).can_replace(
        msg.CompileUpdate(1, 1, 1, 1, 0, 0.1))


def test_run_engine_posts_phases_then_exactly_one_end():
    from diffbench.engine.config import RunConfig

    posted = []
    run_engine(RunConfig(steps=3, compiler="compile"), posted.append, 3, threading.Event(),
               engine=FakeEngine())
    ends = [m for m in posted if isinstance(m, msg.RunEnded)]
    assert len(ends) == 1 and posted[-1] is ends[0]
    assert ends[0].status == "finished" and isinstance(ends[0].result, RunResult)
    phases = [m.phase for m in posted if isinstance(m, msg.PhaseChanged) and not m.finished]
    assert phases == ["load", "accelerate", "warmup", "measure", "save"]
    assert any(isinstance(m, msg.CompileUpdate) for m in posted)


def test_engine_errors_end_the_run_in_one_line():
    from diffbench.engine.config import RunConfig

    def bad_input(cfg, on_event, cancel):
        raise ModelNotFoundError("model 'nope' is not built in, not a folder, not cached")

    def bug(cfg, on_event, cancel):
        raise KeyError("unet")

    for engine, expected in ((bad_input, "model 'nope' is not built in"),
                             (bug, "KeyError: 'unet'")):
        posted = []
        run_engine(RunConfig(), posted.append, 1, threading.Event(), engine=engine)
        assert len(posted) == 1 and posted[0].status == "failed"
        assert expected in posted[0].reason and "\n" not in posted[0].reason


def test_parse_size():
    assert parse_size("native") == (None, None)
    assert parse_size(" 512 ") == (512, 512)
    assert parse_size("768x512") == (768, 512)
    for bad in ("512x", "x", "big", "1x2x3"):
        with pytest.raises(Exception, match="WIDTHxHEIGHT"):
            parse_size(bad)


def _run(run_id, compiler, inference_s, **config):
    cfg = {"model": "tiny-sd15", "task": "t2i", "steps": 4, "height": 64, "width": 64,
           "compiler": compiler, **config}
    result = RunResult(run_id=run_id, config=cfg)
    result.metrics.inference_s = inference_s
    return result


def test_baseline_is_the_newest_eager_run_with_the_same_settings():
    compiled = _run("c", "compile", 1.0)
    other_size = _run("x", "none", 3.0, height=128, width=128)
    eager_old, eager_new = _run("e1", "none", 4.0), _run("e2", "none", 2.0)
    assert find_baseline(compiled, [other_size, eager_new, eager_old]).run_id == "e2"
    assert find_baseline(eager_new, [eager_old]) is None  # eager runs have no baseline
    assert order_for_compare(compiled, eager_new) == (eager_new, compiled)
    rows = {label: (a, b, ratio) for label, a, b, ratio in compare_rows(eager_new, compiled)}
    assert rows["inference"][2] == "2.00x faster"
    assert rows["accelerator"] == ("none", "compile", "differs")


def test_profiles_listed_and_loaded_from_the_shipped_files(tmp_path):
    names = store.list_profiles()
    assert "tiny-sd15" in names
    settings = store.load_profile("tiny-sd15")
    assert settings["model"] == "tiny-sd15"
    from diffbench.engine.config import RunConfig

    path = store.save_profile(RunConfig(model="tiny-sdxl", steps=7, compiler="compile"),
                               tmp_path / "mine.toml")
    again = store.read_profile_file(path)
    assert (again["model"], again["steps"], again["compiler"]) == ("tiny-sdxl", 7, "compile")
    assert RunConfig(**again).steps == 7


def test_cached_hub_pipelines_are_offered_as_models(tmp_path, monkeypatch):
    from diffbench.tui.checks import cached_hub_models

    pipeline = tmp_path / "models--owner--sdxl-pipe" / "snapshots" / "abc123"
    pipeline.mkdir(parents=True)
    (pipeline / "model_index.json").write_text("{}")
    (tmp_path / "models--owner--a-text-model" / "snapshots" / "def").mkdir(parents=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert cached_hub_models() == ["owner/sdxl-pipe"]


def test_quantize_modes_report_why_they_cannot_run():
    from diffbench.tui.checks import quantize_availability

    modes = quantize_availability("cpu")
    assert modes["none"] == (True, "")
    for mode, (ok, reason) in modes.items():
        assert ok or reason  # never unavailable without saying why


def test_a_dashboard_run_is_a_running_row_until_it_ends(tmp_path):
    """A dashboard killed mid-run (SIGKILL, dropped SSH) must leave a trace: the run is in the
    history as "running", owned by this process, while the engine works; its result replaces
    that row (same run id, one row)."""
    from diffbench.engine.config import RunConfig
    from diffbench.engine.history import History

    history = History(tmp_path / "history.sqlite")
    seen_during = []

    def engine(cfg, on_event, cancel):
        seen_during.extend((r.run_id, r.status) for r in history.list())
        return FakeEngine()(cfg, on_event, cancel)

    posted = []
    run_engine(RunConfig(steps=2), posted.append, 1, threading.Event(), engine=engine,
               history=history)
    [ended] = [m for m in posted if isinstance(m, msg.RunEnded)]
    assert ended.status == "finished" and not getattr(ended, "save_error", None)
    assert seen_during == [(ended.result.run_id, "running")]
    assert [(r.run_id, r.status) for r in history.list()] == [(ended.result.run_id,
                                                                "finished")]


def test_a_dashboard_run_that_raises_leaves_a_failed_row(tmp_path):
    from diffbench.engine.config import RunConfig
    from diffbench.engine.history import History

    history = History(tmp_path / "history.sqlite")

    def bug(cfg, on_event, cancel):
        raise KeyError("unet")

    posted = []
    run_engine(RunConfig(), posted.append, 1, threading.Event(), engine=bug, history=history)
    [row] = history.list()
    assert row.status == "failed" and "KeyError: 'unet'" in row.error
    assert posted[-1].status == "failed"
