"""The one table of accelerator plugins.

Adding an accelerator: write ``accelerators/<name>.py`` with an :class:`~diffbench.engine.
accelerators.base.Accelerator` subclass and add its line to :data:`TABLE`. Stacked plugins are
applied in table order (each needs the previous one's modules): ControlNet and LoRA while the
pipeline is built, then fused QKV projections and the attention backend, then step caching
(DeepCache for UNets, diffusers' cache hooks for transformers: the switch must be inside what
gets compiled), then quantization (of the fused weights); the compiler comes last.
"""

from __future__ import annotations

import importlib

from diffbench.engine.accelerators.base import COMPILER, STACKED, Accelerator
from diffbench.engine.errors import AcceleratorUnavailableError

#: (registry name, "module:Class"). Compilers first (doctor's order), then stacked plugins in
#: the order they apply.
TABLE = (
    ("none", "diffbench.engine.accelerators.none:Eager"),
    ("compile", "diffbench.engine.accelerators.compile:TorchCompile"),
    ("compile-max-autotune", "diffbench.engine.accelerators.compile:TorchCompileMaxAutotune"),
    ("cudagraph", "diffbench.engine.accelerators.cudagraph:CudaGraph"),
    ("nexfort", "diffbench.engine.accelerators.nexfort:Nexfort"),
    ("oneflow", "diffbench.engine.accelerators.oneflow:OneFlow"),
    ("controlnet", "diffbench.engine.accelerators.controlnet:ControlNet"),
    ("lora", "diffbench.engine.accelerators.lora:LoRA"),
    ("fuse-qkv", "diffbench.engine.accelerators.attention:FusedQKV"),
    ("attention", "diffbench.engine.accelerators.attention:AttentionBackend"),
    ("deepcache", "diffbench.engine.accelerators.deepcache:StepCaching"),
    ("cache", "diffbench.engine.accelerators.step_cache:StepCache"),
    ("quantize", "diffbench.engine.accelerators.quantize:Quantize"),
)

#: name -> plugin instance, filled from TABLE on first use (tests may add entries).
_REGISTRY: dict[str, Accelerator] = {}
_loaded = False


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for name, target in TABLE:
        module, cls = target.split(":")
        plugin = getattr(importlib.import_module(module), cls)()
        if plugin.name != name:  # the table and the class must agree
            raise RuntimeError(f"{target} is named {plugin.name!r}, the table says {name!r}")
        _REGISTRY.setdefault(name, plugin)
    _loaded = True


def register(plugin: Accelerator) -> Accelerator:
    """Add (or replace) a plugin at run time (plugins outside this package); returns it."""
    _load()
    _REGISTRY[plugin.name] = plugin
    return plugin


def plugins(kind: "str | None" = None, stage: "str | None" = None) -> list[Accelerator]:
    """Registered plugins in table order (then any added later), optionally of one ``kind``
    ("compiler" / "stacked") and, for stacked ones, one ``stage`` ("load" / "accelerate")."""
    _load()
    return [p for p in _REGISTRY.values()
            if (kind is None or p.kind == kind) and
            (stage is None or p.kind == COMPILER or p.stage == stage)]


def get(name: str) -> Accelerator:
    """The plugin registered as ``name``.

    Raises:
        AcceleratorUnavailableError: no plugin of that name.
    """
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise AcceleratorUnavailableError(
            f"unknown accelerator {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def compilers() -> dict[str, Accelerator]:
    """The compiler plugins by name (the ``--compiler`` choices)."""
    return {p.name: p for p in plugins(COMPILER)}


def stacked(stage: "str | None" = None) -> list[Accelerator]:
    """The stacked plugins in application order (optionally of one ``stage``)."""
    return [p for p in plugins(STACKED, stage)]
