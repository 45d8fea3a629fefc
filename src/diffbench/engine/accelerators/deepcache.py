"""Step caching with DeepCache's method (``--deepcache``), for SD 1.5, SDXL and pix2pix UNets.

DeepCache (Ma, Fang, Wang, CVPR 2024, arXiv:2312.00858) observes that a UNet's deep features
change little between adjacent denoising steps: on a full step the whole UNet runs and the
output of the deep part is cached; on the next ``cache_interval - 1`` steps only the shallow
branch runs — conv_in, down block ``cache_layer_id`` and those before it, and the up blocks
from the mirror of ``cache_layer_id`` on — fed the cached deep feature.

The ``deepcache`` package (2023) patches the forward code of the diffusers pipelines of its
time and does not follow diffusers 0.42, so the method is implemented here, at block
granularity: ``cache_layer_id`` picks the down/up block pair whose skip connections stay live
(0 = the shallowest, the seed's default); ``cache_block_id`` (a position inside a block in the
original code) must be 0. Uniform schedule as DeepCache's default: step i of a call is a full
step when i % cache_interval == 0.

Mechanics: the skipped blocks' ``forward`` is replaced on the instance by a function that
returns the block's output from the last full step; the phase (full or skip) flips in a wrapper
of ``scheduler.step`` and resets in ``scheduler.set_timesteps`` (once per pipeline call), so a
compiled UNet sees one boolean and compiles two graphs, never one per step.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable

from diffbench.engine.errors import ConfigError
from diffbench.engine.events import LogMessage

if TYPE_CHECKING:  # pragma: no cover
    from diffbench.engine.config import RunConfig
    from diffbench.engine.events import EventCallback


def validate(cfg: "RunConfig") -> list[str]:
    """Check the step-caching settings that need no model. Raises ConfigError."""
    if cfg.cache_block_id != 0:
        raise ConfigError(f"cache_block_id {cfg.cache_block_id} is not supported: diffbench "
                          f"caches at block granularity (cache_block_id 0); choose the depth "
                          f"with cache_layer_id")
    if cfg.cache_interval == 1:
        return ["deepcache with cache_interval 1 runs every step in full (no speed-up)"]
    return []


class StepCache:
    """Cache state shared by the wrapped blocks of one UNet.

    Attributes:
        interval: cache_interval (full step every ``interval`` steps).
        step: 0-based index of the current denoising step in this call.
        skipping: True while the current step reuses cached deep features.
        full_steps / cached_steps: counts over the cache's life (for reports and tests).
        graph_held: True when the UNet step is a CUDA graph (``--compiler cudagraph``): the
            cached outputs are the full step's static graph buffers, rewritten by each replay
            (Python does not run then), so a new call must keep them rather than clear them.
    """

    def __init__(self, interval: int) -> None:
        self.interval = interval
        self.step = 0
        self.skipping = False
        self.outputs: dict[int, Any] = {}
        self.full_steps = 0
        self.cached_steps = 0
        self.graph_held = False

    def reset(self) -> None:
        """Start of a pipeline call: the first step runs in full."""
        self.step = 0
        self.skipping = False
        if not self.graph_held:
            self.outputs.clear()

    def phase(self) -> str:
        """"cached" or "full": the current step's kind (a CUDA graph key)."""
        return "cached" if self.skipping else "full"

    def graph_state(self) -> dict:
        """The cached outputs as they are now (after a graph capture: that graph's buffers)."""
        return dict(self.outputs)

    def restore_graph_state(self, state: dict) -> None:
        """Make ``state`` (from :meth:`graph_state`) the cached outputs again."""
        self.outputs.clear()
        self.outputs.update(state)

    def advance(self) -> None:
        """A denoising step ended: pick the next step's phase."""
        if self.skipping:
            self.cached_steps += 1
        else:
            self.full_steps += 1
        self.step += 1
        self.skipping = bool(self.outputs) and self.step % self.interval != 0

    def wrap(self, index: int, forward: Callable) -> Callable:
        """A forward that records its output on full steps and replays it on cached ones."""
        def cached_forward(*args: Any, **kwargs: Any) -> Any:
            if self.skipping:
                return self.outputs[index]
            out = forward(*args, **kwargs)
            self.outputs[index] = out
            return out
        return functools.wraps(forward)(cached_forward)


def skipped_blocks(unet: Any, layer_id: int) -> list:
    """The UNet blocks a cached step skips for ``cache_layer_id`` = layer_id.

    Raises:
        ConfigError: layer_id out of range for this UNet, or a UNet without down/mid/up blocks.
    """
    down = list(getattr(unet, "down_blocks", []) or [])
    up = list(getattr(unet, "up_blocks", []) or [])
    mid = getattr(unet, "mid_block", None)
    if not down or not up or len(down) != len(up):
        raise ConfigError(f"deepcache needs a UNet with matching down/up blocks; "
                          f"{type(unet).__name__} has none")
    if not 0 <= layer_id < len(down):
        raise ConfigError(f"cache_layer_id must be between 0 and {len(down) - 1} for this "
                          f"UNet, got {layer_id}")
    blocks = down[layer_id + 1:]
    if mid is not None:
        blocks.append(mid)
    blocks += up[:len(up) - 1 - layer_id]
    return blocks


def apply(pipe: Any, cfg: "RunConfig", emit: "EventCallback") -> StepCache:
    """Install step caching on ``pipe.unet``; returns the StepCache (also ``pipe._diffbench_
    deepcache``). Call before torch.compile so the compiled UNet includes the switch.

    Raises:
        ConfigError: bad cache_layer_id / cache_block_id, or no scheduler to hook.
    """
    validate(cfg)
    unet = pipe.unet
    scheduler = getattr(pipe, "scheduler", None)
    if scheduler is None or not hasattr(scheduler, "step") or \
            not hasattr(scheduler, "set_timesteps"):
        raise ConfigError("deepcache needs a pipeline scheduler with step and set_timesteps")
    cache = StepCache(cfg.cache_interval)
    blocks = skipped_blocks(unet, cfg.cache_layer_id)
    for index, block in enumerate(blocks):
        block.forward = cache.wrap(index, block.forward)

    set_timesteps, step = scheduler.set_timesteps, scheduler.step

    # functools.wraps keeps the signatures: pipelines inspect them (eta, generator, sigmas).
    @functools.wraps(set_timesteps)
    def set_timesteps_hook(*args: Any, **kwargs: Any) -> Any:
        cache.reset()
        return set_timesteps(*args, **kwargs)

    @functools.wraps(step)
    def step_hook(*args: Any, **kwargs: Any) -> Any:
        out = step(*args, **kwargs)
        cache.advance()
        return out

    scheduler.set_timesteps = set_timesteps_hook
    scheduler.step = step_hook
    pipe._diffbench_deepcache = cache
    emit(LogMessage("info", f"DeepCache: cache_interval {cfg.cache_interval}, cache_layer_id "
                            f"{cfg.cache_layer_id}: {len(blocks)} UNet blocks reused on cached "
                            f"steps"))
    return cache
