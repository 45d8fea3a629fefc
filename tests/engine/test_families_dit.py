"""The diffusion-transformer families (FLUX.1, FLUX.1 Kontext, SD3/3.5): their specs, the
FLOP formulas against torch's FlopCounterMode (small models, and the full FLUX.1-dev config
on the meta device: no memory, no compute), step inputs, the model card's settings."""

from __future__ import annotations

import pytest

from diffbench.engine import families
from diffbench.engine.config import RunConfig
from diffbench.engine.errors import ConfigError

DIT = ("flux", "flux_kontext", "sd3")


def _flux(**kwargs):
    import diffusers
    import torch

    torch.manual_seed(0)
    config = dict(patch_size=1, in_channels=64, num_layers=2, num_single_layers=3,
                  attention_head_dim=16, num_attention_heads=2, joint_attention_dim=48,
                  pooled_projection_dim=40, guidance_embeds=True, axes_dims_rope=(4, 6, 6))
    config.update(kwargs)
    return diffusers.FluxTransformer2DModel(**config).eval()


def _sd3(**kwargs):
    import diffusers
    import torch

    torch.manual_seed(0)
    config = dict(sample_size=16, patch_size=2, in_channels=16, num_layers=3,
                  attention_head_dim=8, num_attention_heads=4, joint_attention_dim=64,
                  caption_projection_dim=32, pooled_projection_dim=64, out_channels=16,
                  pos_embed_max_size=64, dual_attention_layers=(0,), qk_norm="rms_norm")
    config.update(kwargs)
    return diffusers.SD3Transformer2DModel(**config).eval()


