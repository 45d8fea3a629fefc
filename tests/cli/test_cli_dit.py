"""`diffbench run` with the diffusion transformers, end to end on CPU: tiny-flux (t2i, i2i),
tiny-flux-kontext (edit), tiny-sd3 (t2i, i2i) in a child process as users run it; a saved
FLUX folder by path; the model card's defaults; the record (history row and TOML export)
holding the T5 budget and the guidance used; bad settings refused in one line, exit 2, before
anything loads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from diffbench.cli.main import main as cli
from diffbench.engine.export import read_toml
from diffbench.engine.history import History

from repo_paths import ROOT


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    return tmp_path


# model, extra flags, task, denoiser rows per step (batch 1), guidance used, T5 tokens
CASES = [
    ("tiny-flux", [], "t2i", 1, 3.5, 512),
    ("tiny-flux", ["--input-image", "{png}", "--strength", "0.75"], "i2i", 1, 3.5, 512),
    ("tiny-flux-kontext", ["--input-image", "{png}"], "pix2pix", 1, 3.5, 512),
    ("tiny-sd3", ["--max-sequence-length", "64"], "t2i", 2, 4.5, 64),
    ("tiny-sd3", ["--input-image", "{png}", "--strength", "0.75", "--guidance-scale", "6"], "i2i",
     2, 6.0, 256),
]


@pytest.mark.parametrize("model,flags,task,rows,guidance,tokens", CASES,
                         ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_child_process_run_records_what_the_call_ran(home, input_png, model, flags, task,
                                                     rows, guidance, tokens):
    flags = [f.replace("{png}", input_png) for f in flags]
    proc = subprocess.run(
        [sys.executable, "-m", "diffbench.cli.main", "run", "--model", model, "--steps", "4",
         "--height", "64", "--width", "64", "--warmups", "1", "--output-image", "o.png",
         "--export", "r.toml", *flags],
        capture_output=True, text=True, cwd=home, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Denoiser batch / guidance" in proc.stdout and "FLOPs per step" in proc.stdout
    from PIL import Image

    with Image.open(home / "o.png") as image:
        assert image.size == (64, 64)  # Kontext too: the run's size, not its 1024² default
    [exported] = read_toml(home / "r.toml")
    [stored] = History().list()
    for run in (exported, stored):
        assert run.status == "finished" and run.config["task"] == task
        assert run.config["max_sequence_length"] == tokens
        assert run.config["scheduler"] == "none"  # the model's flow-matching scheduler
        assert run.metrics.guidance_used == guidance
        assert run.metrics.denoiser_batch == rows
        assert run.metrics.tflop_per_step and run.metrics.tflop_per_step > 0
        assert run.metrics.steps_run == (3 if task == "i2i" else 4)


def test_flops_per_step_follow_the_denoiser_batch(home):
    """FLUX-dev: one forward per step, batch 2 doubles it; SD3's CFG batch is 2 per image."""
    from diffbench.engine import families
    from diffbench.engine.models.tiny_dit import TINY_FLUX_TRANSFORMER, TINY_SD3_TRANSFORMER

    def run(*argv):
        assert cli(["run", "--steps", "3", "--height", "64", "--width", "64", "--warmups",
                    "0", "--in-process", "--no-history", "--export", "r.toml", *argv]) == 0
        return read_toml(home / "r.toml")[0].metrics

    flux = families.get("flux")
    one, two = run("--model", "tiny-flux"), run("--model", "tiny-flux", "--batch", "2")
    assert (one.denoiser_batch, two.denoiser_batch) == (1, 2)
    assert one.tflop_per_step == pytest.approx(
        flux.flops_per_step(TINY_FLUX_TRANSFORMER, 64, 64) / 1e12, rel=1e-5)
    assert two.tflop_per_step == pytest.approx(2 * one.tflop_per_step, rel=1e-5)
    sd3 = run("--model", "tiny-sd3")
    assert sd3.denoiser_batch == 2
    assert sd3.tflop_per_step == pytest.approx(
        families.get("sd3").flops_per_step(TINY_SD3_TRANSFORMER, 64, 64,
                                           max_sequence_length=256) / 1e12, rel=1e-5)
    no_cfg = run("--model", "tiny-sd3", "--guidance-scale", "1")
    assert no_cfg.denoiser_batch == 1 and no_cfg.guidance_used == 1.0
    assert no_cfg.tflop_per_step == pytest.approx(sd3.tflop_per_step / 2, rel=1e-5)


def test_model_card_steps_unless_given(home):
    assert cli(["run", "--model", "tiny-flux", "--height", "32", "--width", "32",
                "--warmups", "0", "--in-process", "--no-history", "--export", "r.toml"]) == 0
    [run] = read_toml(home / "r.toml")
    assert run.config["steps"] == 28 and run.metrics.steps_run == 28  # FluxPipeline's 28
    assert cli(["run", "--model", "tiny-flux", "--steps", "30", "--height", "32", "--width",
                "32", "--warmups", "0", "--in-process", "--no-history", "--export",
                "r.toml"]) == 0
    assert read_toml(home / "r.toml")[0].config["steps"] == 30  # a given flag wins


def test_a_saved_flux_folder_runs_by_path(home):
    import torch

    from diffbench.engine.config import RunConfig
    from diffbench.engine.models import load_pipeline

    load_pipeline(RunConfig(model="tiny-flux"), "cpu", torch.float32).save_pretrained(
        str(home / "FLUX-copy"))
    code = cli(["run", "--model", str(home / "FLUX-copy"), "--steps", "3", "--height", "64",
                "--width", "64", "--warmups", "0", "--in-process", "--export", "r.toml"])
    assert code == 0
    [run] = read_toml(home / "r.toml")
    assert run.status == "finished" and run.metrics.guidance_used == 3.5
    assert run.config["max_sequence_length"] == 512 and run.metrics.denoiser_batch == 1


BAD = [
    (["--model", "synthetic-flux-schnell", "--guidance-scale", "3.5"],
     "schnell is not guidance-distilled"),
    (["--model", "tiny-flux", "--height", "72"], "multiple of 16"),
    (["--model", "tiny-flux", "--scheduler", "DDIMScheduler"], "needs a flow-matching"),
    (["--model", "tiny-flux", "--deepcache"], "deepcache works on UNets"),
    (["--model", "tiny-sd15", "--max-sequence-length", "128"], "has no T5 encoder"),
    (["--model", "tiny-flux", "--max-sequence-length", "600"],
     "max_sequence_length must be between 1 and 512"),
    (["--model", "tiny-flux", "--text-encoder-quant", "fp8"], "needs a CUDA GPU"),
    (["--model", "tiny-flux", "--cpu-offload"], "this run is on the CPU"),
    (["--model", "tiny-flux-kontext", "--task", "i2i", "--input-image", "{png}"],
     "task 'i2i' does not fit a flux_kontext model"),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[" ".join(a[1:]) for a, _ in BAD])
def test_bad_transformer_settings_exit_2_with_one_line_before_loading(argv, message, home,
                                                                      capsys, input_png,
                                                                      monkeypatch):
    from diffbench.engine.models import loading

    monkeypatch.setattr(loading, "load_pipeline", lambda *a, **k: pytest.fail("loaded"))
    argv = [a.replace("{png}", input_png) for a in argv]
    code = cli(["run", "--in-process", "--export", "r.toml", *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("diffbench: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not (home / "r.toml").exists() and History().count() == 0
