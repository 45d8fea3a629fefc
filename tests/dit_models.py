"""Tiny diffusion-transformer pipelines (FLUX.1, SD3) and their denoiser specs, built here for
the transformer-accelerator tests: random seeded weights, offline tokenizers, CPU, seconds.

The specs follow what a family module declares (denoiser on ``transformer``, the model's
repeated blocks, one forward per step for guidance-distilled FLUX, two for SD3's CFG); the
accelerators must work from the spec alone.
"""

from __future__ import annotations

from typing import Any

from diffbench.engine.families.spec import DenoiserSpec

#: Pixels of the test images (latents 16x16 with the 8x VAE; FLUX packs them to 64 tokens).
SIZE = 128
TEXT_LEN = 16


def _flux_inputs(denoiser: Any, height: int, width: int, batch: int, device: Any, dtype: Any,
                 seed: int) -> "tuple[tuple, dict]":
    """One FLUX step: packed latents (batch, h/16*w/16, in_channels), T5 states (batch,
    TEXT_LEN, joint_attention_dim), pooled CLIP (batch, pooled_projection_dim), ids, timestep
    and guidance in [0, 1] (float32 -> ``dtype``)."""
    import torch

    cfg = denoiser.config
    gen = torch.Generator("cpu").manual_seed(seed)
    tokens = (height // 16) * (width // 16)
    rnd = lambda *shape: torch.randn(*shape, generator=gen).to(device, dtype)  # noqa: E731
    kwargs = dict(hidden_states=rnd(batch, tokens, cfg.in_channels),
                  encoder_hidden_states=rnd(batch, TEXT_LEN, cfg.joint_attention_dim),
                  pooled_projections=rnd(batch, cfg.pooled_projection_dim),
                  timestep=torch.full((batch,), 0.5).to(device, dtype),
                  img_ids=torch.zeros(tokens, 3).to(device, dtype),
                  txt_ids=torch.zeros(TEXT_LEN, 3).to(device, dtype))
    if cfg.guidance_embeds:
        kwargs["guidance"] = torch.full((batch,), 3.5).to(device, dtype)
    return (), kwargs


def _sd3_inputs(denoiser: Any, height: int, width: int, batch: int, device: Any, dtype: Any,
                seed: int) -> "tuple[tuple, dict]":
    """One SD3 step: latents (batch, C, h/8, w/8), text states, pooled text, timestep."""
    import torch

    cfg = denoiser.config
    gen = torch.Generator("cpu").manual_seed(seed)
    rnd = lambda *shape: torch.randn(*shape, generator=gen).to(device, dtype)  # noqa: E731
    return (), dict(hidden_states=rnd(batch, cfg.in_channels, height // 8, width // 8),
                    encoder_hidden_states=rnd(batch, TEXT_LEN, cfg.joint_attention_dim),
                    pooled_projections=rnd(batch, cfg.pooled_projection_dim),
                    timestep=torch.full((batch,), 500.0).to(device, dtype))


FLUX_SPEC = DenoiserSpec(
    family="test-flux", label="FLUX.1 (test)", pipelines={"t2i": "FluxPipeline"},
    index_classes=("FluxPipeline",), denoiser_attr="transformer",
    denoiser_label="transformer",
    repeated_blocks=("FluxTransformerBlock", "FluxSingleTransformerBlock"), cfg_copies=1,
    step_inputs=_flux_inputs)
SD3_SPEC = DenoiserSpec(
    family="test-sd3", label="SD3 (test)", pipelines={"t2i": "StableDiffusion3Pipeline"},
    index_classes=("StableDiffusion3Pipeline",), denoiser_attr="transformer",
    denoiser_label="transformer", repeated_blocks=("JointTransformerBlock",), cfg_copies=2,
    step_inputs=_sd3_inputs)


def _seeded(build: Any) -> Any:
    import torch

    torch.manual_seed(0)
    return build()


def _vae(latent_channels: int) -> Any:
    from diffusers import AutoencoderKL

    return _seeded(lambda: AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=latent_channels,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16), layers_per_block=1, norm_num_groups=4,
        mid_block_add_attention=False, use_quant_conv=False, use_post_quant_conv=False,
        shift_factor=0.0609, scaling_factor=1.5035).eval())


def _clip(hidden: int, projection: bool = False) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from diffbench.engine.models.tokenizer import offline_clip_tokenizer

    tok = offline_clip_tokenizer()
    config = CLIPTextConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=37,
                            num_attention_heads=4, num_hidden_layers=2,
                            max_position_embeddings=77, projection_dim=hidden,
                            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                            pad_token_id=tok.pad_token_id)
    cls = CLIPTextModelWithProjection if projection else CLIPTextModel
    return _seeded(lambda: cls(config).eval())


