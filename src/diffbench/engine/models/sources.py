"""Where a model comes from: built in, a local diffusers folder, or the local HF cache.

Offline first: nothing is downloaded. :func:`resolve_source` is cheap (no torch import) and
raises :class:`diffbench.engine.errors.ModelNotFoundError` with the fix when the model is not here.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Optional

from diffbench.engine import families
from diffbench.engine.errors import ModelNotFoundError
from diffbench.engine.models.registry import get_builtin, list_builtins

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


@dataclass(frozen=True)
class ModelSource:
    """A resolved model.

    ``kind``: "builtin" | "local" | "hub". ``path``: the folder holding model_index.json
    (local folder or cached hub snapshot; None for built-ins). ``family``: a name of
    diffbench.engine.families ("sd15", "sdxl", "pix2pix", "flux", "flux_kontext", "sd3"),
    read from the pipeline class. ``pipeline_class``: model_index.json's ``_class_name``
    (None for built-ins).
    ``native_size``: default height/width in pixels if known without loading, else None.
    """

    name: str
    kind: str
    family: str
    path: Optional[str] = None
    pipeline_class: Optional[str] = None
    native_size: Optional[int] = None

    @property
    def spec(self) -> "families.DenoiserSpec":
        """The family's denoiser spec (diffbench.engine.families)."""
        return families.get(self.family)

    def denoiser_config(self) -> dict:
        """The denoiser's config without building it: a built-in's declared config, else the
        folder's ``<denoiser_attr>/config.json``; {} when unknown or unreadable."""
        if self.kind == "builtin":
            builtin = get_builtin(self.name)
            return dict(builtin.denoiser_config or {}) if builtin is not None else {}
        if not self.path:
            return {}
        path = os.path.join(self.path, self.spec.denoiser_attr, "config.json")
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def recommended(self) -> dict:
        """The model card's settings (steps, guidance_scale, max_sequence_length) from the
        family's spec and :meth:`denoiser_config`; {} for families that declare none."""
        spec = self.spec
        return dict(spec.recommended(self.denoiser_config())) if spec.recommended else {}


def family_of(pipeline_class: str | None, model: str = "") -> str:
    """Family from a diffusers pipeline class name (model_index.json ``_class_name``).

    Raises:
        ConfigError (families.FamilyNotSupported): no family claims the class (a video
            pipeline, say): "family not supported yet", one line naming the class.
    """
    return families.for_index_class(pipeline_class, model).family


def _read_index(folder: str, name: str) -> dict:
    path = os.path.join(folder, "model_index.json")
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelNotFoundError(f"model {name!r}: cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ModelNotFoundError(f"model {name!r}: {path} is not a JSON object")
    if not isinstance(data.get("_class_name"), str) or not data["_class_name"]:
        raise ModelNotFoundError(f"model {name!r} is not a diffusers pipeline folder: "
                                 "model_index.json has no _class_name")
    return data


def _cached_snapshot(repo_id: str) -> Optional[str]:
    """The cached snapshot folder of ``repo_id`` holding model_index.json, or None."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - a diffusers dependency
        return None
    try:
        found = try_to_load_from_cache(repo_id, "model_index.json")
    except Exception:  # noqa: BLE001 - a malformed id or cache: treat as not cached
        return None
    if isinstance(found, str) and os.path.isfile(found):
        return os.path.dirname(found)
    return None


def resolve_source(name: str) -> ModelSource:
    """Resolve ``name`` to a :class:`ModelSource` without loading anything.

    Order: a built-in name (tiny-*, synthetic-*), an existing local folder (must hold
    model_index.json), then a hub id "owner/name" already in the local Hugging Face cache
    (HF_HOME / HF_HUB_CACHE honoured). Never touches the network.

    Raises:
        ModelNotFoundError: none of the above; the message names the fix.
        ConfigError: a pipeline folder of a family diffbench does not run yet ("family not
            supported yet", naming model_index.json's class).
    """
    builtin = get_builtin(name)
    if builtin is not None:
        return ModelSource(name, "builtin", builtin.family, native_size=builtin.native_size)
    if name.startswith(("tiny-", "synthetic-")):
        known = ", ".join(list_builtins())
        raise ModelNotFoundError(f"unknown built-in model {name!r}; built-in models: {known}")
    expanded = os.path.expanduser(name)
    if os.path.isdir(expanded):
        if not os.path.isfile(os.path.join(expanded, "model_index.json")):
            raise ModelNotFoundError(
                f"{name!r} is a folder but not a diffusers pipeline (no model_index.json); "
                "pass the folder that `save_pretrained` wrote")
        index = _read_index(expanded, name)
        cls = index.get("_class_name")
        return ModelSource(name, "local", family_of(cls, name), os.path.abspath(expanded),
                           cls)
    if _HUB_ID.match(name):
        snapshot = _cached_snapshot(name)
        if snapshot is not None:
            cls = _read_index(snapshot, name).get("_class_name")
            return ModelSource(name, "hub", family_of(cls, name), snapshot, cls)
        raise ModelNotFoundError(
            f"model {name!r} is not in the local Hugging Face cache and diffbench never "
            f"downloads; fetch it first with `hf download {name}`, or pass a local "
            "diffusers folder")
    known = ", ".join(list_builtins())
    raise ModelNotFoundError(
        f"unknown model {name!r}: not a built-in ({known}), not a local folder, not a hub id "
        "(owner/name)")
