"""--lora from a local .safetensors file (a tiny random LoRA made here), peft missing, bad files."""

from __future__ import annotations

import sys

import pytest

from diffbench.cli.main import main as cli
from diffbench.engine.config import RunConfig
from diffbench.engine.errors import ConfigError
from diffbench.engine.export import read_toml


@pytest.fixture(scope="module")
def lora_file(tmp_path_factory) -> str:
    from diffbench.engine.models.lora import write_random_lora
    from diffbench.engine.models.tiny import build_sd15

    path = tmp_path_factory.mktemp("lora") / "tiny.safetensors"
    return write_random_lora(build_sd15()["unet"], str(path), seed=3)


def _unet_out(pipe):
    import torch

    g = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 4, 8, 8, generator=g)
    text = torch.randn(1, 77, pipe.unet.config.cross_attention_dim, generator=g)
    with torch.no_grad():
        return pipe.unet(sample, 10, text).sample


def test_lora_file_has_diffusers_keys(lora_file):
    from safetensors import safe_open

    with safe_open(lora_file, "pt") as handle:
        keys = list(handle.keys())
    assert keys and all(k.startswith("unet.") for k in keys)
    assert any(k.endswith("to_q.lora.down.weight") for k in keys)
    assert any(k.endswith("to_out.0.lora.up.weight") for k in keys)


def test_lora_changes_the_unet_output(lora_file):
    import torch

    from diffbench.engine.models.loading import load_pipeline

    plain = load_pipeline(RunConfig(), "cpu", torch.float32)
    with_lora = load_pipeline(RunConfig(lora=lora_file), "cpu", torch.float32)
    assert with_lora.get_active_adapters()  # peft adapter attached to the UNet
    before, after = _unet_out(plain), _unet_out(with_lora)
    assert before.shape == after.shape
    assert (before - after).abs().max() > 1e-3
    # unloading it restores the plain UNet: the difference was the LoRA
    with_lora.unload_lora_weights()
    assert torch.allclose(_unet_out(with_lora), before, atol=1e-5)


def test_cli_run_with_lora(lora_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DIFFBENCH_HOME", str(tmp_path / "home"))
    export = tmp_path / "r.toml"
    code = cli(["run", "--model", "tiny-sd15", "--lora", lora_file, "--steps", "2",
                "--height", "64", "--width", "64", "--warmups", "0", "--in-process",
                "--no-history", "--export", str(export)])
    assert code == 0, capsys.readouterr().err
    [result] = read_toml(export)
    assert result.status == "finished" and result.config["lora"] == lora_file


def test_missing_peft_is_one_line(lora_file, monkeypatch, capsys):
    from diffbench.engine.accelerators.lora import require_peft
    from diffbench.engine.preflight import preflight

    monkeypatch.setitem(sys.modules, "peft", None)  # `import peft` now raises ImportError
    with pytest.raises(ConfigError, match="pip install peft"):
        require_peft()
    with pytest.raises(ConfigError, match="pip install peft"):
        preflight(RunConfig(lora=lora_file))
    code = cli(["run", "--lora", lora_file, "--in-process", "--no-history"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "pip install peft" in err


def test_bad_lora_file_is_one_line(tmp_path):
    from diffbench.engine.runner import run

    bad = tmp_path / "bad.safetensors"
    bad.write_text("not a safetensors file")
    result = run(RunConfig(lora=str(bad), steps=2, height=64, width=64, warmups=0))
    assert result.status == "failed"
    assert result.error.startswith(f"cannot load lora {bad}") and "\n" not in result.error
