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
    if cfg.custom_pipeline:
        check_custom_pipeline(cfg, source)
    elif cfg.extra_call_kwargs:  # a custom pipeline's class is known once loaded (prepare)
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


def check_custom_pipeline(cfg: RunConfig, source: Any) -> None:
    """Refuse a custom pipeline that would be ignored or fetched: it needs
    --trust-remote-code (RunConfig checks that), a model loaded from a folder or the cache (a
    built-in is constructed in code), and a local folder holding ``pipeline.py`` or a ``.py``
    file (runs are offline: no hub or community pipeline is downloaded).

    Raises:
        ConfigError: one line saying which.
    """
    if source.kind == "builtin":
        raise ConfigError(f"--custom-pipeline needs a model folder or a cached hub model; "
                          f"{cfg.model} is a built-in model constructed in code",
                          field="custom_pipeline")
    path = os.path.expanduser(cfg.custom_pipeline)
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "pipeline.py")):
            raise ConfigError(f"--custom-pipeline folder {cfg.custom_pipeline} has no "
                              f"pipeline.py", field="custom_pipeline")
    elif not (os.path.isfile(path) and path.endswith(".py")):
        raise ConfigError(f"--custom-pipeline {cfg.custom_pipeline}: not a local folder with "
                          f"a pipeline.py or a .py file (hub and community pipelines are not "
                          f"downloaded)", field="custom_pipeline")


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
    for key, value in cfg.extra_call_kwargs.items():
        param = params[key]
        wanted = param.annotation
        if wanted is inspect.Parameter.empty and type(param.default) in (bool, int, float, str):
            wanted = type(param.default)  # no annotation: the default's type tells
        if _fits(value, wanted) is False:
            raise ConfigError(f"extra_call_kwargs: {key!r} must be {_type_name(wanted)} for "
                              f"{cls.__name__}, got {_short(value)} ({type(value).__name__})")


def _fits(value: Any, annotation: Any) -> Any:
    """Whether a JSON ``value`` fits a parameter ``annotation``: True, False, or None where
    the annotation cannot tell (tensors, images, callables, string annotations)."""
    import inspect
    import types
    import typing

    if annotation is inspect.Parameter.empty or annotation is typing.Any:
        return None
    if annotation is None or annotation is type(None):
        return value is None
    origin = typing.get_origin(annotation)
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        answers = [_fits(value, arm) for arm in typing.get_args(annotation)]
        return True if True in answers else (None if None in answers else False)
    if origin in (list, tuple) or annotation in (list, tuple):
        if not isinstance(value, list):
            return False
        args = typing.get_args(annotation)
        if origin is list and len(args) == 1:
            answers = [_fits(item, args[0]) for item in value]
            return False if False in answers else True
        return True
    if origin is dict or annotation is dict:
        return isinstance(value, dict)
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    simple = {float: numeric, int: numeric and isinstance(value, int),
              bool: isinstance(value, bool), str: isinstance(value, str)}
    return simple.get(annotation) if isinstance(annotation, type) else None


def _type_name(annotation: Any) -> str:
    name = getattr(annotation, "__name__", None)
    return name if isinstance(annotation, type) and name else str(annotation)



def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
