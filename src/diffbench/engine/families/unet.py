"""What the UNet families (SD 1.5, SDXL, InstructPix2Pix) share: one denoising step's inputs
and the FLOPs of one ``UNet2DConditionModel`` call.

FLOP formula (:func:`unet_step_flops`): walks the UNet's config the way diffusers'
``UNet2DConditionModel.__init__`` builds it (diffusers/models/unets/unet_2d_condition.py,
unet_2d_blocks.py, resnet.py, attention.py, transformers/transformer_2d.py) and counts, as
torch.utils.flop_counter does, 2 FLOPs per multiply-add of every convolution and linear layer
and of the two attention matmuls (Q·Kᵀ and attention·V); norms, activations, softmax and
additions are not counted. With ``b`` the denoiser batch, ``n`` the latent positions at a
level, ``c`` its channels, ``m`` the text tokens and ``d`` the text width:

- convolution k x k: 2·b·n_out·c_in·c_out·k²; ResNet block: two 3x3 convolutions, the
  1x1 shortcut when the width changes, and its time-embedding projection;
- transformer block: self-attention 4 projections (8·b·n·c²) + 4·b·n²·c; cross-attention
  query/output (4·b·n·c²), key/value on the text (4·b·m·d·c) + 4·b·n·m·c; GEGLU feed-forward
  c -> 8c -> (4c) -> c (24·b·n·c²); proj_in/proj_out 4·b·n·c²;
- time (and SDXL's text-time) embeddings: two linear layers each.

A test checks the formula against torch.utils.flop_counter on the tiny models at two sizes.
"""

from __future__ import annotations

from typing import Any

#: Text tokens per prompt (CLIP's context length).
TEXT_TOKENS = 77


def _get(config: Any, key: str, default: Any = None) -> Any:
    if isinstance(config, dict):
        return config.get(key, default)
    return getattr(config, key, default)


def _per_block(value: Any, count: int) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value] * count


