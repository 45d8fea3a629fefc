"""The cheap checks before a run loads anything (:func:`preflight`): model source, task and
family, input images, device, compiler and quantization availability, the interpreter of
``--python``, extra call keywords. Each problem is one of the one-line errors of
diffbench.engine.errors, raised now rather than minutes into a load.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from diffbench.engine.config import RunConfig
from diffbench.engine.errors import ConfigError

# diffusers/transformers log import-time chatter (e.g. "requires torchvision") at warning
# level; a benchmark's output should be its results. Users can still raise the verbosity.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

#: RunConfig's default img2img strength (a changed value outside img2img earns a notice).
_DEFAULT_STRENGTH = RunConfig.__dataclass_fields__["strength"].default


@dataclass
class Preflight:
    """What preflight learned: the model source, the device the run will use, notices."""

    source: Any
    device: str
    notices: list[str] = field(default_factory=list)


def preflight(cfg: RunConfig) -> Preflight:
    """Cheap checks before loading: raise the clear error now rather than minutes later.

    Resolves the model source (no download), checks the task fits the model, that the input
    image opens, that a requested CUDA device exists and that the compiler and quantization
    can run on the device; collects the accelerators' config notices.

    Raises:
        ModelNotFoundError, ConfigError, AcceleratorUnavailableError: one-line messages.
    """
    from diffbench.engine import accelerators
    from diffbench.engine.environment import detect_device
    from diffbench.engine.models import resolve_source
    from diffbench.engine.input_image import check_readable
    from diffbench.engine.models.loading import check_compatible, check_device_settings

    source = resolve_source(cfg.model)
    model_notices = check_compatible(cfg, source)
    for name in ("input_image", "control_image"):
        if getattr(cfg, name):
            check_readable(getattr(cfg, name), name)
    device = detect_device(cfg.device)
    if device.startswith("cuda") and detect_device("auto") != "cuda":
        raise ConfigError(f"device {cfg.device!r} asked for but no CUDA GPU is visible; "
                          "use --device cpu or auto")
    check_device_settings(cfg, source.spec, device)
    # Order of the errors: the compiler that cannot run on this machine, then the settings
    # (a typo is fixed before installing anything), then what quantization needs.
    accelerators.check(cfg, device)
    notices = model_notices + list(accelerators.validate_all(cfg, stage="accelerate"))
    accelerators.check_family(cfg, source.spec)
    accelerators.check_stacked(cfg, device)
    if cfg.python is not None:
        _check_interpreter(cfg.python)
    if cfg.extra_call_kwargs:
        from diffbench.engine.models.loading import pipeline_class

        check_call_kwargs(cfg, pipeline_class(cfg, source))  # imports diffusers, no weights
    if cfg.task != "i2i" and cfg.strength != _DEFAULT_STRENGTH:
        notices.append(f"strength only applies to img2img (--input-image); ignored for task "
                       f"{cfg.task}")
    if cfg.model.startswith("synthetic-") and device == "cpu":
        notices.append(f"{cfg.model} is full-size (random weights) and meant for a GPU: on a CPU "
                       f"one pipeline call takes minutes; tiny-* models are the CPU stand-ins")
    return Preflight(source, device, notices)


def _check_interpreter(python: str) -> None:
    """Raise ConfigError unless ``python`` (a --python path or a name on PATH) can run."""
    import shutil

    path = os.path.expanduser(python)
    found = shutil.which(path)
    if found is None:
        if os.path.isdir(path):
            raise ConfigError(f"--python {python} is a folder, not a Python interpreter")
        why = "is not executable" if os.path.exists(path) else "not found"
        raise ConfigError(f"--python {python}: interpreter {why}")


def check_call_kwargs(cfg: RunConfig, pipe: Any) -> None:
    """Refuse extra_call_kwargs the pipeline's __call__ does not name: diffusers pipelines
    swallow unknown keywords (``**kwargs``), so a typo would silently change nothing.

    ``pipe`` is a pipeline instance or class (preflight checks the class, before any weights
    load).

    Raises:
        ConfigError: naming the unknown keys and the pipeline class.
    """
    import inspect

    cls = pipe if isinstance(pipe, type) else type(pipe)
    params = inspect.signature(pipe.__call__).parameters
    unknown = sorted(k for k in cfg.extra_call_kwargs if k not in params or
                     params[k].kind is inspect.Parameter.VAR_KEYWORD)
    if unknown:
        raise ConfigError(f"extra_call_kwargs: {cls.__name__} takes no "
                          f"{', '.join(repr(k) for k in unknown)}")

