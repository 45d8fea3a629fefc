"""tiny-sd15, tiny-sdxl, tiny-pix2pix: real diffusers components with tiny random weights.

Architectures follow the real models' *structure* (SD 1.5: one CLIP text encoder, 4-channel
latents; SDXL: two text encoders, pooled text embeds + time ids; InstructPix2Pix: an 8-channel
UNet input for the image latents) at a few hundred thousand parameters, so the whole code
path (tokenizer, text encoder, UNet, scheduler, VAE decode, image processor) runs on CPU in
about a second. The VAE has 4 blocks, so the VAE scale factor is 8 as in the real models.
Weights are seeded (torch.manual_seed per component): the same seed builds the same model.
Images are noise; timings and memory are real for this model size.

Configs are adapted from diffusers' own pipeline tests (tests/pipelines/stable_diffusion*/),
shrunk further so 1024x1024 stays fast on CPU.
"""

from __future__ import annotations

from typing import Any

from diffbench.engine.models.registry import BuiltinModel, register_builtin

#: Weight seed of every tiny component (fixed: the model is part of the benchmark).
WEIGHT_SEED = 0
#: Native output size (pixels): UNet sample_size 16 x VAE scale factor 8.
NATIVE_SIZE = 128
TEXT_HIDDEN = 32


def _seeded(build: Any) -> Any:
    import torch

    torch.manual_seed(WEIGHT_SEED)
    return build()


def _text_encoder(projection: bool = False) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from diffbench.engine.models.tokenizer import offline_clip_tokenizer

    tok = offline_clip_tokenizer()
    config = CLIPTextConfig(
        vocab_size=len(tok), hidden_size=TEXT_HIDDEN, intermediate_size=37,
        num_attention_heads=4, num_hidden_layers=2, max_position_embeddings=77,
        projection_dim=TEXT_HIDDEN, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, hidden_act="gelu")
    cls = CLIPTextModelWithProjection if projection else CLIPTextModel
    return _seeded(lambda: cls(config).eval())


def _vae() -> Any:
    from diffusers import AutoencoderKL

    return _seeded(lambda: AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16), layers_per_block=1, norm_num_groups=4,
        # No mid-block self-attention: at 1024 px it would be a 16384-token attention that
        # alone takes seconds on CPU; the tiny model must stay fast at any size.
        mid_block_add_attention=False, sample_size=NATIVE_SIZE).eval())


def _unet(in_channels: int = 4, sdxl: bool = False) -> Any:
    from diffusers import UNet2DConditionModel

    kwargs: dict[str, Any] = dict(
        sample_size=NATIVE_SIZE // 8, in_channels=in_channels, out_channels=4,
        # Attention only at the lowest resolution (latent / 8) and few channels at full
        # latent resolution, so 1024 px (128x128 latents) stays fast on CPU.
        down_block_types=("DownBlock2D",) * 3 + ("CrossAttnDownBlock2D",),
        up_block_types=("CrossAttnUpBlock2D",) + ("UpBlock2D",) * 3,
        block_out_channels=(8, 16, 16, 32), layers_per_block=1, norm_num_groups=8,
        attention_head_dim=4, cross_attention_dim=TEXT_HIDDEN)
    if sdxl:
        # SDXL conditioning: pooled text embeds (text_encoder_2 projection) + 6 time ids.
        kwargs.update(cross_attention_dim=2 * TEXT_HIDDEN, use_linear_projection=True,
                      addition_embed_type="text_time", addition_time_embed_dim=8,
                      projection_class_embeddings_input_dim=6 * 8 + TEXT_HIDDEN)
    return _seeded(lambda: UNet2DConditionModel(**kwargs).eval())


def _scheduler(name: str) -> Any:
    import diffusers

    # The real checkpoints' noise schedule (SD 1.5 / SDXL scheduler_config.json).
    return getattr(diffusers, name)(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
        beta_schedule="scaled_linear", steps_offset=1)


def build_sd15(device: str = "cpu", dtype: Any = None) -> dict:
    """Components of tiny-sd15 (StableDiffusionPipeline layout), on ``device`` in ``dtype``."""
    from diffbench.engine.models.tokenizer import offline_clip_tokenizer

    parts = dict(unet=_unet(), vae=_vae(), text_encoder=_text_encoder(),
                 tokenizer=offline_clip_tokenizer(), scheduler=_scheduler("PNDMScheduler"))
    return _to(parts, device, dtype)


def build_sdxl(device: str = "cpu", dtype: Any = None) -> dict:
    """Components of tiny-sdxl (StableDiffusionXLPipeline layout: two text encoders)."""
    from diffbench.engine.models.tokenizer import offline_clip_tokenizer

    tok = offline_clip_tokenizer()
    parts = dict(unet=_unet(sdxl=True), vae=_vae(), text_encoder=_text_encoder(),
                 text_encoder_2=_text_encoder(projection=True), tokenizer=tok,
                 tokenizer_2=tok, scheduler=_scheduler("EulerDiscreteScheduler"))
    return _to(parts, device, dtype)


def build_pix2pix(device: str = "cpu", dtype: Any = None) -> dict:
    """Components of tiny-pix2pix (InstructPix2Pix: UNet input = 4 noise + 4 image latents)."""
    from diffbench.engine.models.tokenizer import offline_clip_tokenizer

    parts = dict(unet=_unet(in_channels=8), vae=_vae(), text_encoder=_text_encoder(),
                 tokenizer=offline_clip_tokenizer(),
                 scheduler=_scheduler("EulerAncestralDiscreteScheduler"))
    return _to(parts, device, dtype)


def _to(parts: dict, device: str, dtype: Any) -> dict:
    import torch

    for name, part in parts.items():
        if not isinstance(part, torch.nn.Module):
            continue
        # Built in float32; cast only when asked (diffusers warns on every dtype cast).
        if dtype is not None and dtype != torch.float32:
            part = part.to(dtype=dtype)
        parts[name] = part.to(device) if str(device) != "cpu" else part
    return parts


register_builtin(BuiltinModel("tiny-sd15", "sd15", build_sd15, NATIVE_SIZE,
                              "SD 1.5 layout, random weights, ~0.5 M params (CPU, seconds)"))
register_builtin(BuiltinModel("tiny-sdxl", "sdxl", build_sdxl, NATIVE_SIZE,
                              "SDXL layout (two text encoders), random weights (CPU, seconds)"))
register_builtin(BuiltinModel("tiny-pix2pix", "pix2pix", build_pix2pix, NATIVE_SIZE,
                              "InstructPix2Pix layout, random weights (CPU, seconds)"))
