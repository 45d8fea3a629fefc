"""Sweeps spread over several devices (diffbench.engine.multi_device): device specs, two CPU worker
processes and a local Ray instance giving the same results as the serial sweep."""

from __future__ import annotations

import importlib.util

import pytest

from diffbench.engine import multi_device as md
from diffbench.engine.sweep.plan import Sweep
from diffbench.engine.sweep.run import run_sweep
from diffbench.engine.config import RunConfig
from diffbench.engine.errors import ConfigError
from diffbench.engine.history import History
from diffbench.engine.quality import compare_images

GRID = {"size": [32, 48]}  # two cells: one per worker, so each starts one child


@pytest.fixture(autouse=True)
def offline_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))


def _sweep(folder, sweep_id):
    base = RunConfig(model="tiny-sd15", steps=2, warmups=0, device="auto",
                     output_image=str(folder / "img.png"))
    return Sweep(base=base, grid=dict(GRID), sweep_id=sweep_id)


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The reference: the same sweep run serially in this process."""
    from diffbench.engine.runner import run

    folder = tmp_path_factory.mktemp("serial")
    history = History(folder / "h.sqlite")
    outcomes = run_sweep(_sweep(folder, "serial"), history, run)
    assert all(o.status == "finished" for o in outcomes), [o.result.error for o in outcomes]
    return {o.key: o.result for o in outcomes}


def _same_as_serial(outcomes, serial):
    assert [o.key for o in outcomes] == list(serial)
    for outcome in outcomes:
        ref, got = serial[outcome.key], outcome.result
        assert got.status == "finished", got.error
        assert got.metrics.steps_run == ref.metrics.steps_run
        assert (got.config["width"], got.config["height"]) == \
            (ref.config["width"], ref.config["height"])
        psnr, ssim = compare_images(got.image_path, ref.image_path)
        assert psnr >= 60 and ssim > 0.999, (outcome.key, psnr)  # same seed, same image


@pytest.mark.parametrize("spec, count, expected", [
    ("all", 2, ["0", "1"]), ("1,0", 2, ["1", "0"]), ("cpu:3", 0, ["cpu0", "cpu1", "cpu2"]),
])
def test_parse_devices(spec, count, expected):
    assert md.parse_devices(spec, gpu_count=count) == expected


@pytest.mark.parametrize("spec, count, message", [
    ("all", 0, "no GPU is visible"), ("0,0", 2, "twice"), ("2", 2, "GPU 2 not found"),
    ("gpu0", 2, "indices"), ("cpu:0", 0, "worker count"),
])
def test_parse_devices_rejects(spec, count, message):
    with pytest.raises(ConfigError, match=message):
        md.parse_devices(spec, gpu_count=count)


def test_gpu_workers_pin_one_gpu_each(monkeypatch):
    seen = []

    def fake_child(cfg, on_event=None, cancel=None, python=None, timeout_s=None, env=None):
        seen.append(env)
        from diffbench.engine.result import RunResult

        return RunResult(config=cfg.to_dict())

    import diffbench.engine.client

    monkeypatch.setattr(diffbench.engine.client, "run_in_child", fake_child)
    workers = md.device_workers("0,1", gpu_count=2)
    assert [name for name, _ in workers] == ["cuda:0", "cuda:1"]
    for _, run in workers:
        run(RunConfig())
    assert seen == [{"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": "1"}]
    with pytest.raises(ConfigError, match="drop --device cuda:1"):
        md.check_device_setting(RunConfig(device="cuda:1"))


def test_two_cpu_worker_processes_match_the_serial_sweep(tmp_path, serial):
    history = History(tmp_path / "h.sqlite")
    outcomes = run_sweep(_sweep(tmp_path, "two-cpus"), history,
                         workers=md.device_workers("cpu:2"))
    _same_as_serial(outcomes, serial)
    assert {o.device for o in outcomes} == {"cpu0", "cpu1"}
    assert {r.config["sweep_device"] for r in history.list()} == {"cpu0", "cpu1"}


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason=md.RAY_INSTALL_HINT)
def test_local_ray_instance_matches_the_serial_sweep(tmp_path, serial):
    history = History(tmp_path / "h.sqlite")
    try:
        workers = md.ray_workers(workers=2)
        outcomes = run_sweep(_sweep(tmp_path, "ray"), history, workers=workers)
    finally:
        md.shutdown_ray()
    _same_as_serial(outcomes, serial)
    devices = {r.config["sweep_device"] for r in history.list()}
    assert devices and all(d.startswith("ray:") and d.endswith(":cpu") for d in devices)


def test_ray_missing_says_how_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ConfigError, match=r"pip install 'diffbench\[ray\]'"):
        md.ray_workers()
