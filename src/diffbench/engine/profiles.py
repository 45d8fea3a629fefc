"""Profiles: TOML presets of RunConfig settings (profiles/*.toml ship inside the package).

A profile is a flat TOML table whose keys are RunConfig field names, plus an optional
``description``. ``--profile NAME`` loads profiles/NAME.toml from the package;
``--profile PATH`` loads a file. Flags given on the command line override the profile.
TOML is read with tomllib (Python >= 3.11) or tomli.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Optional

from diffbench.engine import catalog
from diffbench.engine.config import RunConfig
from diffbench.engine.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Keys a profile may hold besides RunConfig fields.
META_KEYS = ("description",)


@dataclass(frozen=True)
class Profile:
    """A loaded profile: ``name`` (file stem), ``path``, ``description`` and ``settings``
    (RunConfig keyword arguments, validated for key names and types, not yet merged)."""

    name: str
    path: str
    description: str
    settings: dict

    @property
    def model(self) -> str:
        """The profile's model (name, folder or hub id); RunConfig's default when unset."""
        return str(self.settings.get("model", RunConfig.model))


def profiles_dir() -> str:
    """The folder of the shipped profiles (inside the installed package)."""
    import diffbench.profiles

    return os.path.dirname(os.path.abspath(diffbench.profiles.__file__))


def validate_settings(data: dict, source: str) -> dict:
    """Check a profile table's keys and value types; return the RunConfig settings.

    Raises:
        ConfigError: "<source>: unknown key 'x'" or "<source>: key 'steps' must be int, got
            str".
    """
    allowed = catalog.profile_keys()
    settings: dict[str, Any] = {}
    for key, value in data.items():
        if key in META_KEYS:
            if not isinstance(value, str):
                raise ConfigError(f"{source}: key {key!r} must be a string")
            continue
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise ConfigError(f"{source}: unknown key {key!r}; known keys: {known}")
        expected = catalog.BY_NAME[key].profile_types
        if isinstance(value, bool) and bool not in expected:
            ok = False
        else:
            ok = isinstance(value, expected)
        if not ok:
            names = "/".join(t.__name__ for t in expected)
            raise ConfigError(f"{source}: key {key!r} must be {names}, "
                              f"got {type(value).__name__} {value!r}", field=key)
        if isinstance(value, str) and catalog.BY_NAME[key].auto_word:
            value = catalog.coerce(key, value)  # "auto" -> None; other text: one-line error
        settings[key] = value
    return settings


def load_profile(name_or_path: str) -> Profile:
    """Load a shipped profile by name, or a TOML file by path.

    Raises:
        ConfigError: not found (lists the shipped names), not valid TOML, unknown keys or
            wrong types — naming the file and key.
    """
    path = name_or_path
    if not (os.path.sep in name_or_path or name_or_path.endswith(".toml")):
        path = os.path.join(profiles_dir(), f"{name_or_path}.toml")
        if not os.path.isfile(path):
            names = ", ".join(p.name for p in list_profiles())
            raise ConfigError(f"unknown profile {name_or_path!r}; shipped profiles: {names} "
                              "(or pass a path to a .toml file)")
    if os.path.isdir(path):
        raise ConfigError(f"profile {path} is a folder, not a profile file (pass a .toml "
                          "file or a shipped profile name)")
    if not os.path.isfile(path):
        raise ConfigError(f"profile file not found: {path}")
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (TOML must be UTF-8)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    settings = validate_settings(data, path)
    stem = os.path.splitext(os.path.basename(path))[0]
    return Profile(stem, os.path.abspath(path), str(data.get("description", "")), settings)


def list_profiles() -> list[Profile]:
    """The shipped profiles, sorted by name. A broken file is skipped, never raised."""
    out = []
    folder = profiles_dir()
    for entry in sorted(os.listdir(folder)):
        if entry.endswith(".toml"):
            try:
                out.append(load_profile(os.path.join(folder, entry)))
            except ConfigError:
                continue
    return out


def build_config(profile: Optional[str] = None, overrides: Optional[dict] = None) -> RunConfig:
    """RunConfig from a profile (optional) with ``overrides`` (only keys the user gave) on top;
    steps neither gives default to the model card's (:func:`model_steps`), else the catalog's.

    Raises:
        ConfigError: a bad profile or an invalid merged setting.
    """
    settings: dict[str, Any] = {}
    if profile:
        loaded = load_profile(profile)
        settings.update(loaded.settings)
        settings["profile"] = loaded.name
    settings.update(overrides or {})
    if "input_image" in (overrides or {}) and "task" not in (overrides or {}):
        settings.pop("task", None)  # a new input image re-infers the task (t2i -> i2i)
    if "steps" not in settings:
        steps = model_steps(settings.get("model", catalog.BY_NAME["model"].default))
        if steps is not None:
            settings["steps"] = steps
    return RunConfig.from_dict(settings)


def model_steps(model: str) -> Optional[int]:
    """The model card's denoising steps for ``model`` (FLUX.1-dev 28, schnell 4, SD3.5 large
    28, medium 40; from its family and denoiser config, without loading), or None: the
    catalog's default applies (UNet families, models that do not resolve)."""
    from diffbench.engine.errors import DiffbenchError
    from diffbench.engine.models.sources import resolve_source

    try:
        return resolve_source(model).recommended().get("steps")
    except DiffbenchError:
        return None  # preflight reports the model
