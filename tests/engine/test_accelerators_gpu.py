"""Accelerators that need a CUDA GPU, on a tiny real UNet. Skipped on machines without one
(CI); run on a GPU machine with ``python -m pytest tests/engine/test_accelerators_gpu.py``."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

from diffbench.engine import families  # noqa: E402
from diffbench.engine.accelerators import deepcache  # noqa: E402
from diffbench.engine.accelerators.cudagraph import graph_module  # noqa: E402
from diffbench.engine.config import RunConfig  # noqa: E402


class CudaTinyPipe:
    """A tiny SD-style UNet driven step by step on the GPU (the parts accelerators touch)."""

    def __init__(self):
        torch.manual_seed(0)
        self.unet = diffusers.UNet2DConditionModel(
            sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
            block_out_channels=(32, 64), norm_num_groups=8, cross_attention_dim=16,
            attention_head_dim=4,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D")).cuda().eval()
        self.unet.requires_grad_(False)
        self.scheduler = diffusers.EulerDiscreteScheduler()

    @torch.inference_mode()
    def __call__(self, steps=6, seed=0, size=16, timesteps_on="cuda"):
        gen = torch.Generator("cuda").manual_seed(seed)
        latents = torch.randn(2, 4, size, size, generator=gen, device="cuda")
        text = torch.randn(2, 5, 16, generator=gen, device="cuda")
        self.scheduler.set_timesteps(steps, device=timesteps_on)
        for t in self.scheduler.timesteps:
            noise = self.unet(latents, t, encoder_hidden_states=text, return_dict=False)[0]
            latents = self.scheduler.step(noise, t, latents, return_dict=False)[0]
        return latents


def test_cudagraph_with_deepcache_matches_eager_deepcache_across_calls_and_sizes():
    cfg = RunConfig(model="tiny-sd15", deepcache=True, cache_interval=3)
    eager = CudaTinyPipe()
    deepcache.apply(eager, families.get("sd15"), cfg, lambda e: None)
    graphed = CudaTinyPipe()
    cache = deepcache.apply(graphed, families.get("sd15"), cfg, lambda e: None)
    cache.graph_held = True
    forward = graph_module(graphed.unet, lambda e: None, cache)
    # A second size, then back; the last call keeps its timesteps on the CPU (as some
    # schedulers do): the graph must still see each step's timestep.
    calls = ((0, 16, "cuda"), (1, 16, "cuda"), (2, 24, "cuda"), (3, 16, "cpu"))
    for seed, size, timesteps_on in calls:
        want = eager(seed=seed, size=size, timesteps_on=timesteps_on)
        got = graphed(seed=seed, size=size, timesteps_on=timesteps_on)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    # Two graphs (full, cached) per size and timestep device; later calls only replay them.
    assert forward.captures == 6
    assert cache.cached_steps == 4 * 4 and cache.full_steps == 4 * 2


def test_synthetic_weights_are_the_same_on_the_gpu_and_the_cpu():
    """--cpu-offload builds a synthetic model on the CPU; its baseline was built on the GPU:
    both must hold the same weights, or the offloaded run's image differs (PSNR ~7 dB)."""
    from diffbench.engine.models import synthetic

    on_gpu = synthetic.RandomPool("cuda", seed=3).pool
    assert on_gpu.is_cuda
    assert torch.equal(on_gpu.cpu(), synthetic.RandomPool("cpu", seed=3).pool)
