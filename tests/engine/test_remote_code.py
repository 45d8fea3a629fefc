"""Remote code and pickles (issue 18): a local custom pipeline runs with --trust-remote-code
(diffusers gets trust_remote_code), is refused with one line on a built-in model, from a
non-local source or without the flag; a pickled LoRA needs the flag, safetensors do not."""

from __future__ import annotations

import pytest

from diffbench.engine.config import RunConfig
from diffbench.engine.errors import ConfigError

CUSTOM = '''
import os

from diffusers import StableDiffusionPipeline


class MarkedPipeline(StableDiffusionPipeline):
    """A custom pipeline that leaves a mark when called."""

    def __call__(self, *args, **kwargs):
        with open(os.environ["CUSTOM_MARK"], "a") as mark:
            mark.write(type(self).__name__ + "\\n")
        return super().__call__(*args, **kwargs)
'''


@pytest.fixture(scope="module")
def sd15_folder(tmp_path_factory):
    import torch

    from diffbench.engine.models.loading import load_pipeline

    folder = tmp_path_factory.mktemp("model") / "sd15"
    load_pipeline(RunConfig(model="tiny-sd15"), "cpu", torch.float32).save_pretrained(folder)
    return str(folder)


@pytest.fixture
def custom(tmp_path, monkeypatch):
    import diffusers.utils.dynamic_modules_utils as modules

    # diffusers copies the custom module into its modules cache: keep that in tmp_path
    monkeypatch.setattr(modules, "HF_MODULES_CACHE", str(tmp_path / "modules"))
    monkeypatch.setenv("CUSTOM_MARK", str(tmp_path / "mark"))
    folder = tmp_path / "custom"
    folder.mkdir()
    (folder / "pipeline.py").write_text(CUSTOM)
    return folder


def test_local_custom_pipeline_runs_with_trust_remote_code(sd15_folder, custom, tmp_path):
    from diffbench.engine.runner import run

    cfg = RunConfig(model=sd15_folder, custom_pipeline=str(custom), trust_remote_code=True,
                    steps=2, warmups=0, height=64, width=64, device="cpu")
    result = run(cfg)
    assert result.status == "finished", result.error
    assert (tmp_path / "mark").read_text() == "MarkedPipeline\n"  # its code ran


@pytest.mark.parametrize("model, pipeline, message", [
    ("tiny-sd15", "{custom}", "tiny-sd15 is a built-in model"),
    ("{folder}", "lpw_stable_diffusion", "not a local folder with a pipeline.py"),
    ("{folder}", "{empty}", "has no pipeline.py"),
])
def test_custom_pipeline_that_would_be_ignored_or_fetched_is_refused(
        sd15_folder, custom, tmp_path, model, pipeline, message):
    from diffbench.engine.preflight import preflight

    (tmp_path / "empty").mkdir()
    fill = {"{custom}": str(custom), "{folder}": sd15_folder, "{empty}": str(tmp_path / "empty")}
    cfg = RunConfig(model=fill.get(model, model), custom_pipeline=fill.get(pipeline, pipeline),
                    trust_remote_code=True)
    with pytest.raises(ConfigError, match=message) as caught:
        preflight(cfg)
    assert "\n" not in str(caught.value)


def test_custom_pipeline_without_the_flag_is_refused():
    with pytest.raises(ConfigError, match="--trust-remote-code"):
        RunConfig(model="tiny-sd15", custom_pipeline="x")


def test_pickled_lora_needs_trust_remote_code(tmp_path):
    from diffbench.engine.accelerators.lora import LoRA

    for name in ("lora.bin", "lora.pt"):
        (tmp_path / name).write_bytes(b"pickle")
        with pytest.raises(ConfigError, match="not .safetensors.*--trust-remote-code"):
            LoRA().validate(RunConfig(model="tiny-sd15", lora=str(tmp_path / name)))
    folder = tmp_path / "bin-only"
    folder.mkdir()
    (folder / "pytorch_lora_weights.bin").write_bytes(b"pickle")
    with pytest.raises(ConfigError, match="not .safetensors"):
        LoRA().validate(RunConfig(model="tiny-sd15", lora=str(folder)))
    trusted = RunConfig(model="tiny-sd15", lora=str(tmp_path / "lora.bin"),
                        trust_remote_code=True)
    try:
        LoRA().validate(trusted)
    except ConfigError as exc:  # only a missing peft may stop it now
        assert "peft" in str(exc)
    (tmp_path / "lora.safetensors").write_bytes(b"x")
    try:
        LoRA().validate(RunConfig(model="tiny-sd15", lora=str(tmp_path / "lora.safetensors")))
    except ConfigError as exc:
        assert "peft" in str(exc)


def test_an_untrusted_lora_folder_never_falls_back_to_a_pickle(monkeypatch):
    from diffbench.engine.accelerators import lora

    calls = []

    class Pipe:
        def load_lora_weights(self, path, **kwargs):
            calls.append(kwargs)

    monkeypatch.setattr(lora, "require_peft", lambda: None)
    lora.load_lora(Pipe(), "folder")
    lora.load_lora(Pipe(), "folder", trust_remote_code=True)
    assert calls == [{"use_safetensors": True}, {}]
