"""InstructPix2Pix: an SD 1.5 UNet whose input adds the image latents (8 channels); text and
image guidance put three copies of the latents in the denoiser batch."""

from diffbench.engine.families.spec import DenoiserSpec
from diffbench.engine.families.unet import unet_step_flops, unet_step_inputs

SPEC = DenoiserSpec(
    family="pix2pix",
    label="instruct-pix2pix",
    pipelines={"pix2pix": "StableDiffusionInstructPix2PixPipeline"},
    controlnet_pipelines={},  # diffusers has no ControlNet pix2pix pipeline
    index_classes=("StableDiffusionInstructPix2PixPipeline",),
    denoiser_attr="unet",
    denoiser_label="UNet",
    repeated_blocks=("BasicTransformerBlock",),
    cfg_copies=3,
    step_inputs=unet_step_inputs,
    step_flops=unet_step_flops,
)
