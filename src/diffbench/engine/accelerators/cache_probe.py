"""Steps computed versus skipped under diffusers' cache hooks, read from the hooks' own state.

:func:`install` registers one more diffusers ``ModelHook`` on the denoiser itself (outermost:
registered after the cache's hooks). Around every denoiser forward it

- starts a pipeline call afresh when the scheduler's ``step_index`` is None (the first step of
  a call): the cache hooks' per-call state is cleared, as diffusers' ``maybe_free_model_hooks``
  does at the end of a call for ``CacheMixin`` models only (SD3's transformer is not one);
- sets a cache context when the pipeline set none (diffusers' FLUX pipeline wraps its
  transformer calls in ``cache_context("cond")``; SD3's and FLUX Kontext's do not, and the
  stateful hooks refuse to run without one);
- after the forward, reads whether the cache computed this step or reused it, from the state
  the backend's head hook keeps (diffusers.hooks, 0.42):

  * first-block: ``FBCSharedBlockState.should_compute`` (False: every block after the first
    was skipped and the cached residual added);
  * magcache: ``MagCacheState.should_compute`` (False: every block was skipped);
  * taylorseer: each hooked module's ``TaylorSeerState``: a step is skipped when no hooked
    module updated its Taylor factors (``last_update_step != current_step``: every hooked
    module returned its prediction; the modules outside the hooks still ran).

  FasterCache and Pyramid Attention Broadcast skip attention layers, not steps: they give no
  step count (:attr:`StepStats.counts` False, reported as "n/a").

A step with several denoiser calls (true CFG) counts as skipped only when every call was.
Bookkeeping runs outside torch.compile (``torch.compiler.disable``): a compiled denoiser
breaks its graph at the probe's edges, never inside the model.
"""

from __future__ import annotations

from typing import Any, Optional

#: Name of the probe in the denoiser's diffusers HookRegistry.
HOOK_NAME = "diffbench_cache_probe"
#: Cache context diffbench sets when the pipeline sets none.
CONTEXT_NAME = "diffbench"
#: cache name -> diffusers head-hook name whose state says computed/skipped.
HEAD_HOOKS = {"first-block": "fbc_leader_block_hook", "magcache": "mag_cache_leader_block_hook"}
TAYLORSEER_HOOK = "taylorseer_cache"
#: Caches whose hooks give a per-step decision.
COUNTED = ("first-block", "magcache", "taylorseer")


class StepStats:
    """Per pipeline call: which denoising steps the cache computed and which it skipped.

    Attributes:
        cache: the cache name ("first-block", ...).
        counts: False when the backend gives no step count (fastercache, pab): every count
            is then None ("n/a"), never a guess.
        outcomes: scheduler step index (None for the first step) -> True when skipped, for
            the current (last) pipeline call, in step order.
        calls: pipeline calls seen.
    """

    def __init__(self, cache: str, counts: bool) -> None:
        self.cache = cache
        self.counts = counts
        self.outcomes: dict[Any, bool] = {}
        self.calls = 0

    def begin_call(self) -> None:
        """A pipeline call starts: forget the previous call's steps."""
        self.outcomes.clear()
        self.calls += 1

    def record(self, step: Any, skipped: bool) -> None:
        """One denoiser call of step ``step`` was computed (False) or skipped (True)."""
        self.outcomes[step] = self.outcomes.get(step, True) and skipped

    def skipped(self) -> Optional[int]:
        """Steps skipped so far in this call; None without a count."""
        return sum(self.outcomes.values()) if self.counts else None

    def computed(self) -> Optional[int]:
        """Steps computed so far in this call; None without a count."""
        return len(self.outcomes) - sum(self.outcomes.values()) if self.counts else None


def _managers(hook: Any) -> list:
    """The diffusers StateManagers a hook holds (its attributes of that class)."""
    from diffusers.hooks.hooks import StateManager

    return [value for value in vars(hook).values() if isinstance(value, StateManager)]


def _hooks(denoiser: Any, name: str) -> list:
    """Every hook called ``name`` in the HookRegistries of ``denoiser``'s modules."""
    found = []
    for module in denoiser.modules():
        registry = getattr(module, "_diffusers_hook", None)
        if registry is not None and name in registry.hooks:
            found.append(registry.hooks[name])
    return found


