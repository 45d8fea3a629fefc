"""``--cache``: step caching of a diffusion transformer through diffusers' cache hooks (lossy).

One setting picks the method; diffusers implements each as hooks on the transformer's blocks
(``denoiser.enable_cache(config)`` on ``CacheMixin`` models such as FLUX, the same
``diffusers.hooks.apply_*`` functions on the others such as SD3). Sources: diffusers' cache
documentation (the "Caching methods" page of the diffusers docs) and the config docstrings in
``diffusers/hooks/`` (0.42):

- ``first-block`` — First Block Cache (ParaAttention; TeaCache's idea): every step runs the
  first block; when its residual changed by less than ``cache_threshold`` (relative mean
  absolute difference, diffusers' default 0.05) from the last computed step, the other blocks
  are skipped and their cached residual added. :class:`FirstBlockCacheConfig`.
- ``taylorseer`` — TaylorSeer (arXiv:2503.06923): the attention layers' outputs are computed
  every ``cache_interval`` steps (after 3 computed warm-up steps) and predicted by a first-order
  Taylor expansion in between. :class:`TaylorSeerCacheConfig`.
- ``magcache`` — MagCache: skips whole steps while the accumulated error predicted from the
  model's magnitude ratios stays under ``cache_threshold`` (default 0.06), at most 3 in a row,
  never in the first 20 % of the steps. Needs the model's ratios: diffusers ships FLUX's
  (``FLUX_MAG_RATIOS``). :class:`MagCacheConfig`.
- ``fastercache`` — FasterCache (arXiv:2410.19355): reuses attention outputs every other step
  in a timestep window, with frequency-domain corrections. :class:`FasterCacheConfig`.
- ``pab`` — Pyramid Attention Broadcast (arXiv:2408.12588): attention outputs are computed once
  every ``cache_interval`` steps for timesteps in (100, 800) and broadcast in between.
  :class:`PyramidAttentionBroadcastConfig`.

Steps computed versus skipped come from the hooks' state (:mod:`.cache_probe`); FasterCache and
PAB skip attention layers rather than steps and report "n/a". The cache decides on the host
at every step, so it cannot live inside one CUDA graph (``--compiler cudagraph`` is refused)
nor inside a ``fullgraph`` compile; regional or full torch.compile work (Dynamo breaks the
graph at the decision).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from diffbench.engine.accelerators.base import STACKED, Accelerator
from diffbench.engine.errors import AcceleratorUnavailableError, ConfigError
from diffbench.engine.events import LogMessage

if TYPE_CHECKING:  # pragma: no cover
    from diffbench.engine.accelerators.base import AcceleratorState
    from diffbench.engine.config import RunConfig
    from diffbench.engine.events import EventCallback
    from diffbench.engine.families import DenoiserSpec

#: cache name -> (diffusers.hooks config class, apply function, diffusers hooks module).
BACKENDS = {
    "first-block": ("FirstBlockCacheConfig", "apply_first_block_cache", "first_block_cache"),
    "taylorseer": ("TaylorSeerCacheConfig", "apply_taylorseer_cache", "taylorseer_cache"),
    "magcache": ("MagCacheConfig", "apply_mag_cache", "mag_cache"),
    "fastercache": ("FasterCacheConfig", "apply_faster_cache", "faster_cache"),
    "pab": ("PyramidAttentionBroadcastConfig", "apply_pyramid_attention_broadcast",
            "pyramid_attention_broadcast"),
}
THRESHOLD_CACHES = ("first-block", "magcache")
INTERVAL_CACHES = ("taylorseer", "pab")
#: denoiser class -> the name of diffusers' MagCache magnitude ratios for it
#: (diffusers.hooks.mag_cache; "Users must explicitly pass these").
MAG_RATIOS = {"FluxTransformer2DModel": "FLUX_MAG_RATIOS"}
#: (cache, denoiser class) -> why diffusers 0.42's hooks fail on that model (seen on the tiny
#: models: the run would otherwise die in its first step with a bare TypeError).
UNSUPPORTED = {
    ("first-block", "SD3Transformer2DModel"):
        "SD3's last block returns no text states, which the tail hook subtracts",
    ("fastercache", "SD3Transformer2DModel"):
        "it splits the CFG batch of some inputs only (pooled projections stay doubled)",
}
#: Timesteps (0..1000) where PAB / FasterCache may reuse attention: diffusers' PAB default.
PAB_TIMESTEPS = (100, 800)


def _default_interval() -> int:
    from diffbench.engine import catalog

    return catalog.get("cache_interval").default


def validate(cfg: "RunConfig") -> list[str]:
    """Check the cache settings against the rest of ``cfg``; notices for settings without
    effect.

    Raises:
        ConfigError: both --deepcache and --cache, --compiler cudagraph, a fullgraph compile.
    """
    cache = cfg.cache
    if cfg.deepcache:
        raise ConfigError(f"choose one step cache: --deepcache (UNet) or --cache {cache} "
                          f"(diffusion transformers), not both", field="cache")
    if cfg.compiler == "cudagraph":
        raise ConfigError(f"--cache {cache} decides on the host at every step, which a CUDA "
                          f"graph replay skips; use --compiler compile (e.g. "
                          f"{{\"regional\": true}}) or none", field="cache")
    if cfg.compiler_config.get("fullgraph") is True and cfg.compiler != "none":
        raise ConfigError(f"--cache {cache} breaks the compiled graph at its per-step "
                          f"decision; drop compiler_config fullgraph", field="cache")
    notices = []
    if cfg.cache_threshold is not None and cache not in THRESHOLD_CACHES:
        notices.append(f"ignored: cache_threshold has no effect with --cache {cache} "
                       f"(it sets {' and '.join(THRESHOLD_CACHES)})")
    if cfg.cache_interval != _default_interval() and cache not in INTERVAL_CACHES:
        notices.append(f"ignored: cache_interval has no effect with --cache {cache} "
                       f"(it sets {' and '.join(INTERVAL_CACHES)}, and --deepcache)")
    if cache in INTERVAL_CACHES and cfg.cache_interval == 1:
        notices.append(f"--cache {cache} with cache_interval 1 computes every step "
                       f"(no speed-up)")
    return notices


def available(cache: str) -> tuple[bool, str]:
    """(ok, reason): the installed diffusers has the hooks of ``cache`` (file check only; no
    import of diffusers or torch)."""
    import importlib.util
    import os

    if cache == "none":
        return True, ""
    spec = importlib.util.find_spec("diffusers")
    if spec is None or not spec.submodule_search_locations:
        return False, "diffusers is not installed"
    module = BACKENDS[cache][2]
    folder = list(spec.submodule_search_locations)[0]
    if not os.path.isfile(os.path.join(folder, "hooks", f"{module}.py")):
        from diffbench.engine.accelerators import versions

        return False, (f"diffusers {versions.dist_version('diffusers')} has no "
                       f"{BACKENDS[cache][0]} (diffusers.hooks.{module}); upgrade diffusers")
    return True, ""


def _steps_run(cfg: "RunConfig") -> int:
    return max(1, int(cfg.steps * cfg.strength)) if cfg.task == "i2i" else cfg.steps


def _timestep_source(pipe: Any) -> Any:
    """A callable -> the current timestep (0..1000) of a pipeline call: the pipeline's
    ``current_timestep`` where it keeps one (FLUX), else the scheduler's timestep at its
    ``step_index`` (PAB and FasterCache compare it with their windows). Runs outside
    torch.compile: reading a tensor's value would break the graph anyway."""
    import torch

    @torch.compiler.disable
    def current() -> float:
        value = getattr(pipe, "_current_timestep", None)
        if value is None:
            scheduler = pipe.scheduler
            index = scheduler.step_index
            if index is None:
                index = getattr(scheduler, "begin_index", None) or 0
            value = scheduler.timesteps[min(index, len(scheduler.timesteps) - 1)]
        return float(value)
    return current


