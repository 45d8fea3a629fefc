"""Image quality checks: sanity flags for every run and similarity to the eager baseline.

- :func:`image_flag` — NaN outputs, all-black images (the safety checker's replacement image
  included) and constant images; cheap, runs on every result.
- :func:`compare_images` — PSNR (dB) and SSIM of one image against another, computed with
  scikit-image (``skimage.metrics.peak_signal_noise_ratio`` / ``structural_similarity``).
- :func:`attach_baseline` — find the run's baseline in the history (same model, settings and
  seed, compiler none, no accelerator, finished) and fill ``Metrics.psnr_db`` / ``ssim`` /
  ``baseline_run_id``.

numpy and scikit-image are imported lazily so importing this module stays cheap; scikit-image
is optional (``pip install 'diffbench[quality]'``): without it a run gets a one-line notice
instead of PSNR/SSIM.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any, Iterable, Optional

from diffbench.engine import catalog

if TYPE_CHECKING:  # pragma: no cover
    from diffbench.engine.result import RunResult

#: Flags returned by :func:`image_flag`, most severe first.
FLAGS = ("nan", "black", "constant")

#: PSNR stored for identical images. The true value is +inf, which JSON cannot carry; 200 dB is
#: above any finite 8-bit PSNR (a one-level difference in one pixel of an 8192x8192 RGB image
#: is ~131 dB), so ``psnr_db >= PSNR_IDENTICAL_DB`` reads as "bit-identical".
PSNR_IDENTICAL_DB = 200.0

#: An image whose every pixel is at most this (0..255 scale) is "black". The safety checker
#: returns exact zeros; a few levels of slack catch near-black decodes of broken latents.
BLACK_MAX_LEVEL = 2.0
#: An image whose pixel range (max - min, 0..255 scale) is at most this is "constant".
CONSTANT_MAX_RANGE = 1.0


def _as_array(image: Any):
    """One image as a float64 numpy array on the 0..255 scale, shape (H, W[, C]).

    Accepts a PIL image, a numpy array (uint8 0..255, or float 0..1 as diffusers' "np" output
    type), or a torch tensor (moved to CPU). Float arrays whose values all lie in [0, 1] are
    taken to be on the 0..1 scale.
    """
    import numpy as np

    if hasattr(image, "detach"):  # torch tensor, without importing torch here
        image = image.detach().float().cpu().numpy()
    elif not isinstance(image, np.ndarray):
        image = np.asarray(image)  # PIL image -> uint8 (H, W[, C])
    array = np.asarray(image)
    if array.dtype == np.uint8 or array.dtype == np.uint16:
        scale = 255.0 / np.iinfo(array.dtype).max
        return array.astype(np.float64) * scale
    array = array.astype(np.float64)
    finite = array[np.isfinite(array)]
    if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
        array = array * 255.0
    return array


def _iter_images(images: Any) -> Iterable[Any]:
    """Yield single images from a PIL image, a list of them, or a batched array (N, H, W, C)."""
    if images is None:
        return
    if isinstance(images, (list, tuple)):
        for item in images:
            yield from _iter_images(item)
        return
    ndim = getattr(images, "ndim", None)
    if ndim == 4:
        for item in images:
            yield item
        return
    yield images


def _has_nan(array: Any) -> bool:
    """True when a numpy array or torch tensor holds any NaN or infinity."""
    import numpy as np

    if hasattr(array, "detach"):
        array = array.detach().float().cpu().numpy()
    return not bool(np.isfinite(np.asarray(array, dtype=np.float64)).all())


def image_flag(images: Any, latents: Any = None) -> Optional[str]:
    """Flag an output that is not a usable image, or return None when it looks sane.

    Args:
        images: a PIL image, a list of them, or a numpy array / torch tensor of shape
            (H, W[, C]) or (N, H, W, C) (uint8 0..255 or float 0..1).
        latents: optional decoded tensor or final latents (any shape, any float dtype); NaN or
            infinity there flags "nan" even when the PIL conversion turned NaN into black.

    Returns:
        "nan" if any value (image or latents) is NaN/inf; else "black" if every pixel of some
        image is <= :data:`BLACK_MAX_LEVEL` (the safety checker's black image included); else
        "constant" if some image's pixel range is <= :data:`CONSTANT_MAX_RANGE`; else None.
        For a batch the most severe flag over its images is returned. No images -> None
        (unless the latents hold NaN).
    """
    if latents is not None and _has_nan(latents):
        return "nan"
    worst: Optional[str] = None
    for image in _iter_images(images):
        array = _as_array(image)
        if array.size == 0:
            continue
        if _has_nan(array):
            return "nan"
        if float(array.max()) <= BLACK_MAX_LEVEL:
            worst = "black"
        elif float(array.max() - array.min()) <= CONSTANT_MAX_RANGE and worst is None:
            worst = "constant"
    return worst


def _load(image: Any):
    """A path, PIL image or array -> float64 array (H, W, C) on the 0..255 scale."""
    if isinstance(image, (str, os.PathLike)):
        from PIL import Image

        with Image.open(image) as opened:
            image = opened.convert("RGB")
    array = _as_array(image)
    if array.ndim == 2:
        array = array[:, :, None]
    return array


def compare_images(a: Any, b: Any) -> tuple[float, float]:
    """PSNR (dB) and SSIM of image ``a`` against reference ``b``.

    Args:
        a, b: PNG paths, PIL images or arrays (uint8 0..255 or float 0..1), same size
            (H, W[, C]); RGBA/greyscale files are converted to RGB.

    Returns:
        (psnr_db, ssim). psnr_db is ``skimage.metrics.peak_signal_noise_ratio`` with
        data_range 255, capped at :data:`PSNR_IDENTICAL_DB` (identical images give +inf there).
        ssim is ``skimage.metrics.structural_similarity`` (Wang et al. 2004; scikit-image
        defaults: uniform 7x7 window) over the colour channels (channel_axis=-1), in [-1, 1].
        Images smaller than 7 px use the largest odd window that fits.

    Raises:
        ValueError: the images differ in size or channel count.
        ConfigError (a ValueError): scikit-image is not installed; one line, "PSNR/SSIM need
            scikit-image: pip install 'diffbench[quality]'".
    """
    from diffbench.engine import extras

    extras.require("skimage")
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    x, y = _load(a), _load(b)
    if x.shape != y.shape:
        raise ValueError(f"images differ in size: {x.shape[1]}x{x.shape[0]}x{x.shape[2]} vs "
                         f"{y.shape[1]}x{y.shape[0]}x{y.shape[2]} (width x height x channels)")
    if (x == y).all():
        return PSNR_IDENTICAL_DB, 1.0
    psnr = float(peak_signal_noise_ratio(y, x, data_range=255.0))
    psnr = min(psnr, PSNR_IDENTICAL_DB) if math.isfinite(psnr) else PSNR_IDENTICAL_DB
    side = min(x.shape[0], x.shape[1])
    win = min(7, side if side % 2 else side - 1)
    if win < 3:  # SSIM needs a window; 1-2 px images: fall back to exact-match score
        return psnr, float((x == y).mean())
    ssim = float(structural_similarity(y, x, data_range=255.0, channel_axis=-1, win_size=win))
    return psnr, ssim


#: Keys a sweep adds to RunResult.config: bookkeeping, never part of the baseline key.
_SWEEP_KEYS = frozenset({"sweep_id", "sweep_cell", "sweep_device"})


def baseline_key(config: dict) -> dict:
    """The settings a baseline must share with a run: the catalog's image-affecting settings
    (diffbench.engine.catalog: ``affects_image``) and any key the catalog does not know (a
    setting of a newer version), but not run control, the accelerator choice (the baseline
    differs exactly there) or sweep bookkeeping. Used to match baselines in the history.

    ``config``: a RunResult.config dict. Returns a new dict, key order kept.
    """
    return {k: v for k, v in config.items()
            if k not in _SWEEP_KEYS and (k not in catalog.BY_NAME
                                         or catalog.BY_NAME[k].affects_image)}


def is_baseline(config: dict) -> bool:
    """True when ``config`` (a RunResult.config dict) runs the eager pipeline: compiler none,
    no quantization, no DeepCache (:func:`diffbench.engine.baseline.is_eager`)."""
    from diffbench.engine.baseline import is_eager

    return is_eager(config)


def attach_baseline(result: "RunResult", history: Any) -> bool:
    """Fill ``result.metrics.psnr_db`` / ``ssim`` / ``baseline_run_id`` from its baseline in
    ``history``: :func:`diffbench.engine.baseline.attach`, where the baseline rule lives.
    Call it after the run and before ``history.add(result)``.

    Returns:
        True when similarity was attached. Never raises for a missing/unreadable baseline
        image or a size mismatch: it adds a notice to ``result.notices`` instead.
    """
    from diffbench.engine.baseline import attach

    return attach(result, history)


def find_baseline(result: "RunResult", history: Any) -> Optional["RunResult"]:
    """The baseline run (with a readable image) of ``result`` in ``history``, or None:
    :func:`diffbench.engine.baseline.find_baseline`."""
    from diffbench.engine.baseline import find_baseline as find

    return find(result, history)
