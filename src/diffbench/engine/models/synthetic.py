"""``synthetic-sdxl``, ``synthetic-sd15``, ``synthetic-pix2pix``: full-size architectures with
random weights, built on the target device in seconds — speed measurement without downloads.

Architectures are the published configs (``config.json`` of stabilityai/stable-diffusion-xl-
base-1.0, runwayml/stable-diffusion-v1-5 and timbrooks/instruct-pix2pix): SDXL's UNet has
2.567 B parameters, its text encoders are CLIP ViT-L/14 and OpenCLIP ViT-bigG/14.

Construction: modules are built on the ``meta`` device (no memory, no init cost), moved to the
target device with ``to_empty`` and then every parameter is filled from one random pool:
weights (>= 2-D) get pool values scaled by 1/sqrt(fan_in) (fan_in = elements per output row;
the scale of PyTorch's default initialisers), norm weights 1 + 0.1 * pool, biases
0.02 * pool. Buffers (CLIP's position ids) are recomputed. Nothing is left uninitialised or
zero, so timings see real data; images are noise, timings and the whole code path are real.
"""

from __future__ import annotations

import math
from typing import Any

#: Elements in the random pool every parameter samples from (32 MiB of float32).
POOL_ELEMENTS = 1 << 23

# --------------------------------------------------------------------------- configs
# stabilityai/stable-diffusion-xl-base-1.0 unet/config.json
SDXL_UNET = dict(
    act_fn="silu", addition_embed_type="text_time", addition_embed_type_num_heads=64,
    addition_time_embed_dim=256, attention_head_dim=[5, 10, 20],
    block_out_channels=[320, 640, 1280], cross_attention_dim=2048,
    down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    in_channels=4, layers_per_block=2, out_channels=4,
    projection_class_embeddings_input_dim=2816, sample_size=128,
    transformer_layers_per_block=[1, 2, 10],
    up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    use_linear_projection=True,
)
# stabilityai/stable-diffusion-xl-base-1.0 vae/config.json
SDXL_VAE = dict(
    block_out_channels=[128, 256, 512, 512], down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4, in_channels=3, out_channels=3, latent_channels=4,
    layers_per_block=2, sample_size=1024, scaling_factor=0.13025, force_upcast=True,
)
# runwayml/stable-diffusion-v1-5 unet/config.json (instruct-pix2pix: in_channels 8)
SD15_UNET = dict(
    act_fn="silu", attention_head_dim=8, block_out_channels=[320, 640, 1280, 1280],
    cross_attention_dim=768,
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                      "DownBlock2D"],
    in_channels=4, layers_per_block=2, out_channels=4, sample_size=64,
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                    "CrossAttnUpBlock2D"],
)
SD15_VAE = dict(
    block_out_channels=[128, 256, 512, 512], down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4, in_channels=3, out_channels=3, latent_channels=4,
    layers_per_block=2, sample_size=512, scaling_factor=0.18215,
)
# openai/clip-vit-large-patch14 text model (SD 1.5 and SDXL's first encoder)
CLIP_L = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
              num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
              projection_dim=768)
# laion/CLIP-ViT-bigG-14-laion2B-39B-b160k text model (SDXL's second encoder)
CLIP_BIGG = dict(vocab_size=49408, hidden_size=1280, intermediate_size=5120,
                 num_hidden_layers=32, num_attention_heads=20, max_position_embeddings=77,
                 hidden_act="gelu", projection_dim=1280)
# Scheduler configs of the published models.
_BETAS = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
              beta_schedule="scaled_linear", steps_offset=1)


# --------------------------------------------------------------------------- filling
class RandomPool:
    """One random tensor that every parameter samples a window of (no per-tensor RNG cost).

    Args:
        device: where the pool (and the parameters) live.
        seed: seed of the CPU generator that fills the pool (same seed -> same weights on
            every device).
    """

    def __init__(self, device: Any, seed: int = 0) -> None:
        import torch

        # drawn on the CPU, then moved: the same weights on every device, so a model built
        # on the CPU for --cpu-offload equals the one built on the GPU (its baseline)
        generator = torch.Generator().manual_seed(seed)
        self.pool = torch.randn(POOL_ELEMENTS, generator=generator,
                                dtype=torch.float32).to(device)
        self._offset_rng = torch.Generator().manual_seed(seed + 1)

    def fill_(self, tensor: Any, scale: float, shift: float = 0.0) -> None:
        """tensor <- shift + scale * (pool windows), in place, chunk by chunk."""
        import torch

        flat = tensor.view(-1)
        total = flat.numel()
        start = 0
        while start < total:
            count = min(POOL_ELEMENTS // 2, total - start)
            offset = int(torch.randint(0, POOL_ELEMENTS - count + 1, (1,),
                                       generator=self._offset_rng))
            window = self.pool[offset:offset + count]
            flat[start:start + count].copy_(window.mul(scale).add_(shift))
            start += count


def fill_module(module: Any, pool: RandomPool) -> None:
    """Fill every parameter of a to_empty'd module from ``pool`` (see the module docstring)
    and recompute known buffers. Raises RuntimeError on a buffer it cannot recompute."""
    import torch

    with torch.no_grad():
        for name, param in module.named_parameters():
            if param.dim() >= 2:
                fan_in = param[0].numel()
                pool.fill_(param, 1.0 / math.sqrt(max(1, fan_in)))
            elif name.endswith("bias"):
                pool.fill_(param, 0.02)
            else:  # norm weights, scales
                pool.fill_(param, 0.1, 1.0)
        for name, buffer in module.named_buffers():
            if name.endswith("position_ids"):
                buffer.copy_(torch.arange(buffer.shape[-1], device=buffer.device)
                             .expand_as(buffer))
            elif name.endswith("pos_embed.pos_embed"):  # SD3's fixed sin-cos patch positions
                buffer.copy_(_sincos_positions(module.get_submodule(name.rsplit(".", 1)[0]),
                                               buffer))
            else:
                raise RuntimeError(f"synthetic model: no rule to initialise buffer {name}")


def _sincos_positions(patch_embed: Any, buffer: Any) -> Any:
    """A diffusers PatchEmbed's 2-D sin-cos position table [1, grid², dim], as its __init__
    computes it (diffusers/models/embeddings.py get_2d_sincos_pos_embed)."""
    from diffusers.models.embeddings import get_2d_sincos_pos_embed

    grid = int(round((buffer.shape[1]) ** 0.5))
    table = get_2d_sincos_pos_embed(buffer.shape[-1], grid, base_size=patch_embed.base_size,
                                    interpolation_scale=patch_embed.interpolation_scale,
                                    output_type="pt", device=buffer.device)
    return table.unsqueeze(0)


def materialise(factory: Any, device: Any, dtype: Any, pool: RandomPool) -> Any:
    """Build ``factory()`` on meta, cast to ``dtype`` there (free: the full-size model is never
    held in float32), move to ``device`` uninitialised, fill."""
    import torch

    with torch.device("meta"):
        module = factory()
    module = module.to(dtype=dtype)
    module = module.to_empty(device=device)
    fill_module(module, pool)
    module.eval()
    module.requires_grad_(False)
    return module


# --------------------------------------------------------------------------- builders
def _unet(config: dict) -> Any:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**config)


