"""Accelerator backends: one module per backend, a registry keyed by name.

Each backend module defines a subclass of :class:`Accelerator` and registers it. The runner
calls, in order: :func:`check` (before loading anything: fail fast with the reason),
``validate_config`` (notices for ignored keys), then ``apply(pipe, cfg, emit)`` after the
pipeline is on its device. Compilers are chosen by ``RunConfig.compiler``; quantization
(``RunConfig.quantize``) and step caching (``RunConfig.deepcache``) stack on top.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.errors import AcceleratorUnavailableError

if TYPE_CHECKING:  # pragma: no cover
    from engine.config import RunConfig
    from engine.events import EventCallback


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
        return True, ""

    def validate_config(self, cfg: "RunConfig") -> list[str]:
        """Check cfg's backend options; return notices (ignored keys). Raise ConfigError."""
        return []

    def apply(self, pipe: Any, cfg: "RunConfig", emit: "EventCallback") -> Any:
        return pipe


_REGISTRY: dict[str, Accelerator] = {}


def register(accelerator: Accelerator) -> Accelerator:
    """Add a backend instance to the registry (module import time)."""
    _REGISTRY[accelerator.name] = accelerator
    return accelerator


def _load_builtin() -> None:
    # Import for the registration side effect; each module is cheap (torch imported lazily).
    from engine.accelerators import none  # noqa: F401


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
