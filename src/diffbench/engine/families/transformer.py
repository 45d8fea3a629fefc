"""What the diffusion-transformer families (FLUX.1, FLUX.1 Kontext, SD3/3.5) share: one
denoising step's inputs and the FLOPs of one transformer call.

FLOP formulas walk the configs the way diffusers builds the models
(diffusers/models/transformers/transformer_flux.py, transformer_sd3.py, attention.py
``JointTransformerBlock``, embeddings.py, normalization.py) and count, as
torch.utils.flop_counter does, 2 FLOPs per multiply-add of every linear layer and convolution
and of the two attention matmuls (Q·Kᵀ and attention·V); norms, activations, softmax, RoPE and
additions are not counted. With ``b`` the denoiser batch, ``D`` the width (heads x head dim),
``N`` the image tokens, ``M`` the text tokens, ``L = N + M``:

- joint (double-stream) block: AdaLN-zero modulations of the image and text streams
  (2 x 2·b·D·6D), Q/K/V/out projections of both streams (8·b·L·D²), joint attention over L
  tokens (4·b·L²·D), a 4x GELU feed-forward per stream (16·b·L·D²): 24·b·D² + 24·b·L·D² +
  4·b·L²·D;
- FLUX single-stream block: modulation (2·b·D·3D), Q/K/V (6·b·L·D²), MLP in (8·b·L·D²), the
  fused output projection 5D -> D (10·b·L·D²), attention 4·b·L²·D;
- SD3's last block is "context pre-only" (text modulation 2·b·D·2D, no text output projection
  or feed-forward); SD3.5's dual-attention blocks (MMDiT-X) add an image self-attention
  (8·b·N·D² + 4·b·N²·D) and a 9D modulation;
- embeddings: the patch embedding, the text projection (M tokens), the timestep (and FLUX-dev's
  guidance) embedder 256 -> D -> D, the pooled-text projection, AdaLN-continuous output norm
  (2·b·D·2D) and the output projection.

FLUX packs 2x2 latent patches: N = (H/16)·(W/16) for an H x W image; M = the T5 tokens
(max_sequence_length, 512 by default). Kontext's edit appends the input image's tokens: N
doubles when the input image has the output's size. SD3 patchifies with patch_size 2:
N = (H/16)·(W/16) too; M = 77 CLIP tokens + the T5 tokens (256 by default).

FLUX.1-dev at 1024x1024, batch 1, 512 T5 tokens: 74.4 TFLOP per step (19 double + 38 single
blocks, D = 3072), the figure torch's FlopCounterMode gives for the model. Tests check both
formulas against FlopCounterMode on the tiny models and on the full FLUX.1-dev config on the
meta device.
"""

from __future__ import annotations

from typing import Any

#: Sinusoidal timestep features fed to the timestep (and guidance) embedder (diffusers'
#: ``Timesteps(num_channels=256)``).
TIME_FEATURES = 256


def _get(config: Any, key: str, default: Any = None) -> Any:
    if isinstance(config, dict):
        return config.get(key, default)
    return getattr(config, key, default)


def _joint_block(b: int, n: int, m: int, d: int) -> int:
    """FLOPs of one joint (MMDiT, double-stream) block: see the module docstring."""
    tokens = n + m
    return 2 * 2 * b * d * 6 * d + 24 * b * tokens * d * d + 4 * b * tokens * tokens * d