def _vae(config: dict) -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(**config)


def _clip(config: dict, with_projection: bool, tokenizer: Any) -> Any:
    """A CLIP text model with the real model's size (vocab 49408) and the offline tokenizer's
    special-token ids, so the pooled output picks the EOS position as with real weights."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    cls = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    return cls(CLIPTextConfig(**config, bos_token_id=tokenizer.bos_token_id,
                              eos_token_id=tokenizer.eos_token_id,
                              pad_token_id=tokenizer.pad_token_id))


def _tokenizer() -> Any:
    from diffbench.engine.models.tokenizer import offline_clip_tokenizer

    return offline_clip_tokenizer()


def build_sdxl(device: str, dtype: Any) -> dict:
    """SDXL base 1.0 components with random weights on ``device`` (dict for the pipeline)."""
    from diffusers import EulerDiscreteScheduler

    pool = RandomPool(device)
    tok = _tokenizer()
    return dict(
        unet=materialise(lambda: _unet(SDXL_UNET), device, dtype, pool),
        vae=materialise(lambda: _vae(SDXL_VAE), device, dtype, pool),
        text_encoder=materialise(lambda: _clip(CLIP_L, False, tok), device, dtype, pool),
        text_encoder_2=materialise(lambda: _clip(CLIP_BIGG, True, tok), device, dtype, pool),
        tokenizer=tok, tokenizer_2=_tokenizer(),
        scheduler=EulerDiscreteScheduler(**_BETAS, timestep_spacing="leading"),
    )


def _build_sd15_like(device: str, dtype: Any, in_channels: int, scheduler: Any) -> dict:
    pool = RandomPool(device)
    tok = _tokenizer()
    unet_config = dict(SD15_UNET, in_channels=in_channels)
    return dict(
        unet=materialise(lambda: _unet(unet_config), device, dtype, pool),
        vae=materialise(lambda: _vae(SD15_VAE), device, dtype, pool),
        text_encoder=materialise(lambda: _clip(CLIP_L, False, tok), device, dtype, pool),
        tokenizer=tok, scheduler=scheduler,
    )


def build_sd15(device: str, dtype: Any) -> dict:
    """Stable Diffusion 1.5 components with random weights on ``device``."""
    from diffusers import PNDMScheduler

    return _build_sd15_like(device, dtype, 4, PNDMScheduler(**_BETAS, skip_prk_steps=True))


def build_pix2pix(device: str, dtype: Any) -> dict:
    """instruct-pix2pix components (SD 1.5 with an 8-channel UNet input) on ``device``."""
    from diffusers import EulerAncestralDiscreteScheduler

    return _build_sd15_like(device, dtype, 8, EulerAncestralDiscreteScheduler(**_BETAS))


def register() -> None:
    """Register the three synthetic models with diffbench.engine.models (runs at import: the registry
    imports this module when a synthetic-* name is first asked for)."""
    from diffbench.engine.models.registry import BuiltinModel, register_builtin

    register_builtin(BuiltinModel(
        name="synthetic-sdxl", family="sdxl", build=build_sdxl, native_size=1024,
        description="SDXL base 1.0 architecture (UNet 2.57 B params), random weights; GPU"))
    register_builtin(BuiltinModel(
        name="synthetic-sd15", family="sd15", build=build_sd15, native_size=512,
        description="Stable Diffusion 1.5 architecture, random weights; GPU"))
    register_builtin(BuiltinModel(
        name="synthetic-pix2pix", family="pix2pix", build=build_pix2pix, native_size=512,
        description="instruct-pix2pix architecture (8-channel UNet), random weights; GPU"))


register()
