"""``synthetic-flux-dev``, ``synthetic-flux-schnell``, ``synthetic-sd35-large``,
``synthetic-sd35-medium``: the published full-size diffusion-transformer architectures with
random weights, built on the target device in seconds (meta init, cast, fill: see
:mod:`diffbench.engine.models.synthetic`) — speed measurement without downloading weights.
bf16 by default on a GPU (the families' "auto" dtype).

Configs are the published ``config.json`` files:

- black-forest-labs/FLUX.1-dev and FLUX.1-schnell: transformer (19 double-stream + 38
  single-stream blocks, 24 heads of 128, joint_attention_dim 4096, 11.9 B parameters; schnell
  has no guidance embedding), VAE (16 latent channels, scaling 0.3611, shift 0.1159), CLIP-L
  (text_encoder) and T5-XXL (text_encoder_2, google/t5-v1_1-xxl's encoder, 4.76 B), scheduler
  (FlowMatchEulerDiscreteScheduler; dev: dynamic shifting, schnell: shift 1);
- stabilityai/stable-diffusion-3.5-large (38 blocks of 38 heads of 64, 8.1 B) and -medium
  (24 blocks of 24 heads, dual attention in blocks 0-12, 2.24 B): transformer, VAE (16
  channels, scaling 1.5305, shift 0.0609), CLIP-L and CLIP-G with projection, T5-XXL, and
  FlowMatchEulerDiscreteScheduler(shift 3.0).

Tokenizers are the offline ones (diffbench.engine.models.tokenizer); the text encoders keep
the real vocabulary sizes.
"""

from __future__ import annotations

from typing import Any

from diffbench.engine.models.synthetic import (CLIP_BIGG, CLIP_L, RandomPool, _clip, _vae,
                                               materialise)

# --------------------------------------------------------------------------- configs
# black-forest-labs/FLUX.1-dev transformer/config.json (schnell: guidance_embeds false)
FLUX_DEV_TRANSFORMER = dict(
    attention_head_dim=128, guidance_embeds=True, in_channels=64, joint_attention_dim=4096,
    num_attention_heads=24, num_layers=19, num_single_layers=38, patch_size=1,
    pooled_projection_dim=768, axes_dims_rope=(16, 56, 56))
FLUX_SCHNELL_TRANSFORMER = dict(FLUX_DEV_TRANSFORMER, guidance_embeds=False)
_VAE16 = dict(
    act_fn="silu", block_out_channels=[128, 256, 512, 512],
    down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
    force_upcast=True, in_channels=3, out_channels=3, latent_channels=16, layers_per_block=2,
    mid_block_add_attention=True, norm_num_groups=32, sample_size=1024,
    use_post_quant_conv=False, use_quant_conv=False)
# black-forest-labs/FLUX.1-dev vae/config.json
FLUX_VAE = dict(_VAE16, scaling_factor=0.3611, shift_factor=0.1159)
# stabilityai/stable-diffusion-3.5-large vae/config.json (medium: the same)
SD35_VAE = dict(_VAE16, scaling_factor=1.5305, shift_factor=0.0609)
# black-forest-labs/FLUX.1-dev / -schnell scheduler/scheduler_config.json
FLUX_DEV_SCHEDULER = dict(base_image_seq_len=256, base_shift=0.5, max_image_seq_len=4096,
                          max_shift=1.15, num_train_timesteps=1000, shift=3.0,
                          use_dynamic_shifting=True)
FLUX_SCHNELL_SCHEDULER = dict(FLUX_DEV_SCHEDULER, shift=1.0, use_dynamic_shifting=False)
# google/t5-v1_1-xxl (FLUX text_encoder_2, SD3 text_encoder_3: the encoder only)
T5_XXL = dict(d_ff=10240, d_kv=64, d_model=4096, dense_act_fn="gelu_new",
              feed_forward_proj="gated-gelu", is_gated_act=True, layer_norm_epsilon=1e-6,
              num_heads=64, num_layers=24, relative_attention_max_distance=128,
              relative_attention_num_buckets=32, tie_word_embeddings=False, vocab_size=32128)
# stabilityai/stable-diffusion-3.5-large transformer/config.json
SD35_LARGE_TRANSFORMER = dict(
    attention_head_dim=64, caption_projection_dim=2432, in_channels=16,
    joint_attention_dim=4096, num_attention_heads=38, num_layers=38, out_channels=16,
    patch_size=2, pooled_projection_dim=2048, pos_embed_max_size=192, qk_norm="rms_norm",
    sample_size=128)
# stabilityai/stable-diffusion-3.5-medium transformer/config.json
SD35_MEDIUM_TRANSFORMER = dict(
    attention_head_dim=64, caption_projection_dim=1536, dual_attention_layers=list(range(13)),
    in_channels=16, joint_attention_dim=4096, num_attention_heads=24, num_layers=24,
    out_channels=16, patch_size=2, pooled_projection_dim=2048, pos_embed_max_size=384,
    qk_norm="rms_norm", sample_size=128)