def _stateful(denoiser: Any) -> list:
    """(module, hook) of every stateful diffusers hook under ``denoiser``."""
    out = []
    for module in denoiser.modules():
        registry = getattr(module, "_diffusers_hook", None)
        if registry is None:
            continue
        for hook in registry.hooks.values():
            if getattr(hook, "_is_stateful", False):
                out.append((module, hook))
    return out


def _current(manager: Any) -> Any:
    """The state of ``manager`` for its current context, or None (none made yet)."""
    context = getattr(manager, "_context", None)
    if context is None:
        return None
    return manager._state_cache.get(getattr(context, "name", context))


class _Reader:
    """Reads "was the last denoiser call skipped?" from one backend's hook state."""

    def __init__(self, denoiser: Any, cache: str) -> None:
        self.cache = cache
        if cache in HEAD_HOOKS:
            self.managers = [m for hook in _hooks(denoiser, HEAD_HOOKS[cache])
                             for m in _managers(hook)]
        elif cache == "taylorseer":
            self.managers = [m for hook in _hooks(denoiser, TAYLORSEER_HOOK)
                             for m in _managers(hook)]
        else:
            self.managers = []

    def skipped(self) -> bool:
        states = [s for s in (_current(m) for m in self.managers) if s is not None]
        if not states:
            return False
        if self.cache in HEAD_HOOKS:
            return not states[0].should_compute
        return all(s.last_update_step != s.current_step for s in states)


def _probe_hook(denoiser: Any, scheduler: Any, stats: StepStats) -> Any:
    import torch
    from diffusers.hooks import ModelHook
    from diffusers.hooks.hooks import CacheContext

    stateful = _stateful(denoiser)
    managers = [m for _module, hook in stateful for m in _managers(hook)]
    reader = _Reader(denoiser, stats.cache)

    @torch.compiler.disable
    def before() -> "tuple[Any, bool]":
        step = getattr(scheduler, "step_index", None)
        if step is None:  # the first step of a pipeline call
            stats.begin_call()
            for module, hook in stateful:
                own = _managers(hook)
                if own:  # keep the context the pipeline may have set already
                    for manager in own:
                        manager._state_cache.clear()
                else:
                    hook.reset_state(module)
        ours = any(m._context is None for m in managers)
        if ours:
            for manager in managers:
                manager.set_context(CacheContext(CONTEXT_NAME))
        return step, ours

    @torch.compiler.disable
    def after(step: Any, ours: bool) -> None:
        if stats.counts:
            stats.record(step, reader.skipped())
        if ours:
            for manager in managers:
                manager.set_context(None)

    class CacheProbe(ModelHook):
        """Per denoiser call: fresh state per pipeline call, a context, the step's outcome."""

        def new_forward(self, module: Any, *args: Any, **kwargs: Any) -> Any:
            step, ours = before()
            try:
                return self.fn_ref.original_forward(*args, **kwargs)
            finally:
                after(step, ours)

    return CacheProbe()


def install(denoiser: Any, scheduler: Any, cache: str) -> StepStats:
    """Register the probe on ``denoiser`` (after the cache hooks, so it is the outermost);
    return the :class:`StepStats` it fills.

    Args:
        denoiser: the transformer with diffusers cache hooks installed
            (``spec.denoiser(pipe)``).
        scheduler: the pipeline's scheduler; its ``step_index`` (None before the first
            ``step`` of a call) marks the steps.
        cache: the cache name; counts only for :data:`COUNTED`.

    Raises:
        ConfigError: the scheduler has no ``step_index`` (the probe could not tell the calls
            and steps apart).
    """
    from diffusers.hooks import HookRegistry

    from diffbench.engine.errors import ConfigError

    if not hasattr(scheduler, "step_index"):
        raise ConfigError(f"--cache {cache} needs a scheduler with step_index (e.g. "
                          f"FlowMatchEulerDiscreteScheduler); {type(scheduler).__name__} "
                          f"has none")
    stats = StepStats(cache, cache in COUNTED)
    registry = HookRegistry.check_if_exists_or_initialize(denoiser)
    registry.register_hook(_probe_hook(denoiser, scheduler, stats), HOOK_NAME)
    invalidate = getattr(registry, "invalidate_child_registries_cache", None)
    if invalidate is not None:
        invalidate()
    return stats
