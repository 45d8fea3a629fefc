"""Accelerators as plugins: one table, one interface; every plugin reaches the model through
the family's spec; step caching through diffusers hooks gives DeepCache's results."""

from __future__ import annotations

import pathlib
import sys
import textwrap

import pytest

from diffbench.engine import accelerators
from diffbench.engine.accelerators import registry
from diffbench.engine.config import RunConfig

ACCELERATORS = pathlib.Path(accelerators.__file__).parent


def test_no_accelerator_names_the_unet_attribute():
    """Every plugin asks the spec for the denoiser (`grep -rn "\\.unet"` finds nothing)."""
    hits = [f"{path.name}:{number}: {line.strip()}"
            for path in sorted(ACCELERATORS.glob("*.py"))
            for number, line in enumerate(path.read_text().splitlines(), 1)
            if ".unet" in line]
    assert hits == []


def test_no_state_stashed_on_the_pipeline():
    source = ACCELERATORS.parent
    hits = [str(path) for path in source.rglob("*.py") if "_diffbench_" in path.read_text()]
    assert hits == []


def test_every_plugin_implements_the_interface_and_says_why_not():
    from diffbench.engine.config import COMPILERS

    table = [name for name, _target in registry.TABLE]
    assert table == [p.name for p in accelerators.plugins()][:len(table)]
    assert set(accelerators.compilers()) == set(COMPILERS)
    assert {p.name for p in accelerators.stacked()} == {"controlnet", "lora", "fuse-qkv",
                                                         "attention", "deepcache", "cache",
                                                         "quantize"}
    for plugin in accelerators.plugins():
        assert plugin.kind in (accelerators.COMPILER, accelerators.STACKED), plugin.name
        assert plugin.stage in ("load", "accelerate") and isinstance(plugin.lossless, bool)
        assert isinstance(plugin.config_keys, tuple) and plugin.description
        for device in ("cpu", "cuda"):
            ok, reason = plugin.available(device)
            assert isinstance(ok, bool) and isinstance(reason, str)
            assert ok or (reason and "\n" not in reason), (plugin.name, device)
    assert not accelerators.get("cudagraph").available("cpu")[0]
    lossy = {p.name for p in accelerators.plugins() if not p.lossless}
    assert {"deepcache", "cache", "quantize"} <= lossy and "compile" not in lossy
    assert not {"attention", "fuse-qkv"} & lossy


PLUGIN_MODULE = '''
from diffbench.engine.accelerators.base import STACKED, Accelerator


class Marker(Accelerator):
    """Test plugin: tags the denoiser it gets from the spec."""

    name = "marker"
    kind = STACKED
    category = "test"
    description = "marks the denoiser"

    def requested(self, cfg):
        return cfg.steps == 3

    def validate(self, cfg):
        return ["marker: noted"]

    def apply(self, pipe, spec, cfg, emit, state=None):
        spec.denoiser(pipe).marked_by = (self.name, spec.family, state is not None)
        return pipe
'''


def test_adding_an_accelerator_is_one_module_and_one_table_line(tmp_path, monkeypatch):

    from diffbench.engine.doctor import backend_checks
    from diffbench.engine.prepare import prepare

    (tmp_path / "marker_plugin.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "TABLE", registry.TABLE + (("marker",
                                                              "marker_plugin:Marker"),))
    monkeypatch.setattr(registry, "_REGISTRY", {})
    monkeypatch.setattr(accelerators, "_REGISTRY", registry._REGISTRY)
    monkeypatch.setattr(registry, "_loaded", False)
    try:
        assert accelerators.get("marker").kind == "stacked"
        assert any(c.name == "marker" and c.kind == "test" for c in backend_checks("cpu"))
        cfg = RunConfig(model="tiny-sd15", steps=3, height=64, width=64, device="cpu")
        assert "marker: noted" in accelerators.validate_all(cfg)
        prepared = prepare(cfg)
        assert prepared.pipe.unet.marked_by == ("marker", "sd15", True)
        untouched = prepare(cfg.replace(steps=4))
        assert not hasattr(untouched.pipe.unet, "marked_by")
    finally:
        sys.modules.pop("marker_plugin", None)


# ---------------------------------------------------------------------- step caching
def _reference_deepcache(pipe, interval, layer_id=0):
    """DeepCache as diffbench implemented it before the hooks: the skipped blocks' forward
    replaced on the instance, the phase flipped by scheduler.step."""
    import functools

    from diffbench.engine.accelerators.deepcache import skipped_blocks

    state = {"step": 0, "skipping": False, "outputs": {}}
    for index, block in enumerate(skipped_blocks(pipe.unet, layer_id)):
        def cached(*args, _forward=block.forward, _index=index, **kwargs):
            if state["skipping"]:
                return state["outputs"][_index]
            out = _forward(*args, **kwargs)
            state["outputs"][_index] = out
            return out
        block.forward = cached
    set_timesteps, step = pipe.scheduler.set_timesteps, pipe.scheduler.step

    @functools.wraps(set_timesteps)
    def reset(*args, **kwargs):
        state.update(step=0, skipping=False, outputs={})
        return set_timesteps(*args, **kwargs)

    @functools.wraps(step)
    def advance(*args, **kwargs):
        out = step(*args, **kwargs)
        state["step"] += 1
        state["skipping"] = bool(state["outputs"]) and state["step"] % interval != 0
        return out

    pipe.scheduler.set_timesteps, pipe.scheduler.step = reset, advance


@pytest.mark.parametrize("model,layer_id", [("tiny-sd15", 0), ("tiny-sdxl", 1)])
def test_step_caching_through_hooks_gives_deepcaches_latents(model, layer_id):
    import torch
    from diffusers.hooks import HookRegistry

    from diffbench.engine.accelerators.deepcache import HOOK_NAME
    from diffbench.engine.models import load_pipeline
    from diffbench.engine.prepare import call_kwargs, prepare

    cfg = RunConfig(model=model, steps=7, height=64, width=64, device="cpu", deepcache=True,
                    cache_interval=3, cache_layer_id=layer_id)
    prepared = prepare(cfg)
    cache = prepared.state.step_cache
    blocks = [b for b in prepared.pipe.unet.modules()
              if isinstance(getattr(b, "_diffusers_hook", None), HookRegistry)
              and b._diffusers_hook.get_hook(HOOK_NAME) is not None]
    assert blocks and all("forward" in vars(b) for b in blocks)

    reference = load_pipeline(cfg.replace(deepcache=False), "cpu", torch.float32)
    _reference_deepcache(reference, cfg.cache_interval, layer_id)
    plain = load_pipeline(cfg.replace(deepcache=False), "cpu", torch.float32)

    def latents(pipe):
        with torch.inference_mode():
            return pipe(**call_kwargs(cfg, pipe, "cpu", 64, 64, output_type="latent")).images

    for _call in range(2):  # a second call starts again with a full step
        got, want = latents(prepared.pipe), latents(reference)
        assert torch.equal(got, want)
    assert (cache.full_steps, cache.cached_steps) == (2 * 3, 2 * 4)
    assert not torch.equal(got, latents(plain))  # cached steps did reuse stale features
