"""FLUX.1 (dev and schnell): a 12 B rectified-flow transformer (19 double-stream + 38
single-stream blocks), CLIP-L (pooled) and T5-XXL (sequence) text encoders, a 16-channel VAE.

FLUX.1-dev is guidance-distilled: the guidance scale is an input of the transformer (one
forward per denoising step, no CFG batch). FLUX.1-schnell is timestep-distilled: no guidance
embedding, 4 steps. Which one a model is comes from its transformer config
(``guidance_embeds``), never from its name.
"""

from __future__ import annotations

from typing import Any, Mapping

from diffbench.engine.errors import ConfigError
from diffbench.engine.families.spec import DenoiserSpec
from diffbench.engine.families.transformer import (flux_step_flops, flux_step_inputs,
                                                   sized_call)

#: FLUX's repeated blocks (diffusers' FluxTransformer2DModel._repeated_blocks).
BLOCKS = ("FluxTransformerBlock", "FluxSingleTransformerBlock")


def guidance_distilled(config: Mapping) -> bool:
    """True unless the transformer config says ``guidance_embeds: false`` (schnell); an
    unknown config counts as dev, the pipeline's defaults."""
    return config.get("guidance_embeds") is not False


def recommended(config: Mapping) -> dict:
    """The model card's settings. dev: diffusers FluxPipeline's defaults (28 steps, guidance
    3.5, 512 T5 tokens; black-forest-labs/FLUX.1-dev card: guidance 3.5). schnell
    (black-forest-labs/FLUX.1-schnell card): 4 steps, no guidance, 256 T5 tokens."""
    if guidance_distilled(config):
        return {"steps": 28, "guidance_scale": 3.5, "max_sequence_length": 512}
    return {"steps": 4, "max_sequence_length": 256}


def check_model(cfg: Any, config: Mapping) -> list[str]:
    """Refuse a guidance scale on schnell; note a negative prompt that FLUX ignores.

    Raises:
        ConfigError: ``.field`` guidance_scale; guidance > 0 on a model without guidance
            embedding.
    """
    if not guidance_distilled(config) and cfg.guidance_scale:
        raise ConfigError("FLUX.1-schnell is not guidance-distilled (its transformer has no "
                          "guidance embedding): it takes no guidance scale; drop "
                          "--guidance-scale", field="guidance_scale")
    notices = []
    if cfg.negative_prompt and float(cfg.extra_call_kwargs.get("true_cfg_scale", 1.0)) <= 1:
        notices.append("FLUX ignores the negative prompt unless extra_call_kwargs sets "
                       "true_cfg_scale > 1 (true CFG: two transformer calls per step)")
    return notices


SPEC = DenoiserSpec(
    family="flux",
    label="FLUX.1",
    pipelines={"t2i": "FluxPipeline", "i2i": "FluxImg2ImgPipeline"},
    index_classes=("FluxPipeline", "FluxImg2ImgPipeline"),
    denoiser_attr="transformer",
    denoiser_label="transformer",
    repeated_blocks=BLOCKS,
    cfg_copies=1,
    step_inputs=flux_step_inputs,
    step_flops=flux_step_flops,
    flow_matching=True,
    guidance_input=True,
    max_sequence_length=512,
    t5_attr="text_encoder_2",
    size_multiple=16,
    cuda_dtype="bfloat16",
    recommended=recommended,
    call_extras=sized_call,
    check_model=check_model,
)
