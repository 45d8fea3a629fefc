"""Quantization of the UNet's linear layers through torchao (``--quantize``).

Modes (``RunConfig.quantize``):

- ``int8wo``: int8 weight-only (torchao Int8WeightOnlyConfig / int8_weight_only).
- ``int8dq``: int8 dynamic activations, int8 weights (Int8DynamicActivationInt8WeightConfig).
- ``fp8dq``: float8 (e4m3) dynamic activations and weights, per-row scales
  (Float8DynamicActivationFloat8WeightConfig); needs CUDA compute capability >= 8.9.

These are lossy: report the output error. They pay off under torch.compile, which fuses the
(de)quantization into the matmuls; eager torchao kernels are slower than bf16.

``quantize_config`` keys (as OneDiff's ``quantize_pipe``):

- ``quant_type``: OneDiff's name for the recipe ("int8_weightonly", "int8_dynamic",
  "fp8_e4m3_e4m3_dynamic"; or our mode names); must agree with ``--quantize`` when both given.
- ``modules`` (list of pipeline component names, default ["unet"]; "controlnet" allowed).
- ``ignores`` (list of substrings of module names to leave in bf16, default []).
- ``min_features`` (int, default 0): leave linear layers with in*out features below this in
  bf16 (small matmuls lose more to the quantize step than they gain).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.accelerators import versions
from engine.errors import AcceleratorUnavailableError, ConfigError
from engine.events import LogMessage

if TYPE_CHECKING:  # pragma: no cover
    from engine.config import RunConfig
    from engine.events import EventCallback

#: OneDiff quant_type names -> our modes.
QUANT_TYPES = {
    "int8wo": "int8wo", "int8_weightonly": "int8wo", "int8_weight_only": "int8wo",
    "int8dq": "int8dq", "int8_dynamic": "int8dq",
    "fp8dq": "fp8dq", "fp8_e4m3_e4m3_dynamic": "fp8dq", "float8_dynamic": "fp8dq",
}
CONFIG_KEYS = ("quant_type", "modules", "ignores", "min_features")
MODULES = ("unet", "controlnet", "vae", "text_encoder", "text_encoder_2")


def available(mode: str, device: str = "cuda") -> tuple[bool, str]:
    """(ok, reason) for quantization ``mode`` on ``device`` (reads metadata; fp8 on CUDA
    imports torch to read the compute capability)."""
    if mode == "none":
        return True, ""
    if versions.dist_version("torchao") is None:
        return False, "torchao is not installed (pip install torchao matching your torch)"
    if mode == "fp8dq":
        if not str(device).startswith("cuda"):
            return False, "float8 needs a CUDA GPU with compute capability >= 8.9"
        import torch

        if not torch.cuda.is_available():
            return False, "float8 needs a CUDA GPU with compute capability >= 8.9"
        index = torch.device(device).index or 0
        capability = torch.cuda.get_device_capability(index)
        if capability < (8, 9):
            return False, (f"float8 needs compute capability >= 8.9; "
                           f"{torch.cuda.get_device_name(index)} has "
                           f"{capability[0]}.{capability[1]}")
    return True, ""


def parse(cfg: "RunConfig") -> tuple[dict, list[str]]:
    """Resolved settings {"mode", "modules", "ignores", "min_features"} and notices.

    Raises:
        ConfigError: wrong types, an unknown quant_type, or one that contradicts --quantize.
    """
    config = cfg.quantize_config
    notices = [f"ignored: unknown quantize_config key {key!r} (known: {', '.join(CONFIG_KEYS)})"
               for key in config if key not in CONFIG_KEYS]
    mode = cfg.quantize
    quant_type = config.get("quant_type")
    if quant_type is not None:
        if quant_type not in QUANT_TYPES:
            raise ConfigError(f"quantize_config quant_type must be one of "
                              f"{', '.join(QUANT_TYPES)}, got {quant_type!r}")
        if mode != "none" and QUANT_TYPES[quant_type] != mode:
            raise ConfigError(f"quantize_config quant_type {quant_type!r} contradicts "
                              f"--quantize {mode}")
    if mode == "none" and config:
        notices.append("ignored: quantize_config given without --quantize")
    modules = config.get("modules", ["unet"])
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        raise ConfigError(f"quantize_config modules must be a list of names, got {modules!r}")
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        raise ConfigError(f"quantize_config modules: unknown {', '.join(unknown)} "
                          f"(choose from {', '.join(MODULES)})")
    ignores = config.get("ignores", [])
    if not isinstance(ignores, list) or not all(isinstance(m, str) for m in ignores):
        raise ConfigError(f"quantize_config ignores must be a list of strings, got {ignores!r}")
    min_features = config.get("min_features", 0)
    if isinstance(min_features, bool) or not isinstance(min_features, int) or min_features < 0:
        raise ConfigError(f"quantize_config min_features must be an integer >= 0, "
                          f"got {min_features!r}")
    if mode != "none" and cfg.compiler in ("none", "cudagraph"):
        notices.append(f"quantize {mode} without torch.compile runs torchao's unfused kernels "
                       f"(usually slower than bf16); add --compiler compile")
    return ({"mode": mode, "modules": modules, "ignores": ignores,
             "min_features": min_features}, notices)


def validate(cfg: "RunConfig") -> list[str]:
    """Notices for quantize settings; raises ConfigError on wrong types."""
    return parse(cfg)[1]


def _torchao_config(mode: str) -> Any:
    """The torchao config object (new API) or factory result (old API) for ``mode``."""
    import torchao.quantization as tq

    if mode == "int8wo":
        if hasattr(tq, "Int8WeightOnlyConfig"):
            return tq.Int8WeightOnlyConfig()
        return tq.int8_weight_only()
    if mode == "int8dq":
        if hasattr(tq, "Int8DynamicActivationInt8WeightConfig"):
            return tq.Int8DynamicActivationInt8WeightConfig()
        return tq.int8_dynamic_activation_int8_weight()
    if mode == "fp8dq":
        granularity = tq.PerRow() if hasattr(tq, "PerRow") else None
        if hasattr(tq, "Float8DynamicActivationFloat8WeightConfig"):
            return tq.Float8DynamicActivationFloat8WeightConfig(granularity=granularity) \
                if granularity is not None else tq.Float8DynamicActivationFloat8WeightConfig()
        return tq.float8_dynamic_activation_float8_weight(granularity=granularity)
    raise ConfigError(f"unknown quantize mode {mode!r}")


def apply(pipe: Any, cfg: "RunConfig", emit: "EventCallback") -> Any:
    """Quantize the configured components' linear layers in place; return ``pipe``.

    Raises:
        AcceleratorUnavailableError: torchao missing or failing to import (one line).
    """
    settings, _ = parse(cfg)
    if settings["mode"] == "none":
        return pipe
    try:
        import torch
        from torchao.quantization import quantize_
        config = _torchao_config(settings["mode"])
    except ImportError as exc:
        raise AcceleratorUnavailableError(f"torchao failed to import: {exc}") from None
    ignores, min_features = settings["ignores"], settings["min_features"]

    def keep(module: Any, fqn: str) -> bool:
        if not isinstance(module, torch.nn.Linear):
            return False
        if any(part in fqn for part in ignores):
            return False
        return module.in_features * module.out_features >= min_features

    done = []
    for name in settings["modules"]:
        module = getattr(pipe, name, None)
        if not isinstance(module, torch.nn.Module):
            continue
        count = sum(1 for fqn, sub in module.named_modules() if keep(sub, fqn))
        quantize_(module, config, filter_fn=keep)
        done.append(f"{name} ({count} linear layers)")
    emit(LogMessage("info", f"torchao {settings['mode']}: quantized {', '.join(done) or 'nothing'}"))
    return pipe
