"""Image sanity flags and baseline similarity (diffbench.engine.quality)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from diffbench.engine import quality
from diffbench.engine.result import RunResult


def _noise(seed: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


# ------------------------------------------------------------------ image_flag
def test_sane_noise_image_has_no_flag():
    assert quality.image_flag([Image.fromarray(_noise(0))]) is None


def test_safety_checker_black_image_is_flagged_black():
    black = Image.new("RGB", (64, 64), (0, 0, 0))
    assert quality.image_flag([black]) == "black"
    assert quality.image_flag(np.zeros((2, 8, 8, 3), dtype=np.float32)) == "black"


def test_constant_grey_image_is_flagged_constant():
    grey = Image.new("RGB", (16, 16), (128, 128, 128))
    assert quality.image_flag(grey) == "constant"
    assert quality.image_flag(np.full((8, 8, 3), 0.5, dtype=np.float32)) == "constant"


def test_nan_in_float_output_or_latents_is_flagged_nan():
    array = np.random.default_rng(1).random((1, 8, 8, 3)).astype(np.float32)
    assert quality.image_flag(array) is None
    array[0, 3, 3, 1] = np.nan
    assert quality.image_flag(array) == "nan"
    # PIL conversion turns NaN into black; the latents still tell the real cause
    latents = np.zeros((1, 4, 8, 8), dtype=np.float32)
    latents[0, 0, 0, 0] = np.inf
    black = Image.new("RGB", (8, 8))
    assert quality.image_flag([black], latents=latents) == "nan"


def test_nan_in_torch_latents_is_flagged():
    torch = pytest.importorskip("torch")
    latents = torch.zeros(1, 4, 8, 8, dtype=torch.float16)
    assert quality.image_flag([Image.fromarray(_noise(2))], latents=latents) is None
    latents[0, 1, 2, 3] = float("nan")
    assert quality.image_flag([Image.fromarray(_noise(2))], latents=latents) == "nan"


def test_one_bad_image_in_a_batch_flags_the_batch():
    images = [Image.fromarray(_noise(3)), Image.new("RGB", (32, 32))]
    assert quality.image_flag(images) == "black"
    assert quality.image_flag([]) is None


# ------------------------------------------------------------------ compare_images
def test_identical_images_give_capped_psnr_and_ssim_one():
    image = Image.fromarray(_noise(4))
    psnr, ssim = quality.compare_images(image, image.copy())
    assert psnr == quality.PSNR_IDENTICAL_DB and math.isfinite(psnr)
    assert ssim == pytest.approx(1.0)


def test_similarity_falls_as_noise_grows():
    base = _noise(5, 64).astype(np.int16)
    rng = np.random.default_rng(6)
    small = np.clip(base + rng.integers(-3, 4, base.shape), 0, 255).astype(np.uint8)
    large = np.clip(base + rng.integers(-60, 61, base.shape), 0, 255).astype(np.uint8)
    base = base.astype(np.uint8)
    psnr_small, ssim_small = quality.compare_images(small, base)
    psnr_large, ssim_large = quality.compare_images(large, base)
    assert 35 < psnr_small < quality.PSNR_IDENTICAL_DB
    assert psnr_large < psnr_small - 15
    assert ssim_large < ssim_small <= 1.0
    # the PSNR definition: 10 log10(255^2 / MSE)
    mse = np.mean((large.astype(float) - base.astype(float)) ** 2)
    assert psnr_large == pytest.approx(10 * math.log10(255 ** 2 / mse), rel=1e-9)


def test_compare_reads_png_paths_and_rejects_size_mismatch(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(_noise(7)).save(a)
    Image.fromarray(_noise(7)).save(b)
    assert quality.compare_images(str(a), str(b))[1] == pytest.approx(1.0)
    Image.fromarray(_noise(7, 16)).save(b)
    with pytest.raises(ValueError, match="differ in size"):
        quality.compare_images(str(a), str(b))


# ------------------------------------------------------------------ attach_baseline
class _ListHistory:
    """A history with only list(): exercises attach_baseline's own matching."""

    def __init__(self, results):
        self.results = results

    def list(self, model=None, compiler=None, status=None, limit=None):
        return [r for r in self.results
                if (model is None or r.config.get("model") == model)
                and (compiler is None or r.config.get("compiler") == compiler)
                and (status is None or r.status == status)]


def _result(tmp_path, name, image, **config):
    path = tmp_path / f"{name}.png"
    Image.fromarray(image).save(path)
    cfg = {"model": "tiny-sd15", "seed": 1, "steps": 4, "height": 32, "width": 32,
           "compiler": "none", "quantize": "none", "deepcache": False, "warmups": 1}
    cfg.update(config)
    return RunResult(run_id=name, config=cfg, image_path=str(path))


def test_attach_baseline_matches_settings_and_seed(tmp_path):
    image = _noise(8)
    noisy = np.clip(image.astype(int) + 5, 0, 255).astype(np.uint8)
    other_seed = _result(tmp_path, "other_seed", _noise(9), seed=2)
    baseline = _result(tmp_path, "base", image, warmups=3)  # warmups do not change the image
    compiled = _result(tmp_path, "compiled", noisy, compiler="compile")
    history = _ListHistory([other_seed, baseline])
    assert quality.attach_baseline(compiled, history) is True
    assert compiled.metrics.baseline_run_id == "base"
    assert 20 < compiled.metrics.psnr_db < quality.PSNR_IDENTICAL_DB
    assert 0 < compiled.metrics.ssim < 1


def test_attach_baseline_skips_baselines_and_unmatched_runs(tmp_path):
    baseline = _result(tmp_path, "base", _noise(10))
    history = _ListHistory([baseline])
    again = _result(tmp_path, "again", _noise(10))
    assert quality.attach_baseline(again, history) is False  # a baseline has no baseline
    other_steps = _result(tmp_path, "steps8", _noise(10), compiler="compile", steps=8)
    assert quality.attach_baseline(other_steps, history) is False
    assert other_steps.metrics.psnr_db is None and other_steps.metrics.baseline_run_id is None
    failed = _result(tmp_path, "failed", _noise(10), compiler="compile")
    failed.status = "failed"
    assert quality.attach_baseline(failed, history) is False


def test_attach_baseline_prefers_history_find_baseline_and_notes_bad_images(tmp_path):
    baseline = _result(tmp_path, "base", _noise(11, 16))

    class Finder:
        def find_baseline(self, result):
            return baseline

    run = _result(tmp_path, "run", _noise(11, 32), compiler="compile")
    assert quality.attach_baseline(run, Finder()) is False
    assert any("differ in size" in n for n in run.notices)