def _t5(d_model: int) -> Any:
    from transformers import T5Config, T5EncoderModel

    from diffbench.engine.models.tokenizer import vocab_size

    return _seeded(lambda: T5EncoderModel(T5Config(
        vocab_size=vocab_size(), d_model=d_model, d_kv=8, d_ff=37, num_layers=2,
        num_heads=4)).eval())


def flux_transformer(layers: int = 2, single_layers: int = 3) -> Any:
    """A tiny FluxTransformer2DModel (guidance-distilled, like FLUX.1-dev), float32, CPU."""
    from diffusers import FluxTransformer2DModel

    return _seeded(lambda: FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=layers, num_single_layers=single_layers,
        attention_head_dim=8, num_attention_heads=2, joint_attention_dim=32,
        pooled_projection_dim=32, axes_dims_rope=(2, 2, 4), guidance_embeds=True).eval())


def sd3_transformer(layers: int = 3) -> Any:
    """A tiny SD3Transformer2DModel, float32, CPU."""
    from diffusers import SD3Transformer2DModel

    return _seeded(lambda: SD3Transformer2DModel(
        sample_size=16, patch_size=2, in_channels=4, num_layers=layers, attention_head_dim=8,
        num_attention_heads=2, joint_attention_dim=32, caption_projection_dim=16,
        pooled_projection_dim=32, out_channels=4, pos_embed_max_size=16).eval())


def flux_pipe(**transformer: Any) -> Any:
    """A tiny FluxPipeline on the CPU (CLIP + T5 text encoders, offline byte tokenizer)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline

    from diffbench.engine.models.tokenizer import offline_clip_tokenizer

    tok = offline_clip_tokenizer()
    return FluxPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=_vae(4),
                        text_encoder=_clip(32), tokenizer=tok, text_encoder_2=_t5(32),
                        tokenizer_2=tok, transformer=flux_transformer(**transformer))


def sd3_pipe(**transformer: Any) -> Any:
    """A tiny StableDiffusion3Pipeline on the CPU (two CLIP + T5, offline byte tokenizer)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline

    from diffbench.engine.models.tokenizer import offline_clip_tokenizer

    tok = offline_clip_tokenizer()
    return StableDiffusion3Pipeline(
        transformer=sd3_transformer(**transformer),
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=_vae(4),
        text_encoder=_clip(16, projection=True), tokenizer=tok,
        text_encoder_2=_clip(16, projection=True), tokenizer_2=tok, text_encoder_3=_t5(32),
        tokenizer_3=tok)


def call_kwargs(pipe: Any, steps: int = 8, seed: int = 0, **extra: Any) -> dict:
    """Keyword arguments of one tiny call returning latents (output_type "latent")."""
    import torch

    kwargs = dict(prompt="a cat", num_inference_steps=steps, height=SIZE, width=SIZE,
                  max_sequence_length=TEXT_LEN, output_type="latent",
                  generator=torch.Generator().manual_seed(seed))
    kwargs.update(extra)
    return kwargs


# --------------------------------------------------------------------------- stand-in model
#: families.get("test-flux") imports this module and reads SPEC.
SPEC = FLUX_SPEC
#: The built-in model name of the stand-in (until the FLUX family ships its tiny-flux).
STAND_IN = "test-tiny-flux"


def _build_flux(device: str = "cpu", dtype: Any = None) -> dict:
    """The tiny FLUX components (:func:`flux_pipe`) on ``device`` in ``dtype``, the transformer
    told its native latent size (sample_size 16 -> 128 px) as diffbench's loader asks."""
    pipe = flux_pipe()
    pipe.transformer.register_to_config(sample_size=SIZE // 8)
    parts = dict(pipe.components)
    for name, part in parts.items():
        if hasattr(part, "to") and hasattr(part, "parameters"):
            parts[name] = part.to(device=device, dtype=dtype) if dtype is not None \
                else part.to(device)
    return parts


def register_stand_in(monkeypatch: Any = None) -> str:
    """Register family "test-flux" (:data:`FLUX_SPEC`) and the built-in :data:`STAND_IN`
    model, so runs go through the real runner, CLI and session. With ``monkeypatch`` every
    change is undone after the test; without (a benchmark child) they stay. Returns the name.
    """
    from diffbench.engine import families
    from diffbench.engine.models import registry

    if monkeypatch is None:
        families.FAMILY_MODULES.setdefault(SPEC.family, __name__)
        registry.FAMILIES = families.names()
    else:
        monkeypatch.setitem(families.FAMILY_MODULES, SPEC.family, __name__)
        monkeypatch.setattr(registry, "FAMILIES", families.names())
        monkeypatch.setattr(families, "_SPECS", dict(families._SPECS))
        monkeypatch.setattr(registry, "_BUILTINS", dict(registry._BUILTINS))
    registry.register_builtin(registry.BuiltinModel(STAND_IN, SPEC.family, _build_flux, SIZE,
                                                    "tiny FLUX.1 stand-in (tests)"))
    return STAND_IN
