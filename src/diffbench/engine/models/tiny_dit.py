"""tiny-flux, tiny-flux-kontext, tiny-sd3: real diffusers components of the diffusion
transformers with tiny random weights, offline, running on CPU in seconds.

The structure is the real models' (FLUX: double- and single-stream blocks, 2x2 packed
16-channel latents, a CLIP text encoder for the pooled vector and a T5 encoder for the
sequence, guidance embedding, flow-matching scheduler with dynamic shift; SD3.5: joint MMDiT
blocks with one dual-attention block, two CLIP encoders with projection and a T5 encoder, CFG)
at a few hundred thousand parameters; the VAE has 4 blocks (scale factor 8) and 16 latent
channels as the real ones. Tokenizers are the offline CLIP and T5 ones
(diffbench.engine.models.tokenizer). Weights are seeded: the same seed builds the same model.
Images are noise; timings and memory are real for this model size.

Configs are adapted from diffusers' own pipeline tests (tests/pipelines/flux/,
tests/pipelines/stable_diffusion_3/), with the real latent layout.
"""

from __future__ import annotations

from typing import Any

from diffbench.engine.models.registry import BuiltinModel, register_builtin
from diffbench.engine.models.tiny import NATIVE_SIZE, TEXT_HIDDEN, _seeded, _text_encoder, _to

#: T5 width of the tiny models (SD3 pads the two CLIP embeddings, 2 x 32, to it).
T5_HIDDEN = 64

TINY_FLUX_TRANSFORMER = dict(
    patch_size=1, in_channels=64, num_layers=1, num_single_layers=2, attention_head_dim=16,
    num_attention_heads=2, joint_attention_dim=T5_HIDDEN, pooled_projection_dim=TEXT_HIDDEN,
    guidance_embeds=True, axes_dims_rope=(4, 6, 6))
TINY_SD3_TRANSFORMER = dict(
    sample_size=NATIVE_SIZE // 8, patch_size=2, in_channels=16, num_layers=2,
    attention_head_dim=16, num_attention_heads=2, joint_attention_dim=T5_HIDDEN,
    caption_projection_dim=32, pooled_projection_dim=2 * TEXT_HIDDEN, out_channels=16,
    # 96 patches a side: sizes up to 1536 px (the real SD3.5 large: 192)
    pos_embed_max_size=96, dual_attention_layers=(0,), qk_norm="rms_norm")
# The published schedulers (FLUX.1-dev; SD3.5), as in diffbench.engine.models.synthetic_dit.
_FLUX_SCHEDULER = dict(base_image_seq_len=256, base_shift=0.5, max_image_seq_len=4096,
                       max_shift=1.15, num_train_timesteps=1000, shift=3.0,
                       use_dynamic_shifting=True)
_SD3_SCHEDULER = dict(num_train_timesteps=1000, shift=3.0)


def _vae(scaling: float, shift: float) -> Any:
    from diffusers import AutoencoderKL

    return _seeded(lambda: AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=16,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16), layers_per_block=1, norm_num_groups=4,
        mid_block_add_attention=False,  # as tiny.py: fast at any size on CPU
        use_quant_conv=False, use_post_quant_conv=False, scaling_factor=scaling,
        shift_factor=shift, sample_size=NATIVE_SIZE).eval())


def _t5() -> Any:
    from transformers import T5Config, T5EncoderModel

    from diffbench.engine.models.tokenizer import offline_t5_tokenizer

    tok = offline_t5_tokenizer()
    config = T5Config(vocab_size=len(tok), d_model=T5_HIDDEN, d_kv=8, d_ff=37, num_layers=2,
                      num_heads=4, relative_attention_num_buckets=8,
                      feed_forward_proj="gated-gelu", pad_token_id=tok.pad_token_id,
                      eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id)
    return _seeded(lambda: T5EncoderModel(config).eval())


def _tokenizers() -> tuple[Any, Any]:
    from diffbench.engine.models.tokenizer import offline_clip_tokenizer, offline_t5_tokenizer

    return offline_clip_tokenizer(), offline_t5_tokenizer()


def build_flux(device: str = "cpu", dtype: Any = None) -> dict:
    """Components of tiny-flux / tiny-flux-kontext (FluxPipeline layout: transformer with
    guidance embedding, vae, CLIP text_encoder, T5 text_encoder_2), on ``device`` in
    ``dtype``."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel

    clip_tok, t5_tok = _tokenizers()
    parts = dict(
        transformer=_seeded(lambda: FluxTransformer2DModel(**TINY_FLUX_TRANSFORMER).eval()),
        vae=_vae(0.3611, 0.1159), text_encoder=_text_encoder(), text_encoder_2=_t5(),
        tokenizer=clip_tok, tokenizer_2=t5_tok,
        scheduler=FlowMatchEulerDiscreteScheduler(**_FLUX_SCHEDULER))
    return _to(parts, device, dtype)


def build_sd3(device: str = "cpu", dtype: Any = None) -> dict:
    """Components of tiny-sd3 (StableDiffusion3Pipeline layout: transformer, vae, two CLIP
    text encoders with projection, T5 text_encoder_3), on ``device`` in ``dtype``."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel

    clip_tok, t5_tok = _tokenizers()
    parts = dict(
        transformer=_seeded(lambda: SD3Transformer2DModel(**TINY_SD3_TRANSFORMER).eval()),
        vae=_vae(1.5305, 0.0609), text_encoder=_text_encoder(projection=True),
        text_encoder_2=_text_encoder(projection=True), text_encoder_3=_t5(),
        tokenizer=clip_tok, tokenizer_2=clip_tok, tokenizer_3=t5_tok,
        scheduler=FlowMatchEulerDiscreteScheduler(**_SD3_SCHEDULER))
    return _to(parts, device, dtype)


register_builtin(BuiltinModel(
    "tiny-flux", "flux", build_flux, NATIVE_SIZE,
    "FLUX.1-dev layout (guidance embedding, CLIP + T5), random weights (CPU, seconds)",
    denoiser_config=TINY_FLUX_TRANSFORMER))
register_builtin(BuiltinModel(
    "tiny-flux-kontext", "flux_kontext", build_flux, NATIVE_SIZE,
    "FLUX.1 Kontext layout (instruction edit), random weights (CPU, seconds)",
    denoiser_config=TINY_FLUX_TRANSFORMER))
register_builtin(BuiltinModel(
    "tiny-sd3", "sd3", build_sd3, NATIVE_SIZE,
    "SD3.5 layout (MMDiT, CLIP-L + CLIP-G + T5, CFG), random weights (CPU, seconds)",
    denoiser_config=TINY_SD3_TRANSFORMER))
