"""Model families: one module per family holding its :class:`DenoiserSpec`, one table here.

The family of a model comes from its pipeline class: model_index.json's ``_class_name`` for
local folders and HF-cache snapshots (:func:`for_index_class`), the builder's declaration for
the built-in tiny-*/synthetic-* models, ``type(pipe)`` for a loaded pipeline
(:func:`for_pipeline`) — never from the model's name. A class no family claims is refused with
one line before anything loads.

Adding a family: write ``families/<name>.py`` with a ``SPEC = DenoiserSpec(...)`` and add one
line to :data:`FAMILY_MODULES`.

Cheap to import: no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from diffbench.engine.errors import ConfigError
from diffbench.engine.families.spec import DenoiserSpec

__all__ = ["DenoiserSpec", "FAMILY_MODULES", "FamilyNotSupported", "all_specs", "for_index_class",
           "for_pipeline", "get", "names"]

#: family name -> module defining its SPEC (the one registry line per family).
FAMILY_MODULES = {
    "sd15": "diffbench.engine.families.sd15",
    "sdxl": "diffbench.engine.families.sdxl",
    "pix2pix": "diffbench.engine.families.pix2pix",
    "flux": "diffbench.engine.families.flux",
    "flux_kontext": "diffbench.engine.families.flux_kontext",
    "sd3": "diffbench.engine.families.sd3",
}

_SPECS: dict[str, DenoiserSpec] = {}


class FamilyNotSupported(ConfigError):
    """A pipeline class no family claims (e.g. a video pipeline): one line, exit code 2."""


def names() -> tuple[str, ...]:
    """Every family name, in registry order."""
    return tuple(FAMILY_MODULES)


def get(family: str) -> DenoiserSpec:
    """The spec of ``family`` ("sd15", "sdxl", "pix2pix", "flux", "flux_kontext", "sd3").

    Raises:
        ConfigError: no such family.
    """
    if family not in _SPECS:
        module = FAMILY_MODULES.get(family)
        if module is None:
            raise ConfigError(f"unknown model family {family!r} (known: "
                              f"{', '.join(FAMILY_MODULES)})")
        spec = importlib.import_module(module).SPEC
        if spec.family != family:  # a registry line pointing at the wrong module
            raise ConfigError(f"{module} defines family {spec.family!r}, not {family!r}")
        _SPECS[family] = spec
    return _SPECS[family]


def all_specs() -> list[DenoiserSpec]:
    """Every family's spec, in registry order."""
    return [get(name) for name in FAMILY_MODULES]


def _supported() -> str:
    return ", ".join(spec.label for spec in all_specs())


def for_index_class(class_name: "str | None", model: str = "") -> DenoiserSpec:
    """The family whose pipelines a model_index.json ``_class_name`` names.

    Raises:
        FamilyNotSupported: no family claims the class (anything but the SD 1.5, SDXL,
            instruct-pix2pix, FLUX.1, FLUX.1 Kontext and SD3 pipelines); one line naming it.
    """
    for spec in all_specs():
        if class_name in spec.index_classes:
            return spec
    where = f"model {model!r}: " if model else ""
    raise FamilyNotSupported(f"{where}family not supported yet: its model_index.json names "
                             f"{class_name}; diffbench runs {_supported()} pipelines")


def for_pipeline(pipe: Any) -> DenoiserSpec:
    """The family of a loaded pipeline, from its class (or a base class) name.

    Raises:
        FamilyNotSupported: no family knows the pipeline class.
    """
    for cls in type(pipe).__mro__:
        for spec in all_specs():
            if cls.__name__ in spec.index_classes or \
                    cls.__name__ in spec.pipelines.values() or \
                    cls.__name__ in spec.controlnet_pipelines.values():
                return spec
    raise FamilyNotSupported(f"family not supported yet: pipeline class "
                             f"{type(pipe).__name__}; diffbench runs {_supported()} pipelines")
