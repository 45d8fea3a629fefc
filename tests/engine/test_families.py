"""Model families (engine/families): the family comes from the pipeline class, never the name;
unsupported families are refused before loading; the spec's FLOP formula and step inputs
(UNets here; the diffusion transformers in test_families_dit.py)."""

from __future__ import annotations

import warnings

import json

import pytest

from diffbench.engine import families
from diffbench.engine.config import RunConfig
from diffbench.engine.errors import ConfigError

# FLUX, Kontext and SD3 are families now (test_families_dit.py); video and unknown ones are not.
UNSUPPORTED = ("WanPipeline", "SomethingNewPipeline")


def _flux_folder(path, class_name="FluxPipeline"):
    """A FLUX-shaped model folder: model_index.json and the components' configs."""
    path.mkdir(parents=True, exist_ok=True)
    index = {"_class_name": class_name, "_diffusers_version": "0.42.1",
             "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
             "text_encoder": ["transformers", "CLIPTextModel"],
             "text_encoder_2": ["transformers", "T5EncoderModel"],
             "tokenizer": ["transformers", "CLIPTokenizer"],
             "tokenizer_2": ["transformers", "T5TokenizerFast"],
             "transformer": ["diffusers", "FluxTransformer2DModel"],
             "vae": ["diffusers", "AutoencoderKL"]}
    (path / "model_index.json").write_text(json.dumps(index))
    (path / "transformer").mkdir(exist_ok=True)
    (path / "transformer" / "config.json").write_text(json.dumps({
        "_class_name": "FluxTransformer2DModel", "num_layers": 19,
        "num_single_layers": 38, "attention_head_dim": 128, "num_attention_heads": 24,
        "joint_attention_dim": 4096, "guidance_embeds": True}))
    (path / "vae").mkdir(exist_ok=True)
    (path / "vae" / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL",
                                                          "latent_channels": 16}))
    return path


@pytest.mark.parametrize("class_name", UNSUPPORTED)
def test_unsupported_family_is_refused_in_preflight_before_loading(tmp_path, monkeypatch,
                                                                   class_name):
    import diffusers

    from diffbench.engine.preflight import preflight
    from diffbench.engine.runner import run

    folder = _flux_folder(tmp_path / "FLUX.1-dev", class_name)
    loads = []
    for cls in ("StableDiffusionPipeline", "StableDiffusionXLPipeline"):
        monkeypatch.setattr(getattr(diffusers, cls), "from_pretrained",
                            classmethod(lambda c, *a, **k: loads.append(c.__name__)))
    with pytest.raises(ConfigError) as info:
        preflight(RunConfig(model=str(folder), device="cpu"))
    message = str(info.value)
    assert "family not supported yet" in message and class_name in message
    assert "\n" not in message
    result = run(RunConfig(model=str(folder), device="cpu", warmups=0))
    assert result.status == "failed" and "family not supported yet" in result.error
    assert loads == []  # never loaded with an SD pipeline class


