"""Stable Diffusion 1.5 (and 2.x layouts): one CLIP text encoder, a UNet2DConditionModel."""

from diffbench.engine.families.spec import DenoiserSpec
from diffbench.engine.families.unet import unet_step_flops, unet_step_inputs

SPEC = DenoiserSpec(
    family="sd15",
    label="Stable Diffusion 1.5",
    pipelines={"t2i": "StableDiffusionPipeline", "i2i": "StableDiffusionImg2ImgPipeline"},
    controlnet_pipelines={"t2i": "StableDiffusionControlNetPipeline",
                          "i2i": "StableDiffusionControlNetImg2ImgPipeline"},
    index_classes=("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline",
                   "StableDiffusionControlNetPipeline",
                   "StableDiffusionControlNetImg2ImgPipeline"),
    denoiser_attr="unet",
    denoiser_label="UNet",
    repeated_blocks=("BasicTransformerBlock",),
    cfg_copies=2,
    step_inputs=unet_step_inputs,
    step_flops=unet_step_flops,
)
