"""Stable Diffusion XL: two text encoders, pooled text embeds and time ids into the UNet."""

from diffbench.engine.families.spec import DenoiserSpec
from diffbench.engine.families.unet import unet_step_flops, unet_step_inputs

SPEC = DenoiserSpec(
    family="sdxl",
    label="Stable Diffusion XL",
    pipelines={"t2i": "StableDiffusionXLPipeline", "i2i": "StableDiffusionXLImg2ImgPipeline"},
    controlnet_pipelines={"t2i": "StableDiffusionXLControlNetPipeline",
                          "i2i": "StableDiffusionXLControlNetImg2ImgPipeline"},
    index_classes=("StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline",
                   "StableDiffusionXLControlNetPipeline",
                   "StableDiffusionXLControlNetImg2ImgPipeline"),
    denoiser_attr="unet",
    denoiser_label="UNet",
    repeated_blocks=("BasicTransformerBlock",),
    cfg_copies=2,
    step_inputs=unet_step_inputs,
    step_flops=unet_step_flops,
)
