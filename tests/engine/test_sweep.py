"""Sweep grid, resume, failure handling and summary (diffbench.engine.sweep) with a scripted run
function; tests/engine/test_sweep_runs.py drives the real runner."""

from __future__ import annotations

import threading

import pytest

from diffbench.engine.sweep.grid import cell_key, load_sweep_file, parse_grid
from diffbench.engine.sweep.parallel import RETIRE_AFTER_FAILURES
from diffbench.engine.sweep.plan import Sweep
from diffbench.engine.sweep.report import split_axes, summarise, to_toml_dict, write_toml
from diffbench.engine.sweep.run import run_sweep
from diffbench.engine.config import RunConfig
from diffbench.engine.errors import AcceleratorUnavailableError, ConfigError
from diffbench.engine.history import History
from diffbench.engine.result import Metrics, RunResult


class ScriptedRun:
    """A run function whose it/s follows the config: compile doubles it, size lowers it.

    ``fail`` names cell configs (predicate) that come back failed; ``crash`` ones raise.
    """

    def __init__(self, fail=None, crash=None):
        self.calls: list[RunConfig] = []
        self.fail = fail or (lambda cfg: False)
        self.crash = crash or (lambda cfg: False)

    def __call__(self, cfg, on_event=None, cancel=None):
        self.calls.append(cfg)
        if self.crash(cfg):
            raise RuntimeError("CUDA error: an illegal memory access")
        config = cfg.to_dict()
        if self.fail(cfg):
            return RunResult(status="failed", config=config, error="out of memory")
        ips = 1000.0 / (cfg.height or 128) * (2.0 if cfg.compiler == "compile" else 1.0)
        return RunResult(config=config, metrics=Metrics(
            it_per_s=ips, warmup_s=0.5, peak_rss_gib=0.25, steps_run=cfg.steps))


@pytest.fixture
def history(tmp_path):
    return History(tmp_path / "history.sqlite")


def _sweep(**kw):
    grid = kw.pop("grid", {"compiler": ["none", "compile"], "height": [64, 128, 256]})
    return Sweep(base=RunConfig(steps=3, width=64), grid=grid, **kw)


def test_parse_grid_types_values_by_field():
    grid = parse_grid(["compiler=none,compile", "height=256,512,256", "size=64,96x32",
                       "guidance_scale=none,7.5", "deepcache=false,true",
                       "extra_call_kwargs={\"eta\": 0.5}"])
    assert grid == {"compiler": ["none", "compile"], "height": [256, 512],
                    "size": ["64x64", "96x32"], "guidance_scale": [None, 7.5],
                    "deepcache": [False, True], "extra_call_kwargs": [{"eta": 0.5}]}


