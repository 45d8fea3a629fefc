"""check-params: a pipeline that silently ignores a call argument is caught
(diffbench.engine.check_params, on tiny-sd15 with a broken-accelerator test double)."""

from __future__ import annotations

import pytest

from diffbench.engine import accelerators
from diffbench.engine.accelerators import Accelerator
from diffbench.engine.check_params import check_param, judge, rmse
from diffbench.engine.config import RunConfig
from diffbench.engine.errors import ConfigError

pytestmark = pytest.mark.usefixtures("offline")


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


class FreezeGuidance(Accelerator):
    """Test double of a compiler that bakes guidance_scale into its graph: after the first
    call, every call runs with the first guidance_scale it saw."""

    name = "nexfort"

    def available(self, device="cuda"):
        return True, ""

    def apply(self, pipe, spec, cfg, emit, state=None):
        base = type(pipe)
        frozen = {}

        class Frozen(base):
            def __call__(self, *args, **kwargs):
                if "guidance_scale" in kwargs:
                    kwargs["guidance_scale"] = frozen.setdefault("value",
                                                                 kwargs["guidance_scale"])
                return base.__call__(self, *args, **kwargs)

        pipe.__class__ = Frozen
        return pipe


class Passthrough(FreezeGuidance):
    """Test double of a well-behaved accelerator (changes nothing)."""

    def apply(self, pipe, spec, cfg, emit, state=None):
        return pipe


def _install(monkeypatch, backend):
    accelerators.all_backends()  # real backends registered first, then replaced
    monkeypatch.setitem(accelerators._REGISTRY, "nexfort", backend)


CFG = dict(model="tiny-sd15", height=64, width=64, steps=3, warmups=1, compiler="nexfort",
           device="cpu")


def test_accelerator_that_freezes_guidance_scale_is_caught(monkeypatch):
    _install(monkeypatch, FreezeGuidance())
    stages = []
    check = check_param(RunConfig(**CFG), "guidance_scale", (2.0, 12.0), on_stage=stages.append)
    assert check.verdict == "ignored", check.message
    assert check.accel_delta == 0.0 and check.base_delta > 1.0
    # frozen at the first value: equal to the baseline there, off by the baseline's delta at v2
    assert check.accel_vs_base[0] == pytest.approx(0.0, abs=1e-6)
    assert check.accel_vs_base[1] == pytest.approx(check.base_delta, rel=1e-6)
    assert stages[0] == "baseline at guidance_scale=2.0"
    assert "warmup" in stages[2]


def test_cli_passes_a_well_behaved_accelerator(monkeypatch, tmp_path, capsys):
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    from diffbench.cli.main import main as cli_main

    _install(monkeypatch, Passthrough())
    out = tmp_path / "check.toml"
    code = cli_main(["check-params", "--model", "tiny-sd15", "--compiler", "nexfort",
                     "--height", "64", "--width", "64", "--steps", "3", "--device", "cpu",
                     "--param", "guidance_scale", "--values", "2,12", "-o", str(out)])
    assert code == 0
    assert "guidance_scale: ok" in capsys.readouterr().out
    check = tomllib.loads(out.read_text())["check"][0]
    assert check["verdict"] == "ok" and check["values"] == [2, 12]
    assert check["ratio"] == pytest.approx(1.0, rel=1e-3)


def test_unknown_call_argument_is_a_one_line_error(monkeypatch):
    _install(monkeypatch, Passthrough())
    with pytest.raises(ConfigError, match="has no call argument 'controlnet_conditioning_scale'"):
        check_param(RunConfig(**CFG), "controlnet_conditioning_scale")


def test_bad_requests_fail_before_loading():
    with pytest.raises(ConfigError, match="accelerated pipeline"):
        check_param(RunConfig(**{**CFG, "compiler": "none"}), "guidance_scale")
    with pytest.raises(ConfigError, match="two different values"):
        check_param(RunConfig(**CFG), "guidance_scale", (3.0, 3.0))
    with pytest.raises(ConfigError, match="image-to-image"):
        check_param(RunConfig(**CFG), "strength")
    with pytest.raises(ConfigError, match="--values"):
        check_param(RunConfig(**CFG), "my_scale")


def test_judge_thresholds():
    assert judge(10.0, 0.5)[0] == "ignored"
    assert judge(10.0, 1.5)[0] == "ok"
    assert judge(0.1, 0.0)[0] == "inconclusive"
    import numpy as np

    a = np.zeros((4, 4, 3), dtype=np.uint8)
    assert rmse([a], [a + 3]) == pytest.approx(3.0)
