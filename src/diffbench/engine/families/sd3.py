"""Stable Diffusion 3 / 3.5: an MMDiT transformer (joint text-image blocks; SD3.5 medium adds
dual-attention MMDiT-X blocks), three text encoders (CLIP-L, CLIP-G, T5-XXL), a 16-channel VAE,
a flow-matching scheduler with shift 3.0. Classifier-free guidance: two copies of the latents
per denoising step (when guidance_scale > 1).
"""

from __future__ import annotations

from typing import Mapping

from diffbench.engine.families.spec import DenoiserSpec
from diffbench.engine.families.transformer import (sd3_step_flops, sd3_step_inputs,
                                                   sized_call)


def recommended(config: Mapping) -> dict:
    """The model card's settings, told apart by the transformer config.

    - SD3.5 large (38 blocks of 38 heads; stabilityai/stable-diffusion-3.5-large card):
      28 steps, guidance 3.5;
    - SD3.5 medium (dual-attention layers; stabilityai/stable-diffusion-3.5-medium card):
      40 steps, guidance 4.5;
    - otherwise StableDiffusion3Pipeline's defaults: 28 steps, guidance 7.0.

    T5 tokens: the pipeline's default, 256.
    """
    if config.get("dual_attention_layers"):
        return {"steps": 40, "guidance_scale": 4.5, "max_sequence_length": 256}
    if config.get("num_layers") == 38 and config.get("num_attention_heads") == 38:
        return {"steps": 28, "guidance_scale": 3.5, "max_sequence_length": 256}
    return {"steps": 28, "guidance_scale": 7.0, "max_sequence_length": 256}


SPEC = DenoiserSpec(
    family="sd3",
    label="Stable Diffusion 3.5",
    pipelines={"t2i": "StableDiffusion3Pipeline", "i2i": "StableDiffusion3Img2ImgPipeline"},
    index_classes=("StableDiffusion3Pipeline", "StableDiffusion3Img2ImgPipeline"),
    denoiser_attr="transformer",
    denoiser_label="transformer",
    repeated_blocks=("JointTransformerBlock",),
    cfg_copies=2,
    step_inputs=sd3_step_inputs,
    step_flops=sd3_step_flops,
    flow_matching=True,
    max_sequence_length=256,
    clip_tokens=77,
    t5_attr="text_encoder_3",
    size_multiple=16,
    cuda_dtype="bfloat16",
    recommended=recommended,
    call_extras=sized_call,
)
