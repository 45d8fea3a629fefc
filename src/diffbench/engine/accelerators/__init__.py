"""Accelerator backends: one module per backend, a registry keyed by name.

Each backend module defines a subclass of :class:`Accelerator` and registers it. The runner
calls, in order: :func:`check` (before loading anything: fail fast with the reason),
``validate_config`` (notices for ignored keys), then ``apply(pipe, cfg, emit)`` after the
pipeline is on its device. Compilers are chosen by ``RunConfig.compiler``; quantization
(``RunConfig.quantize``) and step caching (``RunConfig.deepcache``) stack on top.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from diffbench.engine.errors import AcceleratorUnavailableError

if TYPE_CHECKING:  # pragma: no cover
    from diffbench.engine.config import RunConfig
    from diffbench.engine.events import EventCallback


class Accelerator:
    """Base class. Subclasses set ``name`` and override the methods they need.

    ``available()`` must be cheap and must not raise: it returns (ok, reason) where reason
    says exactly why not and what to install. ``apply`` returns the (possibly wrapped)
    pipeline; it may raise AcceleratorUnavailableError or ConfigError with one-line messages.
    """

    name = "base"
    #: compiler_config keys this backend understands (others get a notice).
    config_keys: tuple[str, ...] = ()
    description = ""

    def available(self, device: str = "cuda") -> tuple[bool, str]:
        """(ok, reason) for running this backend on ``device`` ("cpu", "cuda", "cuda:N").

        Cheap (imports at most the backend's module) and never raises; ``reason`` is "" when
        ok, else one line saying why not and what to install.
        """
        return True, ""

    def validate_config(self, cfg: "RunConfig") -> list[str]:
        """Check cfg's backend options; return notices (ignored keys). Raise ConfigError."""
        return []

    def apply(self, pipe: Any, cfg: "RunConfig", emit: "EventCallback") -> Any:
        """Accelerate ``pipe`` (a diffusers pipeline already on its device) for ``cfg``.

        Returns the pipeline, possibly wrapped or with modules replaced; reports progress and
        notices through ``emit`` (diffbench.engine.events). The base class returns ``pipe`` unchanged.

        Raises:
            AcceleratorUnavailableError, ConfigError: one-line messages.
        """
        return pipe


_REGISTRY: dict[str, Accelerator] = {}


def register(accelerator: Accelerator) -> Accelerator:
    """Add a backend instance to the registry (module import time)."""
    _REGISTRY[accelerator.name] = accelerator
    return accelerator


def _load_builtin() -> None:
    # Import for the registration side effect; each module is cheap (torch imported lazily).
    from diffbench.engine.accelerators import none  # noqa: F401
    from diffbench.engine.accelerators import compile, cudagraph, nexfort, oneflow  # noqa: F401


def get(name: str) -> Accelerator:
    """The backend registered as ``name``.

    Raises:
        AcceleratorUnavailableError: no backend of that name.
    """
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise AcceleratorUnavailableError(
            f"unknown accelerator {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def all_backends() -> dict[str, Accelerator]:
    """Every registered backend by name (for doctor and the dashboard)."""
    _load_builtin()
    return dict(_REGISTRY)


def check(cfg: "RunConfig", device: str) -> None:
    """Raise AcceleratorUnavailableError if cfg's compiler cannot run on ``device``."""
    backend = get(cfg.compiler)
    ok, reason = backend.available(device)
    if not ok:
        raise AcceleratorUnavailableError(f"compiler {cfg.compiler!r} cannot run here: {reason}")


#: Backends whose compile output is worth caching on disk between runs.
_CACHED_BACKENDS = ("compile", "compile-max-autotune", "cudagraph")


def validate_all(cfg: "RunConfig") -> list[str]:
    """Notices from the compiler backend, quantization and step caching settings.

    Raises:
        ConfigError: a wrong type or value in compiler_config / quantize_config / cache_*.
    """
    notices = list(get(cfg.compiler).validate_config(cfg))
    if cfg.quantize != "none" or cfg.quantize_config:
        from diffbench.engine.accelerators import quantize

        notices += quantize.validate(cfg)
    if cfg.deepcache:
        from diffbench.engine.accelerators import deepcache

        notices += deepcache.validate(cfg)
    return notices


def check_all(cfg: "RunConfig", device: str) -> None:
    """:func:`check` plus quantization and step caching availability on ``device``.

    Raises:
        AcceleratorUnavailableError: with the reason and the fix.
    """
    check(cfg, device)
    check_quantize(cfg, device)


def check_quantize(cfg: "RunConfig", device: str) -> None:
    """Raise AcceleratorUnavailableError (reason and fix) when ``cfg.quantize`` cannot run on
    ``device`` (torchao missing, float8 without a capable GPU)."""
    if cfg.quantize != "none":
        from diffbench.engine.accelerators import quantize

        ok, reason = quantize.available(cfg.quantize, device)
        if not ok:
            raise AcceleratorUnavailableError(f"quantize {cfg.quantize!r} cannot run here: "
                                              f"{reason}")


def apply_all(pipe: Any, cfg: "RunConfig", emit: "EventCallback") -> Any:
    """Apply every accelerator ``cfg`` asks for to a pipeline already on its device.

    Order (each step needs the previous one's modules): compile cache directory ->
    channels_last / fused QKV -> step caching (DeepCache's method) -> torchao quantization ->
    the compiler backend. Returns the (possibly wrapped) pipeline; call
    :func:`after_warmup` after the warmup calls and read :func:`warmup_cache_state`.

    Raises:
        AcceleratorUnavailableError, ConfigError: one-line messages.
    """
    backend = get(cfg.compiler)
    compiles = cfg.compiler in _CACHED_BACKENDS and (
        cfg.compiler != "cudagraph" or backend.options(cfg)[0].regional)  # type: ignore[attr-defined]
    if compiles:
        from diffbench.engine.accelerators import compile_cache

        pipe._diffbench_cache = compile_cache.prepare(cfg, emit)
    prepare = getattr(backend, "prepare", None)
    if prepare is not None:
        prepare(pipe, cfg, emit)
    if cfg.deepcache:
        from diffbench.engine.accelerators import deepcache

        deepcache.apply(pipe, cfg, emit)
    if cfg.quantize != "none":
        from diffbench.engine.accelerators import quantize

        quantize.apply(pipe, cfg, emit)
    return backend.apply(pipe, cfg, emit)


def after_warmup(pipe: Any, emit: "EventCallback") -> None:
    """Persist what the warmup compiled (torch's portable cache artifacts). Never raises."""
    state = getattr(pipe, "_diffbench_cache", None)
    if state is not None:
        from diffbench.engine.accelerators import compile_cache

        compile_cache.save(state, emit)


def warmup_cache_state(pipe: Any) -> "str | None":
    """"cold" / "warm" for runs that use the compile cache, None otherwise."""
    state = getattr(pipe, "_diffbench_cache", None)
    return state.state if state is not None else None