@pytest.mark.parametrize("spec, message", [
    ("height", "FIELD=V1"), ("colour=red", "not a run setting"), ("steps=four", "valid int"),
    ("height=", "no values"), ("size=big", "size must be"), ("timeout_s=1,2", "controls the run"),
])
def test_parse_grid_rejects_bad_specs_in_one_line(spec, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_grid([spec])
    assert "\n" not in str(info.value)


def test_cells_are_the_product_in_grid_order_and_configs_apply_size():
    sweep = Sweep(base=RunConfig(), grid={"compiler": ["none", "compile"],
                                          "size": ["64x32", "128"]})
    assert [cell_key(c) for c in sweep.cells()] == [
        "compiler=none,size=64x32", "compiler=none,size=128x128",
        "compiler=compile,size=64x32", "compiler=compile,size=128x128"]
    cfg = sweep.config_for(sweep.cells()[0])
    assert (cfg.width, cfg.height, cfg.compiler) == (64, 32, "none")
    assert sweep.baseline == {"compiler": "none"}


def test_invalid_cell_is_bad_input_naming_the_cell(history):
    sweep = Sweep(base=RunConfig(), grid={"height": [64, 65]})
    with pytest.raises(ConfigError, match=r"cell height=65: height must be a multiple of 8"):
        run_sweep(sweep, history, ScriptedRun())
    assert history.list() == []  # nothing ran


def test_sweep_records_every_cell_tagged_and_computes_ratio(history):
    run = ScriptedRun()
    sweep = _sweep()
    outcomes = run_sweep(sweep, history, run, attach_baseline=False)
    assert [o.status for o in outcomes] == ["finished"] * 6
    assert [(c.compiler, c.height) for c in run.calls] == [
        ("none", 64), ("none", 128), ("none", 256),
        ("compile", 64), ("compile", 128), ("compile", 256)]
    stored = history.list()
    assert len(stored) == 6
    assert {r.config["sweep_id"] for r in stored} == {sweep.sweep_id}
    assert {r.config["sweep_cell"] for r in stored} == {o.key for o in outcomes}
    rows = {r["key"]: r for r in summarise(sweep, outcomes)}
    assert rows["compiler=compile,height=128"]["ratio"] == pytest.approx(2.0)
    assert rows["compiler=none,height=256"]["ratio"] == pytest.approx(1.0)
    assert rows["compiler=none,height=64"]["peak_gib"] == 0.25


def test_interrupted_sweep_resumes_without_rerunning_finished_cells(history):
    grid = {"compiler": ["none", "compile", "compile-max-autotune"], "height": [64, 128, 256]}
    stop = threading.Event()
    done = []

    def stop_after_four(outcome, total):
        done.append(outcome.key)
        if len(done) == 4:
            stop.set()  # what the first Ctrl-C does

    first = ScriptedRun()
    outcomes = run_sweep(_sweep(grid=grid), history, first, stop=stop,
                         on_cell_done=stop_after_four, attach_baseline=False)
    assert len(first.calls) == 4
    assert sum(o.result is None for o in outcomes) == 5

    second = ScriptedRun()
    resumed = []
    outcomes = run_sweep(_sweep(grid=grid), history, second, attach_baseline=False,
                         on_cell_done=lambda o, n: resumed.append(o.resumed))
    ran = [cell_key({"compiler": c.compiler, "height": c.height}) for c in second.calls]
    assert ran == [o.key for o in outcomes[4:]]  # only the cells not finished before
    assert resumed.count(True) == 4 and resumed.count(False) == 5
    assert all(o.status == "finished" for o in outcomes)
    assert len(history.list()) == 9
    # a third pass has nothing left to do
    third = ScriptedRun()
    run_sweep(_sweep(grid=grid), history, third, attach_baseline=False)
    assert third.calls == []


def test_failed_and_crashed_cells_are_recorded_and_the_sweep_goes_on(history):
    run = ScriptedRun(fail=lambda c: c.height == 128 and c.compiler == "none",
                      crash=lambda c: c.height == 256 and c.compiler == "compile")
    sweep = _sweep()
    outcomes = run_sweep(sweep, history, run, attach_baseline=False)
    status = {o.key: o.status for o in outcomes}
    assert status["compiler=none,height=128"] == "failed"
    assert status["compiler=compile,height=256"] == "failed"
    assert list(status.values()).count("finished") == 4
    failed = history.list(status="failed")
    assert {r.error for r in failed} == {"out of memory",
                                         "RuntimeError: CUDA error: an illegal memory access"}
    rows = {r["key"]: r for r in summarise(sweep, outcomes)}
    assert "ratio" not in rows["compiler=compile,height=128"]  # its baseline cell failed
    # a resume retries only the failed cells
    retry = ScriptedRun()
    run_sweep(sweep, history, retry, attach_baseline=False)
    assert sorted((c.compiler, c.height) for c in retry.calls) == [("compile", 256),
                                                                   ("none", 128)]


def test_unavailable_accelerator_fails_its_cell_only(history):
    def preflight(cfg):
        if cfg.compiler == "cudagraph":
            raise AcceleratorUnavailableError("CUDA graphs need a CUDA device")

    run = ScriptedRun()
    sweep = _sweep(grid={"compiler": ["none", "cudagraph"], "height": [64]})
    outcomes = run_sweep(sweep, history, run, preflight=preflight, attach_baseline=False)
    assert [o.status for o in outcomes] == ["finished", "failed"]
    assert "CUDA graphs need a CUDA device" in outcomes[1].result.error
    assert len(run.calls) == 1


def test_a_different_grid_is_a_different_sweep(history):
    a, b = _sweep(), _sweep(grid={"compiler": ["none"], "height": [64]})
    assert a.sweep_id != b.sweep_id and a.sweep_id == _sweep().sweep_id
    run_sweep(a, history, ScriptedRun(), attach_baseline=False)
    run = ScriptedRun()
    run_sweep(b, history, run, attach_baseline=False)
    assert len(run.calls) == 1  # b's cell ran although a has the same settings


def test_axes_and_toml_summary(tmp_path, history):
    sweep = _sweep()
    assert split_axes(sweep) == (["compiler"], ["height"])
    assert split_axes(sweep, rows=["height"]) == (["height"], ["compiler"])
    with pytest.raises(ConfigError, match="not a grid field"):
        split_axes(sweep, rows=["steps"])
    outcomes = run_sweep(sweep, history, ScriptedRun(), attach_baseline=False)
    path = write_toml(str(tmp_path / "sweep.toml"),
                      to_toml_dict(sweep, outcomes, ["compiler"], ["height"]))
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    data = tomllib.loads(open(path).read())
    assert data["sweep"]["id"] == sweep.sweep_id
    assert data["sweep"]["grid"]["height"] == [64, 128, 256]
    assert len(data["cells"]) == 6
    compiled = next(c for c in data["cells"] if c["key"] == "compiler=compile,height=64")
    assert compiled["ratio"] == pytest.approx(2.0)
    assert compiled["values"] == {"compiler": "compile", "height": 64}


def test_sweep_file_round_trip(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[base]\nmodel = "tiny-sd15"\nsteps = 2\n[grid]\ncompiler = ["none", '
                    '"compile"]\nsize = [64, "96x64"]\n[sweep]\nrows = ["size"]\n')
    base, grid, options = load_sweep_file(str(path))
    assert base == {"model": "tiny-sd15", "steps": 2}
    assert grid == {"compiler": ["none", "compile"], "size": ["64x64", "96x64"]}
    assert options == {"rows": ["size"]}
    path.write_text("[grid]\nheight = [64]\n[extra]\n")
    with pytest.raises(ConfigError, match="unknown table"):
        load_sweep_file(str(path))
    with pytest.raises(ConfigError, match="cannot read"):
        load_sweep_file(str(tmp_path / "missing.toml"))


def test_per_cell_output_images_do_not_overwrite(tmp_path):
    sweep = Sweep(base=RunConfig(output_image=str(tmp_path / "out.png")),
                  grid={"compiler": ["none", "compile"]})
    paths = {sweep.config_for(c).output_image for c in sweep.cells()}
    assert paths == {str(tmp_path / "out-compiler_none.png"),
                     str(tmp_path / "out-compiler_compile.png")}


# ------------------------------------------------------------------ several devices
def test_parallel_workers_share_cells_and_history(history):
    import time

    def slow(run):
        def call(cfg, on_event=None, cancel=None):
            time.sleep(0.05)  # long enough that both workers are busy at once
            return run(cfg, on_event, cancel)
        return call

    a, b = ScriptedRun(), ScriptedRun()
    sweep = _sweep()
    outcomes = run_sweep(sweep, history, workers=[("dev0", slow(a)), ("dev1", slow(b))],
                         attach_baseline=False)
    assert all(o.status == "finished" for o in outcomes)
    assert a.calls and b.calls and len(a.calls) + len(b.calls) == 6
    assert {o.device for o in outcomes} == {"dev0", "dev1"}
    assert {r.config["sweep_device"] for r in history.list()} == {"dev0", "dev1"}
    serial = summarise(sweep, run_sweep(_sweep(grid=sweep.grid, sweep_id="serial"),
                                        history, ScriptedRun(), attach_baseline=False))
    parallel = summarise(sweep, outcomes)
    assert [(r["key"], r["it_per_s"], r.get("ratio")) for r in serial] == \
        [(r["key"], r["it_per_s"], r.get("ratio")) for r in parallel]


def test_broken_device_is_retired_and_its_cells_rerun_elsewhere(history):
    import time

    scripted = ScriptedRun()

    def good(cfg, on_event=None, cancel=None):
        # slower than a crash: the broken device fails its cells before the good one is done
        time.sleep(0.05)
        return scripted(cfg, on_event, cancel)

    broken = ScriptedRun(crash=lambda cfg: True)
    notices = []
    outcomes = run_sweep(_sweep(), history, workers=[("bad", broken), ("good", good)],
                         attach_baseline=False, on_notice=notices.append)
    assert [o.status for o in outcomes] == ["finished"] * 6
    assert {o.device for o in outcomes} == {"good"}
    assert len(broken.calls) <= RETIRE_AFTER_FAILURES
    assert notices == [f"bad failed {RETIRE_AFTER_FAILURES} cells in a row; no more cells "
                       f"go to it"]
    retried = [o for o in outcomes if o.result.notices]
    assert retried and "failed on bad" in retried[0].result.notices[0]
    assert len(history.list()) == 6  # failures that were retried are not recorded twice


def test_cell_failing_on_every_device_is_recorded_once(history):
    oom = lambda cfg: cfg.height == 256  # noqa: E731 - fails everywhere
    outcomes = run_sweep(_sweep(), history, workers=[("d0", ScriptedRun(fail=oom)),
                                                     ("d1", ScriptedRun(fail=oom))],
                         attach_baseline=False)
    failed = [o for o in outcomes if o.status == "failed"]
    assert sorted(o.key for o in failed) == ["compiler=compile,height=256",
                                             "compiler=none,height=256"]
    assert len(history.list(status="failed")) == 2
    assert all(o.status == "finished" for o in outcomes if o.cell["height"] != 256)


def test_late_baseline_is_attached_after_the_sweep(tmp_path, history):
    import numpy as np
    from PIL import Image

    def imaging(cfg, on_event=None, cancel=None):
        result = ScriptedRun()(cfg)
        image = np.full((8, 8, 3), 100 if cfg.compiler == "none" else 103, dtype=np.uint8)
        image[0, 0] = 0
        result.image_path = str(tmp_path / f"{cfg.compiler}.png")
        Image.fromarray(image).save(result.image_path)
        return result

    # the compiled cell comes first: its baseline does not exist yet when it finishes
    sweep = _sweep(grid={"compiler": ["compile", "none"], "height": [64]})
    outcomes = run_sweep(sweep, history, imaging)
    compiled = outcomes[0].result
    assert compiled.metrics.baseline_run_id == outcomes[1].result.run_id
    assert history.get(compiled.run_id).metrics.psnr_db == pytest.approx(
        compiled.metrics.psnr_db)


def test_cells_save_images_next_to_the_history_by_default(tmp_path, history):
    run = ScriptedRun()
    sweep = _sweep(grid={"compiler": ["none", "compile"]})
    run_sweep(sweep, history, run, attach_baseline=False)
    folder = tmp_path / "images" / sweep.sweep_id
    assert [c.output_image for c in run.calls] == [str(folder / "compiler_none.png"),
                                                   str(folder / "compiler_compile.png")]
    assert folder.is_dir()
