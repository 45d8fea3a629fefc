"""RunConfig: one benchmark run's settings, validated and frozen.

The fields, their defaults and their per-field checks come from the catalog
(diffbench.engine.catalog: one declaration per setting, in field order); this module adds the
checks that span fields (an img2img task needs an input image, custom pipelines need
--trust-remote-code) and the ones that look at files.

Validation is cheap (no torch import) and raises :class:`diffbench.engine.errors.ConfigError`
with a one-line message and ``.field`` = the setting it is about. Checks that need the model or
the installed backends (unknown model, an unavailable compiler) live in
diffbench.engine.models.sources and diffbench.engine.accelerators.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional

from diffbench.engine import catalog
from diffbench.engine.catalog.settings import (  # noqa: F401  (re-exported: the old home)
    BUILTIN_MODELS, COMPILERS, DEFAULT_MODEL, DEFAULT_PROMPT, DEVICES, DTYPES, MAX_BATCH,
    MAX_SIZE, MAX_STEPS, MAX_TIMEOUT_S, MAX_WARMUPS, QUANTIZE_MODES, RESERVED_CALL_KWARGS,
    SCHEDULERS, TASKS, TEXT_ENCODER_QUANTS)
from diffbench.engine.errors import ConfigError

#: Settings whose value is a dict (a JSON object string is parsed).
_DICT_FIELDS = tuple(s.name for s in catalog.SETTINGS if s.kind is dict)


class _RunConfigMethods:
    """RunConfig's behaviour; its fields are added from the catalog below."""

    def __post_init__(self) -> None:
        for name in _DICT_FIELDS:
            object.__setattr__(self, name, catalog.parse_json_object(getattr(self, name), name))
        if self.task is None:
            object.__setattr__(self, "task", infer_task(self.model, self.input_image))
        self._validate()

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        for setting in catalog.SETTINGS:
            setting.validate(getattr(self, setting.name))
        if self.task in ("i2i", "pix2pix"):
            if self.input_image is None:
                raise ConfigError(f"task {self.task} needs an input image (--input-image)",
                                  field="input_image")
            if self.task == "i2i" and int(self.steps * self.strength) < 1:
                raise ConfigError(
                    f"img2img runs int(steps * strength) = int({self.steps} * {self.strength})"
                    f" = 0 denoising steps; raise --steps or --strength", field="strength")
        for name in ("input_image", "control_image"):
            path = getattr(self, name)
            if path is not None:
                _check_readable_file(name, path)
        if self.output_image is not None:
            folder = os.path.dirname(os.path.abspath(self.output_image)) or "."
            if not os.path.isdir(folder):
                raise ConfigError(f"output_image folder does not exist: {folder}",
                                  field="output_image")
        if self.custom_pipeline and not self.trust_remote_code:
            raise ConfigError("custom_pipeline runs code from the model repo; pass "
                              "--trust-remote-code to allow it", field="custom_pipeline")

    # ------------------------------------------------------------------ helpers
    def to_dict(self) -> dict[str, Any]:
        """All fields as a JSON/TOML-friendly dict (None values kept), in field order."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        """Build from a dict; unknown keys raise ConfigError naming them."""
        unknown = sorted(set(data) - set(catalog.BY_NAME))
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
        return cls(**data)

    def replace(self, **changes: Any) -> "RunConfig":
        """A copy with ``changes`` applied and validated again (task re-inferred if unset)."""
        data = self.to_dict()
        data.update(changes)
        if "task" not in changes and ("input_image" in changes or "model" in changes):
            data["task"] = None
        return RunConfig.from_dict(data)


def _field(setting: catalog.Setting) -> tuple[str, Any, Any]:
    annotation = Optional[setting.kind] if setting.optional else setting.kind
    if setting.kind is dict:
        return setting.name, annotation, dataclasses.field(default_factory=dict)
    return setting.name, annotation, dataclasses.field(default=setting.default)


RunConfig = dataclasses.make_dataclass(
    "RunConfig", [_field(s) for s in catalog.SETTINGS], bases=(_RunConfigMethods,),
    frozen=True)
RunConfig.__module__ = __name__  # pickles and prints as diffbench.engine.config.RunConfig
RunConfig.__doc__ = """Validated settings of one run. Construct with keywords; invalid values
raise ConfigError.

One field per catalog setting (diffbench.engine.catalog.settings), same name, type and
default. Sizes are pixels (multiples of 8; None = the model's native size: UNet sample_size x
VAE scale factor). ``steps`` is num_inference_steps; img2img actually runs
int(steps * strength) denoising steps. ``batch`` is num_images_per_prompt. ``seed`` seeds a
torch.Generator on the run's device before every call. ``dtype`` "auto" means float16 on CUDA
(as OneDiff's script) and float32 on CPU. ``extra_call_kwargs``, ``compiler_config`` and
``quantize_config`` are dicts (JSON strings are parsed).

Raises:
    ConfigError: any invalid field, with a one-line message and ``.field`` naming it.
"""


def infer_task(model: str, input_image: Optional[str]) -> str:
    """Guess the task: pix2pix models -> "pix2pix"; an input image -> "i2i", or "pix2pix"
    for a model whose family only edits (FLUX.1 Kontext: its pipeline classes, read without
    loading, have no img2img); else "t2i"."""
    if "pix2pix" in str(model).lower():
        return "pix2pix"
    if not input_image:
        return "t2i"
    return "pix2pix" if _edits_instead_of_i2i(model) else "i2i"


def _edits_instead_of_i2i(model: str) -> bool:
    """True when ``model`` resolves (cheaply: a built-in or a folder's model_index.json) to a
    family with an edit pipeline and no img2img one; False when it does not resolve."""
    from diffbench.engine.errors import DiffbenchError
    from diffbench.engine.models.sources import resolve_source

    try:
        pipelines = resolve_source(model).spec.pipelines
    except DiffbenchError:
        return False  # preflight reports the model
    return "pix2pix" in pipelines and "i2i" not in pipelines


def _check_readable_file(name: str, path: str) -> None:
    if not isinstance(path, str) or not path:
        raise ConfigError(f"{name} must be a file path", field=name)
    if not os.path.exists(path):
        raise ConfigError(f"{name} not found: {path}", field=name)
    if not os.path.isfile(path):
        raise ConfigError(f"{name} is not a file: {path}", field=name)
    if not os.access(path, os.R_OK):
        raise ConfigError(f"{name} is not readable: {path}", field=name)
