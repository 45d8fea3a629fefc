"""The settings a pipeline call actually runs with, and what the record says about them.

A RunConfig leaves some settings to the model (guidance_scale None, max_sequence_length None,
the scheduler of a flow-matching model); this module resolves them once, from the family's
spec and the loaded denoiser's config, for the pipeline call (:func:`call_settings`) and for
the record (:func:`resolved_config`, :func:`effective_metrics`): the guidance used, the T5
token budget, the denoiser rows per step (CFG: 2 x batch; FLUX-dev: batch, guidance is an
input) and the FLOPs of one denoising step (the family's formula, checked against torch's
FlopCounterMode by the tests).

Imports no torch itself; the pipeline passed in is a loaded diffusers pipeline.
"""

from __future__ import annotations

import inspect
from typing import Any, Optional


def family_of(pipe: Any) -> Any:
    """The DenoiserSpec of a loaded pipeline, or None when no family claims its class."""
    from diffbench.engine import families
    from diffbench.engine.errors import ConfigError

    try:
        return families.for_pipeline(pipe)
    except ConfigError:
        return None


def _denoiser_config(pipe: Any, spec: Any) -> dict:
    denoiser = getattr(pipe, spec.denoiser_attr, None)
    config = getattr(denoiser, "config", None)
    return dict(config) if config is not None else {}


def recommended(pipe: Any, spec: Any) -> dict:
    """The model card's settings for the loaded model (spec.recommended on the denoiser's
    config); {} for families that declare none."""
    if spec is None or spec.recommended is None:
        return {}
    return dict(spec.recommended(_denoiser_config(pipe, spec)))


def max_sequence_length(cfg: Any, pipe: Any, spec: Any) -> Optional[int]:
    """T5 tokens of the prompt: cfg's, else the model card's, else the family's default;
    None for a family without T5."""
    if spec is None or spec.t5_attr is None:
        return None
    return int(cfg.max_sequence_length or recommended(pipe, spec).get("max_sequence_length")
               or spec.max_sequence_length)


def takes_guidance(pipe: Any, spec: Any) -> bool:
    """False for a guidance-input family whose denoiser has no guidance embedding (FLUX
    schnell): the pipeline ignores any guidance scale."""
    if spec is None or not spec.guidance_input:
        return True
    return bool(_denoiser_config(pipe, spec).get("guidance_embeds", True))


def guidance_used(cfg: Any, pipe: Any, spec: Any) -> Optional[float]:
    """The guidance scale the call uses: cfg's, else the model card's, else the default of
    the pipeline's ``__call__``; None when the model takes none (schnell)."""
    if not takes_guidance(pipe, spec):
        return None
    if cfg.guidance_scale is not None:
        return float(cfg.guidance_scale)
    card = recommended(pipe, spec).get("guidance_scale")
    if card is not None:
        return float(card)
    try:
        default = inspect.signature(type(pipe).__call__).parameters["guidance_scale"].default
    except (KeyError, TypeError, ValueError):
        return None
    return float(default) if isinstance(default, (int, float)) else None


def call_settings(cfg: Any, pipe: Any, spec: Any, height: int, width: int) -> dict:
    """Pipeline-call keywords the family adds: the T5 budget (``max_sequence_length``), the
    model card's guidance when cfg leaves it to the model, the family's extras (Kontext keeps
    the run's size). {} for the UNet families."""
    if spec is None:
        return {}
    kwargs: dict = {}
    tokens = max_sequence_length(cfg, pipe, spec)
    if tokens is not None:
        kwargs["max_sequence_length"] = tokens
    card = recommended(pipe, spec).get("guidance_scale")
    if cfg.guidance_scale is None and card is not None and takes_guidance(pipe, spec):
        kwargs["guidance_scale"] = float(card)
    if spec.call_extras is not None:
        kwargs.update(spec.call_extras(cfg.task, height, width))
    return kwargs


