"""Transformer accelerators end to end through `diffbench run` (in process, the real runner,
session, history and export) on a tiny FLUX pipeline: the step cache's counts reach the
record and the summary, its image is compared with the eager run's, and the lossless options
run to the end."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

import dit_models as dm  # noqa: E402

from diffbench.cli.main import main as cli  # noqa: E402
from diffbench.engine.export import read_toml  # noqa: E402
from diffbench.engine.history import History  # noqa: E402


@pytest.fixture
def model(tmp_path, monkeypatch):
    """A fresh DIFFBENCH_HOME and working folder; the tiny FLUX model's name."""
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return dm.register_stand_in(monkeypatch)


def run(model, *extra):
    return cli(["run", "--model", model, "--scheduler", "none", "--steps", "8", "--height",
                "128", "--width", "128", "--warmups", "1", "--in-process", *extra])


def test_cached_run_records_steps_computed_skipped_and_psnr_vs_eager(model, tmp_path, capsys):
    assert run(model, "--output-image", "eager.png") == 0
    [eager] = History().list()
    capsys.readouterr()
    assert run(model, "--cache", "first-block", "--cache-threshold", "0.2",
               "--output-image", "cached.png", "--export", "r.toml") == 0
    out = capsys.readouterr().out
    [cached] = read_toml(tmp_path / "r.toml")
    m = cached.metrics
    assert m.steps_computed + m.steps_skipped == m.steps_run == 8 and m.steps_skipped >= 1
    assert "Steps computed / skipped (step cache)" in out
    assert f"{m.steps_computed} / {m.steps_skipped}" in out
    assert m.baseline_run_id == eager.run_id and m.psnr_db is not None and 0 < m.ssim <= 1
    stored = {r.run_id: r for r in History().list()}[cached.run_id]
    assert (stored.metrics.steps_computed, stored.metrics.steps_skipped) == \
        (m.steps_computed, m.steps_skipped)


def test_cache_without_a_step_count_says_n_a(model, capsys):
    assert run(model, "--cache", "pab") == 0
    out = capsys.readouterr().out
    assert "n/a (pab gives no step count)" in out
    [stored] = History().list()
    assert stored.metrics.steps_skipped is None and stored.metrics.steps_run == 8


def test_lossless_transformer_options_run_to_the_end(model, capsys):
    assert run(model, "--fuse-qkv", "--attention-backend", "flash", "--compiler", "compile",
               "--compiler-config", '{"regional": true, "backend": "eager"}') == 0
    [stored] = History().list()
    assert stored.status == "finished" and stored.metrics.steps_run == 8
    assert stored.config["attention_backend"] == "flash" and stored.config["fuse_qkv"]


def test_unet_only_and_gpu_only_settings_refuse_before_loading(model, capsys, monkeypatch):
    from diffbench.engine import models

    monkeypatch.setattr(models, "load_pipeline", lambda *a, **k: pytest.fail("loaded"))
    for extra, words in ((["--deepcache"], "deepcache works on UNets"),
                         (["--attention-backend", "cudnn"], "needs a CUDA GPU"),
                         (["--quantize", "fp8dq"], "float8 needs a CUDA GPU")):
        assert run(model, *extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err
    assert History().list() == []
