"""Model sources, the offline tokenizer and the tiny built-in models."""

from __future__ import annotations

import json

import pytest

from diffbench.engine.config import RunConfig
from diffbench.engine.errors import ConfigError, ModelNotFoundError
from diffbench.engine.models import list_builtins, resolve_source
from diffbench.engine.models.loading import pipeline_class_name


def test_offline_tokenizer_pads_to_clip_length(tmp_path):
    from diffbench.engine.models.tokenizer import offline_clip_tokenizer, vocab_size

    tok = offline_clip_tokenizer(str(tmp_path / "tok"))
    assert len(tok) == vocab_size() == 514
    ids = tok("a Cat", padding="max_length", max_length=77, truncation=True).input_ids
    assert len(ids) == 77
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    # lower-cased, one token per character (+ word end): "a</w>", "c", "a", "t</w>"
    assert tok.decode(ids[1:5]) == "a cat"
    assert (tmp_path / "tok" / "vocab.json").is_file()


def test_builtins_are_registered_with_families():
    builtins = list_builtins()
    assert {"tiny-sd15": "sd15", "tiny-sdxl": "sdxl", "tiny-pix2pix": "pix2pix"}.items() <= \
        {name: m.family for name, m in builtins.items()}.items()
    source = resolve_source("tiny-sdxl")
    assert (source.kind, source.family, source.native_size) == ("builtin", "sdxl", 128)


def test_unknown_builtin_and_unknown_name():
    with pytest.raises(ModelNotFoundError, match="built-in models: .*tiny-sd15"):
        resolve_source("tiny-nope")
    with pytest.raises(ModelNotFoundError, match="unknown model"):
        resolve_source("no such model!")


def test_uncached_hub_id_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelNotFoundError) as info:
        resolve_source("SG161222/RealVisXL_V4.0")
    message = str(info.value)
    assert "hf download SG161222/RealVisXL_V4.0" in message
    assert "local diffusers folder" in message and "\n" not in message


def test_local_folder_family_from_model_index(tmp_path):
    (tmp_path / "model_index.json").write_text(
        json.dumps({"_class_name": "StableDiffusionXLPipeline"}))
    source = resolve_source(str(tmp_path))
    assert (source.kind, source.family, source.path) == ("local", "sdxl", str(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError, match="no model_index.json"):
        resolve_source(str(empty))


def test_local_folder_without_class_name_is_refused(tmp_path):
    (tmp_path / "model_index.json").write_text("{}")
    with pytest.raises(ModelNotFoundError,
                       match="not a diffusers pipeline folder: model_index.json has no "
                             "_class_name"):
        resolve_source(str(tmp_path))


def test_pipeline_class_by_family_and_task():
    assert pipeline_class_name("sd15", "i2i") == "StableDiffusionImg2ImgPipeline"
    assert pipeline_class_name("sdxl", "t2i") == "StableDiffusionXLPipeline"
    assert pipeline_class_name("pix2pix", "pix2pix") == "StableDiffusionInstructPix2PixPipeline"
    with pytest.raises(ConfigError, match="does not fit a sdxl model"):
        pipeline_class_name("sdxl", "pix2pix")


@pytest.mark.parametrize("model,cls,extra", [
    ("tiny-sd15", "StableDiffusionPipeline", {}),
    ("tiny-sdxl", "StableDiffusionXLPipeline", {}),
])
def test_load_tiny_pipeline(model, cls, extra):
    import torch

    from diffbench.engine.models import load_pipeline
    from diffbench.engine.models.loading import native_size

    pipe = load_pipeline(RunConfig(model=model, scheduler="DDIMScheduler", **extra), "cpu",
                         torch.float32)
    assert type(pipe).__name__ == cls
    assert type(pipe.scheduler).__name__ == "DDIMScheduler"
    assert pipe.vae_scale_factor == 8 and native_size(pipe) == 128
    assert getattr(pipe, "safety_checker", None) is None
    params = sum(p.numel() for p in pipe.unet.parameters())
    assert params < 2_000_000  # tiny: CPU seconds even at 1024 px


def test_tiny_weights_are_seeded():
    import torch

    from diffbench.engine.models.tiny import build_sd15

    a, b = build_sd15("cpu"), build_sd15("cpu")
    for name in ("unet", "vae", "text_encoder"):
        for pa, pb in zip(a[name].parameters(), b[name].parameters()):
            assert torch.equal(pa, pb)


def test_scheduler_none_keeps_the_models(monkeypatch):
    import torch

    from diffbench.engine.models import load_pipeline

    pipe = load_pipeline(RunConfig(model="tiny-pix2pix", task="pix2pix", scheduler="none",
                                   input_image=__file__), "cpu", torch.float32)
    assert type(pipe).__name__ == "StableDiffusionInstructPix2PixPipeline"
    assert type(pipe.scheduler).__name__ == "EulerAncestralDiscreteScheduler"
    assert pipe.unet.config.in_channels == 8


def test_cached_hub_id_resolves_to_its_snapshot(monkeypatch, tmp_path):
    # the Hugging Face cache layout: models--owner--name/{refs/main, snapshots/<rev>/...}
    repo = tmp_path / "hub" / "models--owner--cached-model"
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    (snapshot / "model_index.json").write_text(
        json.dumps({"_class_name": "StableDiffusionInstructPix2PixPipeline"}))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    source = resolve_source("owner/cached-model")
    assert (source.kind, source.family, source.path) == ("hub", "pix2pix", str(snapshot))
