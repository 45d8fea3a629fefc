"""--controlnet: random ControlNet from the UNet config, local folders, control images, compile.

CPU, tiny models, 64x64, 2-3 steps.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from diffbench.engine import events as ev
from diffbench.cli.main import main as cli
from diffbench.engine.config import RunConfig
from diffbench.engine.errors import ConfigError, ModelNotFoundError
from diffbench.engine.preflight import preflight
from diffbench.engine.prepare import prepare
from diffbench.engine.runner import run

PIPELINES = {
    ("tiny-sd15", "t2i"): "StableDiffusionControlNetPipeline",
    ("tiny-sd15", "i2i"): "StableDiffusionControlNetImg2ImgPipeline",
    ("tiny-sdxl", "t2i"): "StableDiffusionXLControlNetPipeline",
    ("tiny-sdxl", "i2i"): "StableDiffusionXLControlNetImg2ImgPipeline",
}


def _cfg(**settings) -> RunConfig:
    base = dict(controlnet="random", steps=2, warmups=0, height=64, width=64)
    base.update(settings)
    return RunConfig(**base)


def _pixels(pipe, kwargs) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return np.asarray(pipe(**kwargs).images[0], dtype=np.int16)


@pytest.mark.parametrize("model,task", list(PIPELINES), ids=[f"{m}-{t}" for m, t in PIPELINES])
def test_controlnet_pipeline_and_control_image_matter(model, task, input_png):
    cfg = _cfg(model=model, input_image=input_png if task == "i2i" else None)
    assert cfg.task == task
    prepared = prepare(cfg)
    pipe = prepared.pipe
    assert type(pipe).__name__ == PIPELINES[(model, task)]
    assert type(pipe.controlnet).__name__ == "ControlNetModel"
    # SDXL: the ControlNet carries the UNet's text-time addition embedding
    assert pipe.controlnet.config.addition_embed_type == pipe.unet.config.addition_embed_type
    # default control image: edges of the input (i2i) or the synthetic pattern (t2i)
    assert prepared.control_image.size == (64, 64)
    origin = prepared.notices[-1]
    assert ("edges of the input image" if task == "i2i" else "synthetic line pattern") in origin

    kwargs = prepared.call_kwargs(cfg)
    assert kwargs["image" if task == "t2i" else "control_image"] is prepared.control_image
    default = _pixels(pipe, kwargs)
    other = _pixels(pipe, prepared.call_kwargs(
        cfg, control_image=Image.new("RGB", (64, 64), "white")))
    # random (non-zero) ControlNet weights: the control image changes the result
    assert np.abs(default - other).max() > 0
    # extra call kwargs reach the pipeline: scale 0 switches the ControlNet off
    off = _pixels(pipe, prepared.call_kwargs(cfg, controlnet_conditioning_scale=0.0))
    assert np.abs(default - off).max() > 0


@pytest.mark.parametrize("model", ["tiny-sd15", "tiny-sdxl"])
def test_run_with_control_image_file(model, tmp_path, input_png):
    result = run(_cfg(model=model, control_image=input_png, warmups=1,
                      extra_call_kwargs={"controlnet_conditioning_scale": 0.5},
                      output_image=str(tmp_path / "o.png")))
    assert result.status == "finished", result.error
    assert result.metrics.steps_run == 2
    assert any(input_png in n for n in result.notices)
    assert Image.open(tmp_path / "o.png").size == (64, 64)


def test_local_controlnet_folder(tmp_path):
    import torch

    from diffbench.engine.models.controlnet import build_random
    from diffbench.engine.models.tiny import build_sd15

    unet = build_sd15()["unet"]
    folder = tmp_path / "cn"
    build_random(unet, "cpu", torch.float32).save_pretrained(folder)
    result = run(_cfg(controlnet=str(folder)))
    assert result.status == "finished", result.error
    # an SDXL model's UNet has another cross-attention width: refused with the reason
    failed = run(_cfg(model="tiny-sdxl", controlnet=str(folder)))
    assert failed.status == "failed" and "cross_attention_dim" in failed.error


@pytest.mark.parametrize("settings,error,text", [
    (dict(model="tiny-pix2pix"), ConfigError, "instruct-pix2pix"),
    (dict(controlnet="nobody/no-such-controlnet"), ModelNotFoundError,
     "hf download nobody/no-such-controlnet"),
    (dict(controlnet="canny please"), ModelNotFoundError, "unknown controlnet"),
])
def test_bad_controlnet_is_refused_in_preflight(settings, error, text, input_png):
    if settings.get("model") == "tiny-pix2pix":
        settings["input_image"] = input_png
    with pytest.raises(error, match=text):
        preflight(_cfg(**settings))


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(ModelNotFoundError, match="without config.json"):
        preflight(_cfg(controlnet=str(tmp_path)))


def test_compile_covers_the_controlnet():
    """torch.compile (backend aot_eager: the plumbing without code generation) compiles the
    ControlNet too, and the measured call does not recompile."""
    events: list = []
    result = run(_cfg(warmups=1, compiler="compile",
                      compiler_config={"backend": "aot_eager", "compile_vae": False}),
                 on_event=events.append)
    assert result.status == "finished", result.error
    compiled = [e.text for e in events if isinstance(e, ev.LogMessage)
                and e.text.startswith("torch.compile")]
    assert compiled and "ControlNet" in compiled[0]
    assert result.metrics.recompiles == 0
    assert 0 < result.metrics.compile_s <= result.metrics.warmup_s  # a part of the warmup


def test_cli_controlnet_flag(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    code = cli(["run", "--model", "tiny-sd15", "--controlnet", "random", "--steps", "2",
                "--height", "64", "--width", "64", "--warmups", "0", "--in-process",
                "--no-history"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "syntheticlinepattern" in "".join((captured.out + captured.err).split())