# stabilityai/stable-diffusion-3.5-large scheduler/scheduler_config.json
SD35_SCHEDULER = dict(num_train_timesteps=1000, shift=3.0)


# --------------------------------------------------------------------------- builders
def _flux_transformer(config: dict) -> Any:
    from diffusers import FluxTransformer2DModel

    return FluxTransformer2DModel(**config)


def _sd3_transformer(config: dict) -> Any:
    from diffusers import SD3Transformer2DModel

    return SD3Transformer2DModel(**config)


def _t5(config: dict, tokenizer: Any) -> Any:
    """The T5 encoder with the real size (vocab 32128) and the offline tokenizer's ids."""
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(**config, pad_token_id=tokenizer.pad_token_id,
                                   eos_token_id=tokenizer.eos_token_id))


def _tokenizers() -> tuple[Any, Any]:
    from diffbench.engine.models.tokenizer import offline_clip_tokenizer, offline_t5_tokenizer

    return offline_clip_tokenizer(), offline_t5_tokenizer()


def build_flux(device: str, dtype: Any, transformer: dict = FLUX_DEV_TRANSFORMER,
               scheduler: dict = FLUX_DEV_SCHEDULER) -> dict:
    """FLUX.1 components with random weights on ``device`` in ``dtype`` (FluxPipeline
    layout: transformer, vae, text_encoder CLIP-L, text_encoder_2 T5-XXL, tokenizers,
    scheduler)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    pool = RandomPool(device)
    clip_tok, t5_tok = _tokenizers()
    return dict(
        transformer=materialise(lambda: _flux_transformer(transformer), device, dtype, pool),
        vae=materialise(lambda: _vae(FLUX_VAE), device, dtype, pool),
        text_encoder=materialise(lambda: _clip(CLIP_L, False, clip_tok), device, dtype, pool),
        text_encoder_2=materialise(lambda: _t5(T5_XXL, t5_tok), device, dtype, pool),
        tokenizer=clip_tok, tokenizer_2=t5_tok,
        scheduler=FlowMatchEulerDiscreteScheduler(**scheduler))


def build_flux_schnell(device: str, dtype: Any) -> dict:
    """FLUX.1-schnell components (no guidance embedding, shift 1) on ``device``."""
    return build_flux(device, dtype, FLUX_SCHNELL_TRANSFORMER, FLUX_SCHNELL_SCHEDULER)


def build_sd35(device: str, dtype: Any, transformer: dict = SD35_LARGE_TRANSFORMER) -> dict:
    """SD3.5 components with random weights on ``device`` (StableDiffusion3Pipeline layout:
    transformer, vae, CLIP-L, CLIP-G (both with projection), T5-XXL, tokenizers, scheduler)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    pool = RandomPool(device)
    clip_tok, t5_tok = _tokenizers()
    return dict(
        transformer=materialise(lambda: _sd3_transformer(transformer), device, dtype, pool),
        vae=materialise(lambda: _vae(SD35_VAE), device, dtype, pool),
        text_encoder=materialise(lambda: _clip(CLIP_L, True, clip_tok), device, dtype, pool),
        text_encoder_2=materialise(lambda: _clip(CLIP_BIGG, True, clip_tok), device, dtype,
                                   pool),
        text_encoder_3=materialise(lambda: _t5(T5_XXL, t5_tok), device, dtype, pool),
        tokenizer=clip_tok, tokenizer_2=clip_tok, tokenizer_3=t5_tok,
        scheduler=FlowMatchEulerDiscreteScheduler(**SD35_SCHEDULER))


def build_sd35_medium(device: str, dtype: Any) -> dict:
    """SD3.5 medium components (MMDiT-X) on ``device``."""
    return build_sd35(device, dtype, SD35_MEDIUM_TRANSFORMER)


def register() -> None:
    """Register the four models (runs at import: the registry imports this module when a
    synthetic-* name is first asked for)."""
    from diffbench.engine.models.registry import BuiltinModel, register_builtin

    for name, family, build, config, what in (
            ("synthetic-flux-dev", "flux", build_flux, FLUX_DEV_TRANSFORMER,
             "FLUX.1-dev architecture (transformer 11.9 B params, T5-XXL), random weights"),
            ("synthetic-flux-schnell", "flux", build_flux_schnell, FLUX_SCHNELL_TRANSFORMER,
             "FLUX.1-schnell architecture (4 steps, no guidance), random weights"),
            ("synthetic-sd35-large", "sd3", build_sd35, SD35_LARGE_TRANSFORMER,
             "SD3.5 large architecture (transformer 8.1 B params), random weights"),
            ("synthetic-sd35-medium", "sd3", build_sd35_medium, SD35_MEDIUM_TRANSFORMER,
             "SD3.5 medium architecture (MMDiT-X, 2.24 B params), random weights")):
        register_builtin(BuiltinModel(name=name, family=family, build=build, native_size=1024,
                                      description=f"{what}; GPU", denoiser_config=config))


register()
