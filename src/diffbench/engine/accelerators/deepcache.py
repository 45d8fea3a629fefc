"""Step caching with DeepCache's method (``--deepcache``), for the UNet families (SD 1.5, SDXL,
pix2pix).

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

Mechanics: each skipped block of the denoiser (``spec.denoiser(pipe)``) gets a diffusers hook
(``diffusers.hooks.ModelHook`` in the block's ``HookRegistry``) that returns the block's output
from the last full step on cached steps. The phase (full or cached) flips after each
``scheduler.step`` and resets in ``scheduler.set_timesteps`` (once per pipeline call): see
:func:`_hook_scheduler`, the one place that wraps scheduler methods, and why there. A compiled
denoiser sees one boolean and compiles two graphs, never one per step.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from diffbench.engine.accelerators.base import STACKED, Accelerator, AcceleratorState
from diffbench.engine.errors import ConfigError
from diffbench.engine.events import LogMessage

if TYPE_CHECKING:  # pragma: no cover
    from diffbench.engine.config import RunConfig
    from diffbench.engine.events import EventCallback
    from diffbench.engine.families import DenoiserSpec

#: Name of the block hooks in each block's diffusers HookRegistry.
HOOK_NAME = "diffbench_step_cache"


def validate(cfg: "RunConfig") -> list[str]:
    """Check the step-caching settings (and that the model is a UNet). Raises ConfigError."""
    from diffbench.engine.errors import DiffbenchError
    from diffbench.engine.models.sources import resolve_source

    try:
        spec = resolve_source(cfg.model).spec
    except DiffbenchError:
        spec = None  # preflight reports the model
    if spec is not None and spec.denoiser_attr != "unet":
        raise ConfigError(f"deepcache works on UNets; for transformers ({spec.label}) use "
                          "--cache (diffusers' transformer step caches)", field="deepcache")
    if cfg.cache_block_id != 0:
        raise ConfigError(f"cache_block_id {cfg.cache_block_id} is not supported: diffbench "
                          f"caches at block granularity (cache_block_id 0); choose the depth "
                          f"with cache_layer_id")
    if cfg.cache_interval == 1:
        return ["deepcache with cache_interval 1 runs every step in full (no speed-up)"]
    return []


class StepCache:
    """Cache state shared by the hooked blocks of one denoiser.

    Attributes:
        interval: cache_interval (full step every ``interval`` steps).
        step: 0-based index of the current denoising step in this call.
        skipping: True while the current step reuses cached deep features.
        full_steps / cached_steps: counts over the cache's life (for reports and tests).
        graph_held: True when the denoiser step is a CUDA graph (``--compiler cudagraph``): the
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

    def hook(self, index: int) -> Any:
        """A diffusers ModelHook for skipped block ``index``: it records the block's output on
        full steps and returns it on cached ones."""
        return _cached_block_hook(self, index)


def _cached_block_hook(cache: StepCache, index: int) -> Any:
    from diffusers.hooks import ModelHook

    class CachedBlockHook(ModelHook):
        """Full step: run the block, keep its output. Cached step: return the kept output."""

        def new_forward(self, module: Any, *args: Any, **kwargs: Any) -> Any:
            if cache.skipping:
                return cache.outputs[index]
            out = self.fn_ref.original_forward(*args, **kwargs)
            cache.outputs[index] = out
            return out

    return CachedBlockHook()


def skipped_blocks(unet: Any, layer_id: int) -> list:
    """The UNet blocks a cached step skips for ``cache_layer_id`` = layer_id.

    Raises:
        ConfigError: layer_id out of range for this UNet, or a denoiser without down/mid/up
            blocks (step caching needs a UNet).
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


def apply(pipe: Any, spec: "DenoiserSpec", cfg: "RunConfig", emit: "EventCallback",
          state: "AcceleratorState | None" = None) -> StepCache:
    """Install step caching on the pipeline's denoiser (``spec.denoiser(pipe)``); returns the
    StepCache (also ``state.step_cache``). Call before torch.compile so the compiled denoiser
    includes the switch.

    Raises:
        ConfigError: bad cache_layer_id / cache_block_id, a denoiser without down/up blocks, or
            no scheduler to follow.
    """
    from diffusers.hooks import HookRegistry

    validate(cfg)
    denoiser = spec.denoiser(pipe)
    scheduler = getattr(pipe, "scheduler", None)
    if scheduler is None or not hasattr(scheduler, "step") or \
            not hasattr(scheduler, "set_timesteps"):
        raise ConfigError("deepcache needs a pipeline scheduler with step and set_timesteps")
    cache = StepCache(cfg.cache_interval)
    blocks = skipped_blocks(denoiser, cfg.cache_layer_id)
    for index, block in enumerate(blocks):
        HookRegistry.check_if_exists_or_initialize(block).register_hook(cache.hook(index),
                                                                         HOOK_NAME)
    _hook_scheduler(scheduler, cache)
    if state is not None:
        state.step_cache = cache
    emit(LogMessage("info", f"DeepCache: cache_interval {cfg.cache_interval}, cache_layer_id "
                            f"{cfg.cache_layer_id}: {len(blocks)} {spec.denoiser_label} blocks "
                            f"reused on cached steps"))
    return cache


def _hook_scheduler(scheduler: Any, cache: StepCache) -> None:
    """Follow the denoising loop: ``set_timesteps`` starts a call (``cache.reset``), each
    ``step`` ends a denoising step (``cache.advance``).

    The only wrapping of scheduler methods left, kept because no hook point replaces it
    without changing behaviour: the phase must change *outside* the denoiser's forward (under
    ``--compiler cudagraph`` the forward's Python does not run on a replay, and the phase is
    part of the graph key read before the call), every pipeline calls the scheduler once per
    step whatever its denoiser calls, and ``callback_on_step_end`` belongs to the caller (the
    runner's step timer). functools.wraps keeps the signatures: pipelines inspect them (eta,
    generator, sigmas).
    """
    set_timesteps, step = scheduler.set_timesteps, scheduler.step

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


class StepCaching(Accelerator):
    """``--deepcache``: reuse the UNet's deep features between denoising steps (lossy)."""

    name = "deepcache"
    kind = STACKED
    lossless = False
    category = "cache"
    config_keys = ("cache_interval", "cache_layer_id", "cache_block_id")
    description = "reuse the UNet's deep features between denoising steps"

    def requested(self, cfg: "RunConfig") -> bool:
        return bool(cfg.deepcache)

    def family_reason(self, cfg: "RunConfig", spec: "DenoiserSpec") -> str:
        if spec.denoiser_attr != "unet":  # DeepCache's deep/shallow split is the UNet's
            return (f"--deepcache needs a UNet (down/up blocks); {spec.label} has a "
                    f"{spec.denoiser_label}: use --cache first-block|taylorseer|magcache|"
                    f"fastercache|pab")
        return ""

    def validate(self, cfg: "RunConfig") -> list[str]:
        return validate(cfg)

    def apply(self, pipe: Any, spec: "DenoiserSpec", cfg: "RunConfig", emit: "EventCallback",
              state: "AcceleratorState | None" = None) -> Any:
        apply(pipe, spec, cfg, emit, state)
        return pipe