def unet_step_flops(config: Any, height: int, width: int, batch: int,
                    text_tokens: int = TEXT_TOKENS, latent_factor: int = 8) -> float:
    """FLOPs of one ``UNet2DConditionModel`` call on ``batch`` rows of height x width pixels
    (latents of height/latent_factor x width/latent_factor), from the UNet's config (a dict or
    a diffusers FrozenDict). The formula and its source are in the module docstring.
    """
    b, m = int(batch), int(text_tokens)
    channels = list(_get(config, "block_out_channels"))
    levels = len(channels)
    down_types = list(_get(config, "down_block_types"))
    up_types = list(_get(config, "up_block_types"))
    layers = _get(config, "layers_per_block", 2)
    layers_down = _per_block(layers, levels)
    tlpb = _per_block(_get(config, "transformer_layers_per_block", 1) or 1, levels)
    reverse_tlpb = _get(config, "reverse_transformer_layers_per_block") or list(reversed(tlpb))
    d = _get(config, "cross_attention_dim")
    d = _per_block(d, levels)
    c0 = channels[0]
    temb = _get(config, "time_embedding_dim") or 4 * c0

    h, w = height // latent_factor, width // latent_factor
    sizes = [(h, w)]
    for _ in range(levels - 1):
        ph, pw = sizes[-1]
        sizes.append(((ph + 1) // 2, (pw + 1) // 2))  # 3x3 stride-2 conv, padding 1
    npos = [sh * sw for sh, sw in sizes]

    def conv(cin: int, cout: int, k: int, n_out: int) -> int:
        return 2 * b * n_out * cin * cout * k * k

    def resnet(cin: int, cout: int, n: int) -> int:
        flops = conv(cin, cout, 3, n) + conv(cout, cout, 3, n) + 2 * b * temb * cout
        return flops + (conv(cin, cout, 1, n) if cin != cout else 0)

    def transformer(c: int, depth: int, n: int, text_dim: int) -> int:
        block = (8 * b * n * c * c + 4 * b * n * n * c               # self-attention
                 + 4 * b * n * c * c + 4 * b * m * text_dim * c     # cross-attention proj.
                 + 4 * b * n * m * c                                # cross-attention matmuls
                 + 24 * b * n * c * c)                              # GEGLU feed-forward
        return 4 * b * n * c * c + depth * block                    # + proj_in / proj_out

    in_ch = _get(config, "in_channels", 4)
    out_ch = _get(config, "out_channels", 4)
    total = conv(in_ch, c0, 3, npos[0]) + conv(c0, out_ch, 3, npos[0])
    total += 2 * b * (c0 * temb + temb * temb)                      # time embedding
    if _get(config, "addition_embed_type") == "text_time":          # SDXL text-time embedding
        proj = _get(config, "projection_class_embeddings_input_dim")
        total += 2 * b * (proj * temb + temb * temb)

    prev = c0
    for i, kind in enumerate(down_types):
        out, n = channels[i], npos[i]
        for j in range(layers_down[i]):
            total += resnet(prev if j == 0 else out, out, n)
            if "CrossAttn" in kind:
                total += transformer(out, tlpb[i], n, d[i])
        if i < levels - 1:
            total += conv(out, out, 3, npos[i + 1])                 # downsampler
        prev = out

    mid = _get(config, "mid_block_type", "UNetMidBlock2DCrossAttn")
    if mid is not None:
        c, n = channels[-1], npos[-1]
        total += 2 * resnet(c, c, n)
        if "CrossAttn" in mid:
            total += transformer(c, tlpb[-1], n, d[-1])

    rev = list(reversed(channels))
    rev_layers = list(reversed(layers_down))
    rev_d = list(reversed(d))
    out = rev[0]
    for i, kind in enumerate(up_types):
        prev_out, out = out, rev[i]
        skip_in = rev[min(i + 1, levels - 1)]
        level = levels - 1 - i
        n = npos[level]
        resnets = rev_layers[i] + 1
        for j in range(resnets):
            skip = skip_in if j == resnets - 1 else out
            total += resnet((prev_out if j == 0 else out) + skip, out, n)
            if "CrossAttn" in kind:
                total += transformer(out, reverse_tlpb[i], n, rev_d[i])
        if i < levels - 1:
            total += conv(out, out, 3, npos[level - 1])             # upsampler (after 2x)
    return float(total)


def unet_step_inputs(unet: Any, height: int, width: int, batch: int, device: Any = "cpu",
                     dtype: Any = None, seed: int = 1234) -> "tuple[tuple, dict]":
    """(args, kwargs) of one ``UNet2DConditionModel`` call on ``batch`` rows of height x width
    pixels: (sample [batch, in_channels, h/8, w/8], timestep 0-d float32 tensor 500),
    {encoder_hidden_states [batch, 77, cross_attention_dim]} plus, for SDXL's text-time
    conditioning, added_cond_kwargs {text_embeds [batch, pooled], time_ids [batch, 6]}.
    Random values from a CPU generator seeded with ``seed`` (the same in every process), then
    moved to ``device`` in ``dtype`` (None: float32)."""
    import torch

    dtype = dtype or torch.float32
    config = unet.config
    gen = torch.Generator().manual_seed(seed)
    sample = torch.randn(batch, config.in_channels, height // 8, width // 8, generator=gen)
    text = torch.randn(batch, TEXT_TOKENS, config.cross_attention_dim, generator=gen)
    kwargs: dict = {"encoder_hidden_states": text.to(device, dtype)}
    if getattr(config, "addition_embed_type", None) == "text_time":
        pooled = config.projection_class_embeddings_input_dim - \
            6 * config.addition_time_embed_dim
        kwargs["added_cond_kwargs"] = {
            "text_embeds": torch.randn(batch, pooled, generator=gen).to(device, dtype),
            "time_ids": torch.tensor([[height, width, 0, 0, height, width]] * batch,
                                     dtype=torch.float32).to(device, dtype)}
    timestep = torch.tensor(500.0, device=device)
    return (sample.to(device, dtype), timestep), kwargs