def steps_to_run(cfg: Any, spec: Any) -> int:
    """Denoising steps the call runs: ``cfg.steps``, except img2img: int(steps x strength) for
    the UNet pipelines, steps - int(steps - steps x strength) for the flow-matching ones
    (FluxImg2ImgPipeline / StableDiffusion3Img2ImgPipeline ``get_timesteps``: 4 steps at
    strength 0.8, where a UNet pipeline runs 3). At least 1."""
    steps = int(cfg.steps)
    if cfg.task != "i2i":
        return steps
    if spec is not None and spec.flow_matching:
        return max(1, steps - int(max(steps - min(steps * cfg.strength, steps), 0)))
    return max(1, int(steps * cfg.strength))


def denoiser_rows(cfg: Any, spec: Any, guidance: Optional[float]) -> int:
    """Latent rows the denoiser runs per denoising step, over all its calls: batch x CFG
    copies when guidance > 1 (diffusers' ``do_classifier_free_guidance``); a guidance-input
    family (FLUX) runs one row per image, two with true CFG (extra_call_kwargs
    true_cfg_scale > 1 and a negative prompt: a second transformer call)."""
    if spec is None:
        return int(cfg.batch)
    if spec.guidance_input:
        true_cfg = float(cfg.extra_call_kwargs.get("true_cfg_scale", 1.0)) > 1 and \
            bool(cfg.negative_prompt)
        return int(cfg.batch) * (2 if true_cfg else 1)
    return spec.denoiser_batch(int(cfg.batch), cfg=guidance is not None and guidance > 1)


def step_tflop(cfg: Any, pipe: Any, spec: Any, height: int, width: int,
               rows: int) -> Optional[float]:
    """TFLOP of one denoising step (the family's formula on ``rows`` latent rows); None
    without a formula or with a ControlNet (its FLOPs are not counted)."""
    if spec is None or spec.step_flops is None or cfg.controlnet:
        return None
    config = _denoiser_config(pipe, spec)
    flops = spec.flops_per_step(config, height, width, batch=rows, cfg=False,
                                max_sequence_length=max_sequence_length(cfg, pipe, spec),
                                image=cfg.task == "pix2pix")
    return float(f"{flops / 1e12:.6g}")  # 6 significant digits: tiny models too


def resolved_config(cfg: Any, pipe: Any, spec: Any) -> dict:
    """Config values the record holds as run, for the families that leave them to the model:
    the T5 budget and the scheduler ("none" when the model's own was kept). {} for UNets."""
    if spec is None or spec.t5_attr is None:
        return {}
    from diffbench.engine.models.loading import scheduler_for

    return {"max_sequence_length": max_sequence_length(cfg, pipe, spec),
            "scheduler": scheduler_for(cfg, spec)}


def effective_metrics(cfg: Any, pipe: Any, spec: Any, height: int, width: int) -> dict:
    """Metrics fields describing the call: guidance_used, denoiser_batch (rows per step; CFG
    doubled it when it is 2 x batch), tflop_per_step (see :func:`step_tflop`) and
    text_tokens (see :func:`text_tokens`)."""
    guidance = guidance_used(cfg, pipe, spec)
    rows = denoiser_rows(cfg, spec, guidance)
    return {"guidance_used": guidance, "denoiser_batch": rows,
            "tflop_per_step": step_tflop(cfg, pipe, spec, height, width, rows),
            "text_tokens": text_tokens(cfg, pipe, spec)}


def text_tokens(cfg: Any, pipe: Any, spec: Any) -> Optional[int]:
    """Text sequence length of the prompt encoding: the T5 budget for FLUX / SD3, else the
    tokenizer's context (CLIP: 77); None when the pipeline has no bounded tokenizer."""
    tokens = max_sequence_length(cfg, pipe, spec)
    if tokens is not None:
        return tokens
    limit = getattr(getattr(pipe, "tokenizer", None), "model_max_length", None)
    # transformers' "no limit" is a huge sentinel (int(1e30)), not a length
    return int(limit) if isinstance(limit, int) and 0 < limit < 1_000_000 else None