def build_config(cfg: "RunConfig", spec: "DenoiserSpec", denoiser: Any, pipe: Any) -> Any:
    """The diffusers cache config object for ``cfg.cache`` on ``denoiser``.

    Raises:
        AcceleratorUnavailableError: a known incompatibility of this model with the method in
            diffusers, or magcache without magnitude ratios for the model.
    """
    import diffusers.hooks as hooks

    cache, model = cfg.cache, type(denoiser).__name__
    reason = UNSUPPORTED.get((cache, model))
    if reason:
        raise AcceleratorUnavailableError(f"--cache {cache} cannot run on {model} with "
                                          f"diffusers' hooks: {reason}")
    config_class = getattr(hooks, BACKENDS[cache][0])
    if cache == "first-block":
        return config_class(**({} if cfg.cache_threshold is None
                               else {"threshold": float(cfg.cache_threshold)}))
    if cache == "taylorseer":
        return config_class(cache_interval=cfg.cache_interval)
    if cache == "magcache":
        ratios = MAG_RATIOS.get(model)
        if ratios is None:
            raise AcceleratorUnavailableError(
                f"--cache magcache needs {model}'s magnitude ratios; diffusers ships them for "
                f"{', '.join(MAG_RATIOS)} only (calibrate with diffusers' "
                f"MagCacheConfig(calibrate=True))")
        import diffusers.hooks.mag_cache as mag_cache

        kwargs = {} if cfg.cache_threshold is None else {"threshold": float(cfg.cache_threshold)}
        return config_class(num_inference_steps=_steps_run(cfg),
                            mag_ratios=getattr(mag_cache, ratios), **kwargs)
    current = _timestep_source(pipe)
    if cache == "pab":
        return config_class(spatial_attention_block_skip_range=cfg.cache_interval,
                            spatial_attention_timestep_skip_range=PAB_TIMESTEPS,
                            current_timestep_callback=current)
    # fastercache: one forward per step for guidance-distilled models (no CFG batch to split)
    distilled = spec.cfg_copies == 1
    return config_class(spatial_attention_block_skip_range=2,
                        current_timestep_callback=current, is_guidance_distilled=distilled,
                        tensor_format="BCHW" if not distilled else "BCFHW",
                        attention_weight_callback=lambda _module: 0.5)


