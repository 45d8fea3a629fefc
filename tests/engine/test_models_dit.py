"""The diffusion-transformer built-ins and folders: tiny-flux, tiny-flux-kontext, tiny-sd3
(CPU, offline), the synthetic full-size architectures counted on the meta device, the offline
T5 tokenizer, local folders loading with their family's pipeline class, the flow-matching
scheduler and the memory options' checks."""

from __future__ import annotations

import json

import pytest

from diffbench.engine import families
from diffbench.engine.config import RunConfig
from diffbench.engine.errors import ConfigError
from diffbench.engine.models import get_builtin, list_builtins, resolve_source

torch = pytest.importorskip("torch")

TINY = {"tiny-flux": ("flux", "FluxPipeline"),
        "tiny-flux-kontext": ("flux_kontext", "FluxKontextPipeline"),
        "tiny-sd3": ("sd3", "StableDiffusion3Pipeline")}
SYNTHETIC = {"synthetic-flux-dev": "flux", "synthetic-flux-schnell": "flux",
             "synthetic-sd35-large": "sd3", "synthetic-sd35-medium": "sd3"}


def params_on_meta(factory) -> int:
    with torch.device("meta"):
        module = factory()
    return sum(p.numel() for p in module.parameters())


def test_builtins_are_registered_with_their_families_and_in_the_picker_list():
    from diffbench.engine.config import BUILTIN_MODELS

    builtins = list_builtins()
    for name, (family, _) in TINY.items():
        assert builtins[name].family == family and builtins[name].native_size == 128
    for name, family in SYNTHETIC.items():
        assert builtins[name].family == family and builtins[name].native_size == 1024
        assert builtins[name].denoiser_config
    assert set(TINY) | set(SYNTHETIC) <= set(BUILTIN_MODELS)
    assert set(BUILTIN_MODELS) <= set(builtins)  # every suggestion exists


def test_offline_t5_tokenizer_pads_truncates_and_saves(tmp_path):
    from transformers import AutoTokenizer

    from diffbench.engine.models.tokenizer import offline_t5_tokenizer

    tok = offline_t5_tokenizer()
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)
    ids = tok("a cat", padding="max_length", max_length=16, truncation=True).input_ids
    assert len(ids) == 16 and ids[-1] == 0 and 1 in ids
    long = tok("x" * 600, padding="max_length", max_length=512, truncation=True).input_ids
    assert len(long) == 512 and long[-1] == tok.eos_token_id
    tok.save_pretrained(str(tmp_path))
    again = AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True)
    assert again("a cat").input_ids == tok("a cat").input_ids


def test_synthetic_flux_dev_on_meta_11_9_b_params_19_plus_38_blocks():
    from diffbench.engine.models import synthetic_dit as sd

    with torch.device("meta"):
        model = sd._flux_transformer(sd.FLUX_DEV_TRANSFORMER)
    assert sum(p.numel() for p in model.parameters()) == 11_901_408_320  # published 11.9 B
    assert (len(model.transformer_blocks), len(model.single_transformer_blocks)) == (19, 38)
    attn = model.transformer_blocks[0].attn
    assert (attn.heads, attn.head_dim) == (24, 128)
    blocks = families.get("flux").blocks(model)
    assert len(blocks) == 57
    schnell = params_on_meta(lambda: sd._flux_transformer(sd.FLUX_SCHNELL_TRANSFORMER))
    assert schnell == 11_891_178_560  # no guidance embedder


def test_synthetic_text_encoders_vae_and_sd35_sizes():
    from diffbench.engine.models import synthetic, synthetic_dit as sd

    clip_tok, t5_tok = sd._tokenizers()
    assert params_on_meta(lambda: sd._t5(sd.T5_XXL, t5_tok)) == 4_762_310_656  # T5-XXL enc.
    assert params_on_meta(lambda: synthetic._vae(sd.FLUX_VAE)) == 83_819_683
    assert params_on_meta(lambda: sd._sd3_transformer(sd.SD35_LARGE_TRANSFORMER)) == \
        8_056_627_520  # published 8.1 B
    assert params_on_meta(lambda: sd._sd3_transformer(sd.SD35_MEDIUM_TRANSFORMER)) == \
        2_243_171_520  # + the 384² position table: the published 2.5 B
    with torch.device("meta"):
        vae = synthetic._vae(sd.SD35_VAE)
    assert vae.config.latent_channels == 16 and vae.config.shift_factor == 0.0609


def test_synthetic_sd3_position_table_is_recomputed():
    """SD3's sin-cos position buffer is not left uninitialised by the meta build."""
    import diffusers

    from diffbench.engine.models.synthetic import RandomPool, materialise

    config = dict(sample_size=16, patch_size=2, in_channels=16, num_layers=1,
                  attention_head_dim=8, num_attention_heads=2, joint_attention_dim=32,
                  caption_projection_dim=16, pooled_projection_dim=32, out_channels=16,
                  pos_embed_max_size=24)
    model = materialise(lambda: diffusers.SD3Transformer2DModel(**config), "cpu",
                        torch.bfloat16, RandomPool("cpu"))
    torch.manual_seed(0)
    reference = diffusers.SD3Transformer2DModel(**config)
    assert model.pos_embed.pos_embed.dtype == torch.bfloat16  # cast on meta, before filling
    assert torch.allclose(model.pos_embed.pos_embed.float(), reference.pos_embed.pos_embed,
                          atol=1e-2)
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())