def test_unsupported_family_cli_exit_2_one_line(tmp_path, capsys):
    from diffbench.cli.main import main

    folder = _flux_folder(tmp_path / "video", "SomethingNewPipeline")
    code = main(["run", "--model", str(folder), "--in-process", "--no-history"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "family not supported yet" in err and "SomethingNewPipeline" in err


def test_sdxl_folder_without_xl_in_its_name_loads_as_sdxl(tmp_path):
    import torch

    from diffbench.engine.models import load_pipeline, resolve_source

    saved = load_pipeline(RunConfig(model="tiny-sdxl"), "cpu", torch.float32)
    folder = tmp_path / "my-model"  # nothing in the name says SDXL
    saved.save_pretrained(str(folder))
    source = resolve_source(str(folder))
    assert (source.family, source.pipeline_class) == ("sdxl", "StableDiffusionXLPipeline")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipe = load_pipeline(RunConfig(model=str(folder)), "cpu", torch.float32)
    assert type(pipe).__name__ == "StableDiffusionXLPipeline"
    # the dtype keyword the installed diffusers wants (torch_dtype is deprecated in newer ones)
    assert not [w for w in caught if "torch_dtype" in str(w.message)]
    assert families.for_pipeline(pipe).family == "sdxl"
    # and a folder named like SDXL that holds SD 1.5 loads as SD 1.5
    sd15 = load_pipeline(RunConfig(model="tiny-sd15"), "cpu", torch.float32)
    sd15.save_pretrained(str(tmp_path / "stable-diffusion-XL-lookalike"))
    source = resolve_source(str(tmp_path / "stable-diffusion-XL-lookalike"))
    assert source.family == "sd15"


def test_builtin_family_comes_from_the_builder(monkeypatch):
    from diffbench.engine.models import registry, resolve_source

    # A built-in whose name says nothing: its builder's declaration decides.
    model = registry.BuiltinModel("tiny-neutral", "pix2pix", lambda d, t: {}, 128)
    monkeypatch.setitem(registry._BUILTINS, "tiny-neutral", model)
    assert resolve_source("tiny-neutral").family == "pix2pix"
    with pytest.raises(ValueError, match="family must be one of"):
        registry.BuiltinModel("tiny-x", "dalle", lambda d, t: {}, 128)


def test_specs_match_diffusers_and_the_loading_table():
    import diffusers

    for spec in families.all_specs():
        assert spec.family in families.names()
        for task, name in {**spec.pipelines, **spec.controlnet_pipelines}.items():
            assert hasattr(diffusers, name), name
        if spec.family in ("sd15", "sdxl", "pix2pix"):
            declared = getattr(diffusers, "UNet2DConditionModel")._repeated_blocks
            assert spec.repeated_blocks == tuple(declared)
            assert spec.denoiser_attr == "unet" and spec.cfg_doubles_batch
            assert not spec.flow_matching and spec.max_sequence_length is None
    assert families.get("pix2pix").cfg_copies == 3
    assert families.get("sdxl").denoiser_batch(2) == 4
    with pytest.raises(ConfigError, match="unknown model family"):
        families.get("dalle")


# ---------------------------------------------------------------------- FLOPs per step
def _counted(spec, unet, size, device="cpu"):
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    args, kwargs = spec.example_inputs(unet, size, size, batch=1, device=device)
    counter = FlopCounterMode(display=False)
    # The math attention kernel: the flop counter sees its matmuls on every device.
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        unet(*args, return_dict=False, **kwargs)
    return counter.get_total_flops()


@pytest.mark.parametrize("family,kwargs", [("sd15", {}), ("sdxl", {"sdxl": True}),
                                           ("pix2pix", {"in_channels": 8})])
def test_flop_formula_equals_torch_flop_counter_on_the_tiny_models(family, kwargs):
    from diffbench.engine.models import tiny

    spec = families.get(family)
    unet = tiny._unet(**kwargs)
    for size in (128, 200):  # 200 px: odd latent sizes at the lower levels
        assert spec.flops_per_step(unet.config, size, size) == _counted(spec, unet, size)


def test_flop_formula_on_the_full_size_sdxl_unet():
    """The published SDXL config on the meta device (no memory, no compute), and the known
    figure: about 13.5 TFLOP per step at 1024 px with CFG (batch 2)."""
    import diffusers
    import torch

    from diffbench.engine.models.synthetic import SDXL_UNET

    spec = families.get("sdxl")
    with torch.device("meta"):
        unet = diffusers.UNet2DConditionModel(**SDXL_UNET)
    assert spec.flops_per_step(unet.config, 256, 256) == _counted(spec, unet, 256, "meta")
    flops = spec.flops_per_step(SDXL_UNET, 1024, 1024)
    assert 13.4e12 < flops < 13.6e12
    assert spec.flops_per_step(SDXL_UNET, 1024, 1024, cfg=False) == pytest.approx(flops / 2)


def test_step_inputs_shapes_and_dtypes():
    import torch

    from diffbench.engine.models import tiny

    spec = families.get("sdxl")
    unet = tiny._unet(sdxl=True)
    (sample, timestep), kwargs = spec.example_inputs(unet, 96, 64, batch=3,
                                                     dtype=torch.bfloat16)
    assert sample.shape == (6, 4, 12, 8) and sample.dtype == torch.bfloat16
    assert kwargs["encoder_hidden_states"].shape == (6, 77, unet.config.cross_attention_dim)
    assert kwargs["added_cond_kwargs"]["time_ids"].shape == (6, 6)
    assert timestep.dtype == torch.float32 and timestep.dim() == 0
    again = spec.example_inputs(unet, 96, 64, batch=3, dtype=torch.bfloat16)[0][0]
    assert torch.equal(sample, again)  # seeded: the same in every process
