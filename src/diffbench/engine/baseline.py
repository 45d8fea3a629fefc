"""The baseline rule, in one place: which earlier run a run's image and speed are compared with.

A run's baseline is an earlier run that

- finished (status "finished"),
- ran the eager pipeline (:func:`is_eager`: compiler none, no quantization, no step caching,
  the model's own attention kernels and projections),
- shares every image-affecting setting with the run: equal
  :func:`diffbench.engine.quality.baseline_key` (model, task, size, steps, seed, scheduler,
  prompt, negative prompt, guidance scale, LoRA, ControlNet, dtype, device, ...; a key one
  side lacks counts as None, so older records still match),
- is not the run itself,
- and, for image similarity (PSNR/SSIM), has a readable image file.

The newest such run wins; one measured on the same GPU model is preferred. Every finder uses
these functions: :func:`find_baseline` / :func:`attach` (CLI, dashboard, sweeps through
:mod:`diffbench.engine.session`), ``History.find_baseline`` (SQL pre-filter, then this rule)
and the dashboard's ``tui.runs.find_baseline`` over the runs on screen.

Cheap to import: no numpy, no torch (image comparison is imported when used).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterable, Optional

if TYPE_CHECKING:  # pragma: no cover
    from diffbench.engine.result import RunResult


#: Settings of the stacked accelerators and their "off" value (a key a record lacks is off:
#: older records predate the transformer accelerators).
EAGER_SETTINGS = {"quantize": "none", "deepcache": False, "cache": "none",
                  "attention_backend": "default", "fuse_qkv": False,
                  "text_encoder_quant": "none", "cpu_offload": False}


def is_eager(config: dict) -> bool:
    """True when ``config`` (a RunResult.config dict) runs the eager pipeline: compiler
    none and every stacked accelerator of :data:`EAGER_SETTINGS` off (no quantization, no
    DeepCache or diffusers step cache, the model's attention backend, unfused QKV, no T5 quantization, no model CPU offload)."""
    return (config.get("compiler", "none") == "none"
            and all(config.get(key, off) in (off, None)
                    for key, off in EAGER_SETTINGS.items()))


def accel_label(config: dict) -> str:
    """The run's accelerator label: the compiler plus its stacked accelerators joined by
    "+", e.g. "none+deepcache" or "compile+int8wo+fused-qkv". ``config`` is a
    RunResult.config dict; a key it lacks counts as off (older records). The one label the
    CLI (run title, history table and --compiler filter) and the dashboard both show."""
    parts = [str(config.get("compiler", "none"))]
    if config.get("quantize") not in (None, "none"):
        parts.append(str(config["quantize"]))
    if config.get("deepcache"):
        parts.append("deepcache")
    if config.get("cache") not in (None, "none"):
        parts.append(str(config["cache"]))
    if config.get("fuse_qkv"):
        parts.append("fused-qkv")
    if config.get("attention_backend") not in (None, "default"):
        parts.append(f"attn-{config['attention_backend']}")
    return "+".join(parts)


def matches_accel(config: dict, wanted: str) -> bool:
    """True when ``wanted`` names the run's compiler, its full :func:`accel_label`, or one
    accelerator of that label (e.g. "deepcache" matches "none+deepcache")."""
    label = accel_label(config)
    return wanted in (str(config.get("compiler", "none")), label) or wanted in label.split("+")


def eager_config(cfg: Any) -> Any:
    """``cfg`` (a RunConfig) with every accelerator off — compiler none and
    :data:`EAGER_SETTINGS` — so that :func:`is_eager` holds: the baseline's config of an
    accelerated run."""
    return cfg.replace(compiler="none", **EAGER_SETTINGS)


def same_settings(config: dict, other: dict) -> bool:
    """True when two config dicts share every image-affecting setting
    (:func:`diffbench.engine.quality.baseline_key`); a key missing on one side counts as
    None (older records lack newer config keys)."""
    from diffbench.engine.quality import baseline_key

    a, b = baseline_key(config or {}), baseline_key(other or {})
    return all(a.get(k) == b.get(k) for k in set(a) | set(b))


def has_image(run: "RunResult") -> bool:
    """True when ``run.image_path`` names an existing file."""
    return bool(run.image_path) and os.path.isfile(run.image_path)


def is_baseline_of(candidate: "RunResult", run: "RunResult", image: bool = True) -> bool:
    """True when ``candidate`` may serve as ``run``'s baseline (see the module docstring).

    Args:
        image: also require a readable image file (image similarity needs one; the
            dashboard's speed-up ratio does not).
    """
    return (candidate.run_id != run.run_id and candidate.status == "finished"
            and is_eager(candidate.config or {})
            and same_settings(run.config or {}, candidate.config or {})
            and (not image or has_image(candidate)))


def needs_baseline(run: "RunResult") -> bool:
    """True when ``run`` is compared with a baseline at all: finished and accelerated (an
    eager run is its own reference)."""
    return run.status == "finished" and not is_eager(run.config or {})


def pick(run: "RunResult", candidates: Iterable["RunResult"],
         image: bool = True) -> Optional["RunResult"]:
    """The baseline of ``run`` among ``candidates`` (newest first), or None: the first one
    that passes :func:`is_baseline_of`, preferring one on the run's GPU model."""
    matching = [c for c in candidates if is_baseline_of(c, run, image)]
    if not matching:
        return None
    gpu = (run.environment or {}).get("gpu")
    same_gpu = [c for c in matching if (c.environment or {}).get("gpu") == gpu]
    return (same_gpu or matching)[0]


def find_baseline(run: "RunResult", history: Any) -> Optional["RunResult"]:
    """The baseline (with a readable image) of ``run`` in ``history``, or None.

    ``history`` is a :class:`diffbench.engine.history.History` (its SQL finder, which applies
    this rule), any object with ``find_baseline(run)`` (its answer is checked against this
    rule), or one with ``list(model=, compiler=, status=)`` newest first (scanned).
    """
    if not needs_baseline(run):
        return None
    from diffbench.engine.history import History

    if isinstance(history, History):
        return history.find_baseline(run, image=True)
    finder = getattr(history, "find_baseline", None)
    if finder is not None:
        found = finder(run)
        return found if found is not None and has_image(found) else None
    return pick(run, history.list(model=(run.config or {}).get("model"), compiler="none",
                                  status="finished"))


def attach(result: "RunResult", history: Any) -> bool:
    """Fill ``result.metrics.psnr_db`` / ``ssim`` / ``baseline_run_id`` from its baseline in
    ``history`` (:func:`find_baseline`); PSNR (dB) and SSIM by
    :func:`diffbench.engine.quality.compare_images`.

    Returns:
        True when similarity was attached. A run that is eager, not finished or without an
        image is left alone. Never raises for an unreadable baseline image or a size
        mismatch: a notice goes to ``result.notices`` instead.
    """
    if not needs_baseline(result) or not result.image_path:
        return False
    baseline = find_baseline(result, history)
    if baseline is None:
        return False
    from diffbench.engine.quality import compare_images

    try:
        psnr, ssim = compare_images(result.image_path, baseline.image_path)
    except (OSError, ValueError) as exc:
        result.notices.append(f"no similarity to baseline {baseline.run_id}: {exc}")
        return False
    result.metrics.psnr_db = psnr
    result.metrics.ssim = ssim
    result.metrics.baseline_run_id = baseline.run_id
    return True