@pytest.mark.parametrize("name", list(TINY))
def test_tiny_transformer_flops_equal_torch_flop_counter(name):
    from test_families_dit import counted

    spec = families.get(TINY[name][0])
    components = get_builtin(name).build("cpu")
    model = components["transformer"]
    assert sum(p.numel() for p in model.parameters()) < 500_000
    assert spec.flops_per_step(model.config, 128, 128) == counted(spec, model, 128)
    assert dict(model.config).items() >= dict(get_builtin(name).denoiser_config).items()


@pytest.mark.parametrize("name", list(TINY))
def test_local_folder_loads_with_its_family_pipeline(tmp_path, name):
    from diffbench.engine.models import load_pipeline

    family, cls = TINY[name]
    pipe = load_pipeline(RunConfig(model=name), "cpu", torch.float32)
    assert type(pipe).__name__ == cls
    folder = tmp_path / "my-model"  # nothing in the name says which model it is
    pipe.save_pretrained(str(folder))
    assert json.loads((folder / "model_index.json").read_text())["_class_name"] == cls
    source = resolve_source(str(folder))
    assert (source.family, source.pipeline_class) == (family, cls)
    assert source.denoiser_config()["num_attention_heads"] == 2
    loaded = load_pipeline(RunConfig(model=str(folder)), "cpu", torch.float32)
    assert type(loaded).__name__ == cls and families.for_pipeline(loaded).family == family
    assert type(loaded.scheduler).__name__ == "FlowMatchEulerDiscreteScheduler"


def test_flow_matching_models_keep_their_scheduler_and_refuse_unet_ones():
    from diffbench.engine.models import load_pipeline
    from diffbench.engine.models.loading import check_compatible, scheduler_for

    flux, sd15 = families.get("flux"), families.get("sd15")
    assert scheduler_for(RunConfig(model="tiny-flux"), flux) == "none"  # catalog default
    with pytest.raises(ConfigError) as info:
        check_compatible(RunConfig(model="tiny-flux", scheduler="DDIMScheduler"),
                         resolve_source("tiny-flux"))
    assert info.value.field == "scheduler" and "flow-matching" in str(info.value)
    with pytest.raises(ConfigError, match="for flow-matching models"):
        scheduler_for(RunConfig(scheduler="FlowMatchEulerDiscreteScheduler"), sd15)
    pipe = load_pipeline(RunConfig(model="tiny-sd3",
                                   scheduler="FlowMatchEulerDiscreteScheduler"), "cpu",
                         torch.float32)
    assert pipe.scheduler.config.shift == 3.0  # rebuilt from the model's own config


@pytest.mark.parametrize("changes,field,words", [
    (dict(height=136), "height", "multiple of 16"),
    (dict(model="tiny-sd15", max_sequence_length=128), "max_sequence_length", "no T5"),
    (dict(model="synthetic-flux-schnell", guidance_scale=3.5), "guidance_scale",
     "schnell is not guidance-distilled"),
    (dict(task="i2i", input_image=__file__, model="tiny-flux-kontext"), None,
     "does not fit"),
])
def test_model_checks_refuse_with_one_line(changes, field, words):
    from diffbench.engine.models.loading import check_compatible

    cfg = RunConfig(**dict(dict(model="tiny-flux"), **changes))
    with pytest.raises(ConfigError) as info:
        check_compatible(cfg, resolve_source(cfg.model))
    assert words in str(info.value) and "\n" not in str(info.value)
    if field:
        assert info.value.field == field


@pytest.mark.parametrize("changes,words", [
    (dict(text_encoder_quant="int8"), "needs a CUDA GPU"),
    (dict(text_encoder_quant="fp8"), "needs a CUDA GPU"),
    (dict(cpu_offload=True), "this run is on the CPU"),
    (dict(model="tiny-sdxl", text_encoder_quant="int8"), "has none (CLIP only)"),
])
def test_memory_options_refused_where_they_cannot_work(changes, words):
    from diffbench.engine.models.loading import check_device_settings

    cfg = RunConfig(**dict(dict(model="tiny-flux"), **changes))
    with pytest.raises(ConfigError) as info:
        check_device_settings(cfg, resolve_source(cfg.model).spec, "cpu")
    assert words in str(info.value) and "\n" not in str(info.value)


def test_memory_options_without_torchao_or_fp8(monkeypatch):
    from diffbench.engine.accelerators import versions
    from diffbench.engine.models import memory

    spec = families.get("flux")
    monkeypatch.setattr(versions, "dist_version", lambda name: None)
    with pytest.raises(ConfigError, match="needs torchao: pip install torchao"):
        memory.check(RunConfig(text_encoder_quant="int8"), spec, "cuda")
    monkeypatch.setattr(versions, "dist_version", lambda name: "0.18.0")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index: (8, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: "NVIDIA A100")
    with pytest.raises(ConfigError, match="fp8 needs compute capability >= 8.9.*A100.*8.0"):
        memory.check(RunConfig(text_encoder_quant="fp8"), spec, "cuda")
    memory.check(RunConfig(text_encoder_quant="int8", cpu_offload=True), spec, "cuda")


def test_kontext_with_an_input_image_is_an_edit():
    cfg = RunConfig(model="tiny-flux-kontext", input_image=__file__)
    assert cfg.task == "pix2pix"
    assert RunConfig(model="tiny-flux", input_image=__file__).task == "i2i"
    assert RunConfig(model="tiny-flux-kontext").task == "t2i"
