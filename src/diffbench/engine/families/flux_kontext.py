"""FLUX.1 Kontext: FLUX.1-dev's transformer editing an image from an instruction (what
instruct-pix2pix was for UNets: task ``pix2pix``). The input image's latents join the
transformer's sequence, so an edit step attends over twice the image tokens.

diffusers' FluxKontextPipeline rescales the output to ``max_area`` (1024² px) and the input
image to a preferred resolution; diffbench passes the run's size as ``max_area`` and turns the
auto-resize off, so the image is the size the record says.
"""

from __future__ import annotations

from diffbench.engine.families import flux
from diffbench.engine.families.spec import DenoiserSpec
from diffbench.engine.families.transformer import flux_step_flops, flux_step_inputs


def call_extras(task: str, height: int, width: int) -> dict:
    """Keep the run's size: output height x width px, input image not auto-resized."""
    return {"height": height, "width": width, "max_area": height * width,
            "_auto_resize": False}


SPEC = DenoiserSpec(
    family="flux_kontext",
    label="FLUX.1 Kontext",
    pipelines={"pix2pix": "FluxKontextPipeline", "t2i": "FluxKontextPipeline"},
    index_classes=("FluxKontextPipeline",),
    denoiser_attr="transformer",
    denoiser_label="transformer",
    repeated_blocks=flux.BLOCKS,
    cfg_copies=1,
    step_inputs=flux_step_inputs,
    step_flops=flux_step_flops,
    flow_matching=True,
    guidance_input=True,
    max_sequence_length=512,
    t5_attr="text_encoder_2",
    size_multiple=16,
    cuda_dtype="bfloat16",
    image_in_sequence=True,
    # FluxKontextPipeline's defaults (28 steps, guidance 3.5, 512 tokens; the
    # black-forest-labs/FLUX.1-Kontext-dev card uses guidance 2.5 in its example).
    recommended=flux.recommended,
    check_model=flux.check_model,
    call_extras=call_extras,
)