def _hook_count(denoiser: Any) -> int:
    """Diffusers hooks now on the denoiser's modules (0 means the cache found no blocks)."""
    return sum(len(getattr(module, "_diffusers_hook").hooks) for module in denoiser.modules()
               if hasattr(module, "_diffusers_hook"))


def apply(pipe: Any, spec: "DenoiserSpec", cfg: "RunConfig", emit: "EventCallback",
          state: "AcceleratorState | None" = None) -> Any:
    """Install ``cfg.cache`` on the pipeline's denoiser (``spec.denoiser(pipe)``) and the step
    probe; the probe's :class:`~.cache_probe.StepStats` goes to ``state.cache_stats``.

    Raises:
        AcceleratorUnavailableError: the model has no blocks diffusers' cache hooks know (a
            UNet), a known incompatibility, magcache without ratios.
        ConfigError: as :func:`validate`; a scheduler without ``step_index``.
    """
    import logging

    import diffusers.hooks as hooks

    from diffbench.engine.accelerators import cache_probe

    validate(cfg)
    denoiser = spec.denoiser(pipe)
    model = type(denoiser).__name__
    config = build_config(cfg, spec, denoiser, pipe)
    before = _hook_count(denoiser)
    quiet = logging.getLogger("diffusers.hooks")  # FasterCache's "experimental" warnings
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        if hasattr(denoiser, "enable_cache"):
            denoiser.enable_cache(config)
        else:
            getattr(hooks, BACKENDS[cfg.cache][1])(denoiser, config)
    except (IndexError, ValueError, KeyError) as exc:
        raise AcceleratorUnavailableError(
            f"--cache {cfg.cache} cannot run on {model}: diffusers' hooks found no transformer "
            f"blocks they know ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
            + ("; for a UNet use --deepcache" if spec.denoiser_attr == "unet" else "")) \
            from None
    finally:
        quiet.setLevel(level)
    if _hook_count(denoiser) == before:
        raise AcceleratorUnavailableError(f"--cache {cfg.cache} found nothing to cache in "
                                          f"{model} (no attention or transformer blocks that "
                                          f"diffusers' hooks match)")
    if cfg.compiler != "none":
        # each cache decision is one more compiled variant of the hooked code (not one per
        # step): let Dynamo keep them rather than fall back to eager at its default cap of 8
        from diffbench.engine.accelerators.compile import (REGIONAL_RECOMPILE_LIMIT,
                                                           _raise_recompile_limit)

        _raise_recompile_limit(REGIONAL_RECOMPILE_LIMIT)
    stats = cache_probe.install(denoiser, pipe.scheduler, cfg.cache)
    if state is not None:
        state.cache_stats = stats
    what = {"first-block": f"threshold {getattr(config, 'threshold', '')}",
            "magcache": f"threshold {getattr(config, 'threshold', '')}, "
                        f"{_steps_run(cfg)} steps",
            "taylorseer": f"attention computed every {cfg.cache_interval} steps",
            "pab": f"attention computed every {cfg.cache_interval} steps in timesteps "
                   f"{PAB_TIMESTEPS}",
            "fastercache": "attention reused every other step"}[cfg.cache]
    count = "" if stats.counts else "; steps computed/skipped: n/a (it skips attention " \
                                    "layers, not steps)"
    emit(LogMessage("info", f"step cache {cfg.cache} on the {spec.denoiser_label} ({what}) "
                            f"through diffusers' hooks{count}"))
    return pipe


class StepCache(Accelerator):
    """``--cache``: diffusers' cache hooks on a diffusion transformer (lossy)."""

    name = "cache"
    kind = STACKED
    lossless = False
    category = "cache"
    config_keys = ("cache", "cache_threshold", "cache_interval")
    description = "step caching of a diffusion transformer (diffusers' cache hooks)"
    choices = tuple((f"cache {name}", {"cache": name}) for name in BACKENDS)

    def available(self, device: str = "cuda") -> tuple[bool, str]:
        return available("first-block")

    def available_for(self, cfg: "RunConfig", device: str) -> tuple[bool, str]:
        return available(cfg.cache)

    def requested(self, cfg: "RunConfig") -> bool:
        return cfg.cache != "none"

    def describe(self, cfg: "RunConfig") -> str:
        return f"--cache {cfg.cache}"

    def family_reason(self, cfg: "RunConfig", spec: "DenoiserSpec") -> str:
        if spec.denoiser_attr == "unet":
            return (f"--cache {cfg.cache} works on diffusion transformers; {spec.label} has a "
                    f"UNet: use --deepcache")
        return ""

    def validate(self, cfg: "RunConfig") -> list[str]:
        return validate(cfg)

    def apply(self, pipe: Any, spec: "DenoiserSpec", cfg: "RunConfig", emit: "EventCallback",
              state: "AcceleratorState | None" = None) -> Any:
        return apply(pipe, spec, cfg, emit, state)