def counted(spec, model, size, device="cpu", **kwargs):
    """FLOPs of one step as torch's FlopCounterMode counts them (math attention kernel, so
    the counter sees its matmuls on every device)."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    args, kw = spec.example_inputs(model, size, size, batch=1, device=device, **kwargs)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        model(*args, return_dict=False, **kw)
    return counter.get_total_flops()


def test_transformer_specs_match_diffusers():
    import diffusers

    for name in DIT:
        spec = families.get(name)
        assert spec.denoiser_attr == "transformer" and spec.denoiser_label == "transformer"
        assert spec.flow_matching and spec.size_multiple == 16
        for pipeline in spec.pipelines.values():
            assert hasattr(diffusers, pipeline), pipeline
        for index_class in spec.index_classes:
            assert families.for_index_class(index_class) is spec
    flux, sd3 = families.get("flux"), families.get("sd3")
    assert flux.repeated_blocks == tuple(diffusers.FluxTransformer2DModel._repeated_blocks)
    assert sd3.repeated_blocks == ("JointTransformerBlock",)
    # FLUX-dev: guidance is an input, one forward per step; SD3: CFG puts 2 copies in a batch
    assert flux.cfg_copies == 1 and flux.guidance_input and not flux.cfg_doubles_batch
    assert flux.denoiser_batch(2) == 2 and sd3.denoiser_batch(2) == 4
    assert (flux.max_sequence_length, sd3.max_sequence_length) == (512, 256)
    assert (flux.text_tokens(), sd3.text_tokens(), sd3.text_tokens(128)) == (512, 333, 205)
    assert families.get("flux_kontext").pipelines["pix2pix"] == "FluxKontextPipeline"
    assert "i2i" not in families.get("flux_kontext").pipelines


@pytest.mark.parametrize("tokens", [None, 7])
def test_flux_flop_formula_equals_torch_flop_counter(tokens):
    spec = families.get("flux")
    for model in (_flux(), _flux(guidance_embeds=False)):
        for size in (128, 160):  # 160 px: 10x10 packed tokens
            expected = counted(spec, model, size, max_sequence_length=tokens)
            assert spec.flops_per_step(model.config, size, size,
                                       max_sequence_length=tokens) == expected


def test_kontext_edit_counts_the_input_image_tokens():
    spec = families.get("flux_kontext")
    model = _flux()
    edit = spec.flops_per_step(model.config, 128, 128, image=True)
    assert edit == counted(spec, model, 128, image=True)
    assert edit > spec.flops_per_step(model.config, 128, 128)  # the sequence is longer


def test_sd3_flop_formula_equals_torch_flop_counter_with_and_without_cfg():
    spec = families.get("sd3")
    for model in (_sd3(), _sd3(dual_attention_layers=(), num_layers=2)):
        for size in (128, 160):
            for cfg in (True, False):
                assert spec.flops_per_step(model.config, size, size, cfg=cfg) == \
                    counted(spec, model, size, cfg=cfg)
    full = spec.flops_per_step(_sd3().config, 128, 128)
    assert spec.flops_per_step(_sd3().config, 128, 128, cfg=False) == pytest.approx(full / 2)


def test_full_size_flux_dev_on_meta_74_tflop_per_step():
    """The published FLUX.1-dev transformer config on the meta device: the formula equals
    FlopCounterMode at 1024x1024 (4096 image + 512 text tokens), about 74.4 TFLOP."""
    import diffusers
    import torch

    from diffbench.engine.models.synthetic_dit import FLUX_DEV_TRANSFORMER

    spec = families.get("flux")
    with torch.device("meta"):
        model = diffusers.FluxTransformer2DModel(**FLUX_DEV_TRANSFORMER)
    flops = spec.flops_per_step(model.config, 1024, 1024)
    assert flops == counted(spec, model, 1024, device="meta")
    assert 74.3e12 < flops < 74.5e12
    assert spec.flops_per_step(FLUX_DEV_TRANSFORMER, 1024, 1024, batch=2) == 2 * flops


def test_flux_step_inputs_shapes_and_dtypes():
    import torch

    spec = families.get("flux")
    model = _flux()
    (hidden,), kwargs = spec.example_inputs(model, 96, 64, batch=3, dtype=torch.bfloat16)
    assert hidden.shape == (3, 6 * 4, 64) and hidden.dtype == torch.bfloat16
    assert kwargs["encoder_hidden_states"].shape == (3, 512, 48)
    assert kwargs["pooled_projections"].shape == (3, 40)
    assert kwargs["img_ids"].shape == (24, 3) and kwargs["txt_ids"].shape == (512, 3)
    assert kwargs["guidance"].dtype == torch.float32 and kwargs["guidance"].shape == (3,)
    assert spec.example_inputs(_flux(guidance_embeds=False), 64, 64)[1]["guidance"] is None
    again = spec.example_inputs(model, 96, 64, batch=3, dtype=torch.bfloat16)[0][0]
    assert torch.equal(hidden, again)  # seeded: the same in every process
    (sample,), kwargs = families.get("sd3").example_inputs(_sd3(), 96, 64, batch=1)
    assert sample.shape == (2, 16, 12, 8)  # CFG: 2 copies
    assert kwargs["encoder_hidden_states"].shape == (2, 333, 64)


def test_model_card_settings_from_the_transformer_config():
    from diffbench.engine.models.synthetic_dit import (FLUX_DEV_TRANSFORMER,
                                                       FLUX_SCHNELL_TRANSFORMER,
                                                       SD35_LARGE_TRANSFORMER,
                                                       SD35_MEDIUM_TRANSFORMER)

    flux, sd3 = families.get("flux"), families.get("sd3")
    assert flux.recommended(FLUX_DEV_TRANSFORMER) == {
        "steps": 28, "guidance_scale": 3.5, "max_sequence_length": 512}
    assert flux.recommended(FLUX_SCHNELL_TRANSFORMER) == {"steps": 4,
                                                         "max_sequence_length": 256}
    assert sd3.recommended(SD35_LARGE_TRANSFORMER)["guidance_scale"] == 3.5
    assert sd3.recommended(SD35_MEDIUM_TRANSFORMER) == {
        "steps": 40, "guidance_scale": 4.5, "max_sequence_length": 256}


def test_schnell_refuses_guidance_and_dev_takes_it():
    flux = families.get("flux")
    schnell = {"guidance_embeds": False}
    with pytest.raises(ConfigError) as info:
        flux.check_model(RunConfig(guidance_scale=3.5), schnell)
    assert "schnell is not guidance-distilled" in str(info.value)
    assert info.value.field == "guidance_scale" and "\n" not in str(info.value)
    assert flux.check_model(RunConfig(), schnell) == []
    assert flux.check_model(RunConfig(guidance_scale=0.0), schnell) == []
    assert flux.check_model(RunConfig(guidance_scale=5.0), {"guidance_embeds": True}) == []
    notices = flux.check_model(RunConfig(negative_prompt="blurry"), {})
    assert notices and "true_cfg_scale" in notices[0]
