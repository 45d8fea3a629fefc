"""Accelerators: plugins behind one interface (:mod:`.base`), listed in one table
(:mod:`.registry`).

The runner calls, in order: :func:`check` (the compiler can run on the device, before loading
anything), :func:`validate_all` (settings; notices for ignored keys), :func:`check_stacked`
(what the stacked plugins need on the device); then, once the pipeline is built,
:func:`apply_all` for stage "load" (ControlNet, LoRA: part of load_s) and stage "accelerate"
(the compiler's preparation, the stacked plugins in table order, the compiler);
:func:`after_warmup` after the warmup calls. Every plugin gets the family's denoiser spec and
the run's :class:`AcceleratorState`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from diffbench.engine.accelerators.base import (COMPILER, STACKED, Accelerator,
                                                AcceleratorState)
# _REGISTRY is re-exported: tests patch the table through this package.
from diffbench.engine.accelerators.registry import (_REGISTRY, compilers, get, plugins,  # noqa: F401
                                                    register, stacked)
from diffbench.engine.errors import AcceleratorUnavailableError

if TYPE_CHECKING:  # pragma: no cover
    from diffbench.engine.config import RunConfig
    from diffbench.engine.events import EventCallback
    from diffbench.engine.families import DenoiserSpec

__all__ = ["COMPILER", "STACKED", "Accelerator", "AcceleratorState", "after_warmup",
           "all_backends", "apply_all", "check", "check_all", "check_family", "check_stacked",
           "compilers", "get", "plugins", "register", "stacked", "validate_all"]


def all_backends() -> dict[str, Accelerator]:
    """Every compiler plugin by name (the ``--compiler`` choices, for doctor and the
    dashboard)."""
    return compilers()


def check(cfg: "RunConfig", device: str) -> None:
    """Raise AcceleratorUnavailableError if cfg's compiler cannot run on ``device``."""
    backend = get(cfg.compiler)
    ok, reason = backend.available(device)
    if not ok:
        raise AcceleratorUnavailableError(f"compiler {cfg.compiler!r} cannot run here: {reason}")


def validate_all(cfg: "RunConfig", stage: "str | None" = None) -> list[str]:
    """Notices from the compiler (unless ``stage`` is "load") and every stacked plugin ``cfg``
    asks for (of ``stage`` when given), in table order.

    Raises:
        ConfigError, ModelNotFoundError: a wrong type or value in compiler_config /
            quantize_config / cache_*, a missing LoRA file or peft, an unknown ControlNet.
    """
    notices = [] if stage == "load" else list(get(cfg.compiler).validate(cfg))
    for plugin in stacked(stage):
        if plugin.requested(cfg):
            notices += plugin.validate(cfg)
    return notices


def check_stacked(cfg: "RunConfig", device: str) -> None:
    """Raise AcceleratorUnavailableError (reason and fix) when a stacked plugin ``cfg`` asks
    for cannot run on ``device`` (torchao missing, float8 without a capable GPU)."""
    for plugin in stacked():
        if plugin.requested(cfg):
            ok, reason = plugin.available_for(cfg, device)
            if not ok:
                raise AcceleratorUnavailableError(f"{plugin.describe(cfg)} cannot run here: "
                                                  f"{reason}")


def check_family(cfg: "RunConfig", spec: "DenoiserSpec") -> None:
    """Raise ConfigError (one line) when the compiler or a stacked plugin ``cfg`` asks for
    cannot serve models of family ``spec`` (e.g. --cache on a UNet, --deepcache on a
    transformer), before anything loads."""
    from diffbench.engine.errors import ConfigError

    asked = [get(cfg.compiler)] + [p for p in stacked() if p.requested(cfg)]
    for plugin in asked:
        reason = plugin.family_reason(cfg, spec)
        if reason:
            raise ConfigError(reason)


def check_all(cfg: "RunConfig", device: str) -> None:
    """:func:`check` plus :func:`check_stacked`.

    Raises:
        AcceleratorUnavailableError: with the reason and the fix.
    """
    check(cfg, device)
    check_stacked(cfg, device)


def apply_all(pipe: Any, spec: "DenoiserSpec", cfg: "RunConfig", emit: "EventCallback",
              state: "AcceleratorState | None" = None, stage: str = "accelerate") -> Any:
    """Apply every plugin ``cfg`` asks for at ``stage`` to a pipeline already on its device.

    Stage "load": the stacked load plugins in table order (ControlNet, LoRA). Stage
    "accelerate": the compiler's :meth:`~Accelerator.prepare` (compile cache folder,
    channels_last / fused QKV) -> the stacked plugins in table order (step caching, torchao
    quantization) -> the compiler. Returns the (possibly rebuilt) pipeline; call
    :func:`after_warmup` after the warmup calls and read ``state.warmup_cache()``.

    Raises:
        AcceleratorUnavailableError, ConfigError: one-line messages.
    """
    state = state if state is not None else AcceleratorState()
    compiler = get(cfg.compiler) if stage == "accelerate" else None
    if compiler is not None:
        compiler.prepare(pipe, spec, cfg, emit, state)
    for plugin in stacked(stage):
        if plugin.requested(cfg):
            pipe = plugin.apply(pipe, spec, cfg, emit, state)
    if compiler is not None:
        pipe = compiler.apply(pipe, spec, cfg, emit, state)
    return pipe


def after_warmup(state: "AcceleratorState | None", emit: "EventCallback") -> None:
    """Persist what the warmup compiled (torch's portable cache artifacts). Never raises."""
    if state is not None and state.compile_cache is not None:
        from diffbench.engine.accelerators import compile_cache

        compile_cache.save(state.compile_cache, emit)