def flux_step_flops(config: Any, height: int, width: int, batch: int, text_tokens: int = 512,
                    image_in_sequence: bool = False, latent_factor: int = 8) -> float:
    """FLOPs of one ``FluxTransformer2DModel`` call on ``batch`` rows of height x width pixels
    with ``text_tokens`` T5 tokens (``image_in_sequence``: Kontext's input-image tokens
    appended, same size as the output), from the transformer's config (a dict or a diffusers
    FrozenDict). The formula and its source are in the module docstring."""
    b, m = int(batch), int(text_tokens)
    d = _get(config, "num_attention_heads", 24) * _get(config, "attention_head_dim", 128)
    patch = _get(config, "patch_size", 1)
    c_in = _get(config, "in_channels", 64)
    c_out = _get(config, "out_channels") or c_in
    n = (height // latent_factor // 2) * (width // latent_factor // 2)  # 2x2 packing
    if image_in_sequence:
        n *= 2
    tokens = n + m
    total = 2 * b * n * c_in * d                                    # x_embedder
    total += 2 * b * m * _get(config, "joint_attention_dim", 4096) * d   # context_embedder
    embedders = 2 if _get(config, "guidance_embeds", False) else 1  # timestep (+ guidance)
    total += embedders * 2 * b * (TIME_FEATURES * d + d * d)
    total += 2 * b * (_get(config, "pooled_projection_dim", 768) * d + d * d)  # pooled text
    total += _get(config, "num_layers", 19) * _joint_block(b, n, m, d)
    single = (2 * b * d * 3 * d + 24 * b * tokens * d * d + 4 * b * tokens * tokens * d)
    total += _get(config, "num_single_layers", 38) * single
    total += 2 * b * d * 2 * d                                      # norm_out modulation
    total += 2 * b * n * d * patch * patch * c_out  # proj_out, on every image token (Kontext too)
    return float(total)


def sd3_step_flops(config: Any, height: int, width: int, batch: int, text_tokens: int = 333,
                   latent_factor: int = 8) -> float:
    """FLOPs of one ``SD3Transformer2DModel`` call on ``batch`` rows of height x width pixels
    with ``text_tokens`` text tokens (77 CLIP + the T5 budget), from the transformer's config.
    The formula and its source are in the module docstring."""
    b, m = int(batch), int(text_tokens)
    d = _get(config, "num_attention_heads", 18) * _get(config, "attention_head_dim", 64)
    patch = _get(config, "patch_size", 2)
    c_in = _get(config, "in_channels", 16)
    c_out = _get(config, "out_channels") or c_in
    caption = _get(config, "caption_projection_dim", d)
    n = (height // latent_factor // patch) * (width // latent_factor // patch)
    layers = _get(config, "num_layers", 18)
    dual = set(_get(config, "dual_attention_layers", ()) or ())
    total = 2 * b * n * c_in * d * patch * patch                    # patch embedding (conv)
    total += 2 * b * (TIME_FEATURES * d + d * d)                    # timestep embedder
    total += 2 * b * (_get(config, "pooled_projection_dim", 2048) * d + d * d)
    total += 2 * b * m * _get(config, "joint_attention_dim", 4096) * caption
    tokens = n + m
    for index in range(layers):
        last = index == layers - 1
        if not last:
            total += _joint_block(b, n, m, d)
        else:  # context pre-only: text modulation 2D, no text output projection / FF
            total += (2 * b * d * 6 * d + 2 * b * d * 2 * d
                      + 8 * b * n * d * d + 6 * b * m * d * d + 4 * b * tokens * tokens * d
                      + 16 * b * n * d * d)
        if index in dual:  # MMDiT-X: 9D modulation instead of 6D, image self-attention
            total += 2 * b * d * 3 * d + 8 * b * n * d * d + 4 * b * n * n * d
    total += 2 * b * d * 2 * d                                      # norm_out modulation
    total += 2 * b * n * d * patch * patch * c_out                  # proj_out
    return float(total)


def sized_call(task: str, height: int, width: int) -> dict:
    """Pipeline-call keywords that keep the run's size: FluxImg2ImgPipeline and
    StableDiffusion3Img2ImgPipeline default height/width to the model's native size (1024 px),
    not the input image's, so every task passes them."""
    return {"height": height, "width": width}


def _randn(gen: Any, *shape: int) -> Any:
    import torch

    return torch.randn(*shape, generator=gen)


def flux_step_inputs(transformer: Any, height: int, width: int, batch: int,
                     device: Any = "cpu", dtype: Any = None, seed: int = 1234,
                     text_tokens: int = 512,
                     image_in_sequence: bool = False) -> "tuple[tuple, dict]":
    """(args, kwargs) of one ``FluxTransformer2DModel`` call as FluxPipeline makes it:
    (hidden_states [batch, N, in_channels] packed latents,), {encoder_hidden_states
    [batch, text_tokens, joint_attention_dim] (T5), pooled_projections [batch,
    pooled_projection_dim] (CLIP), timestep [batch] in (0, 1] (the pipeline's t / 1000),
    img_ids [N, 3], txt_ids [text_tokens, 3] (float32 position ids for RoPE), guidance
    [batch] float32 3.5 for guidance-distilled models, else None}. N = (H/16)·(W/16), twice
    that with ``image_in_sequence`` (Kontext). Random values from a CPU generator seeded with
    ``seed``, then moved to ``device`` in ``dtype`` (None: float32); ids and guidance stay
    float32 as in the pipeline."""
    import torch

    dtype = dtype or torch.float32
    config = transformer.config
    gen = torch.Generator().manual_seed(seed)
    h, w = height // 16, width // 16
    ids = torch.zeros(h, w, 3)
    ids[..., 1] = torch.arange(h)[:, None]
    ids[..., 2] = torch.arange(w)[None, :]
    img_ids = ids.reshape(h * w, 3)
    if image_in_sequence:  # Kontext: the input image's ids carry 1 in the first axis
        cond = img_ids.clone()
        cond[:, 0] = 1
        img_ids = torch.cat([img_ids, cond])
    n = img_ids.shape[0]
    hidden = _randn(gen, batch, n, config.in_channels)
    text = _randn(gen, batch, text_tokens, config.joint_attention_dim)
    pooled = _randn(gen, batch, config.pooled_projection_dim)
    guidance = (torch.full((batch,), 3.5, device=device)
                if config.guidance_embeds else None)
    kwargs = dict(encoder_hidden_states=text.to(device, dtype),
                  pooled_projections=pooled.to(device, dtype),
                  timestep=torch.full((batch,), 0.5).to(device, dtype),
                  img_ids=img_ids.to(device), txt_ids=torch.zeros(text_tokens, 3).to(device),
                  guidance=guidance)
    return (hidden.to(device, dtype),), kwargs


def sd3_step_inputs(transformer: Any, height: int, width: int, batch: int,
                    device: Any = "cpu", dtype: Any = None, seed: int = 1234,
                    text_tokens: int = 333) -> "tuple[tuple, dict]":
    """(args, kwargs) of one ``SD3Transformer2DModel`` call as StableDiffusion3Pipeline makes
    it: (hidden_states [batch, in_channels, H/8, W/8] latents,), {encoder_hidden_states
    [batch, text_tokens, joint_attention_dim] (77 CLIP + T5 tokens), pooled_projections
    [batch, pooled_projection_dim], timestep [batch] float32 500 (of 1000)}. Random values
    from a CPU generator seeded with ``seed``, then moved to ``device`` in ``dtype`` (None:
    float32)."""
    import torch

    dtype = dtype or torch.float32
    config = transformer.config
    gen = torch.Generator().manual_seed(seed)
    hidden = _randn(gen, batch, config.in_channels, height // 8, width // 8)
    text = _randn(gen, batch, text_tokens, config.joint_attention_dim)
    pooled = _randn(gen, batch, config.pooled_projection_dim)
    kwargs = dict(encoder_hidden_states=text.to(device, dtype),
                  pooled_projections=pooled.to(device, dtype),
                  timestep=torch.full((batch,), 500.0).to(device))
    return (hidden.to(device, dtype),), kwargs
