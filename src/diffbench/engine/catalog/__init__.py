"""The catalog: every run setting declared once (catalog/settings.py), and what is derived
from it.

RunConfig's fields, defaults and checks (diffbench.engine.config), the flags of
``diffbench run`` and the run-setting flags of sweep/throughput/check-params (diffbench.cli),
the keys a profile may hold (diffbench.engine.profiles), what a sweep may vary and how its
text values are read (diffbench.engine.sweep), the baseline key (diffbench.engine.quality)
and the dashboard's settings form all read the catalog, so adding a setting is one entry in
catalog/settings.py (and the code that uses its value). Cheap to import: no torch, no
textual.
"""

from __future__ import annotations

from typing import Any, Iterator

from diffbench.engine.catalog.setting import Cli, Setting, Widget, parse_json_object
from diffbench.engine.catalog.settings import SETTINGS
from diffbench.engine.errors import ConfigError

#: name -> Setting, in RunConfig's field order.
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}

__all__ = ["BY_NAME", "SETTINGS", "Cli", "Setting", "Widget", "coerce", "get",
           "cli_settings", "defaults", "form_settings", "image_keys", "parse_json_object",
           "profile_keys", "sweepable_keys"]


def get(name: str) -> Setting:
    """The setting called ``name``.

    Raises:
        ConfigError: not a run setting (``.field`` None).
    """
    try:
        return BY_NAME[name]
    except KeyError:
        raise ConfigError(f"unknown setting {name!r}") from None


def coerce(name: str, value: Any, none_words: bool = True) -> Any:
    """The one conversion of a setting's value as given (text from a flag, ``--set``,
    ``--grid``, a form field; or already typed from TOML/JSON) to the setting's type.

    Text goes through :meth:`Setting.from_text`; any other value passes unchanged (RunConfig
    checks it).

    Raises:
        ConfigError: unknown setting, or text that does not parse (``.field`` = ``name``).
    """
    setting = get(name)
    if not isinstance(value, str):
        return value
    return setting.from_text(value, none_words=none_words)


def defaults() -> dict[str, Any]:
    """Every setting's declared default, in field order (dicts copied). Unlike
    ``RunConfig().to_dict()`` the task stays None: inferred when a RunConfig is built."""
    return {s.name: dict(s.default) if isinstance(s.default, dict) else s.default
            for s in SETTINGS}


def cli_settings() -> list[Setting]:
    """Settings with a flag, in ``--help`` order: by :attr:`Cli.rank` (plain ``--flag VALUE``
    flags, then switches and optional values, then --profile), field order within a rank."""
    return sorted((s for s in SETTINGS if s.cli is not None), key=lambda s: s.cli.rank)


def profile_keys() -> list[str]:
    """Setting names a profile TOML may hold."""
    return [s.name for s in SETTINGS if s.in_profiles]


def sweepable_keys() -> list[str]:
    """Setting names a sweep grid (or ``--set``) may vary."""
    return [s.name for s in SETTINGS if s.sweepable]


def image_keys() -> list[str]:
    """Settings that define the eager pipeline's image: a baseline must share all of them."""
    return [s.name for s in SETTINGS if s.affects_image]


def form_settings(group: str) -> Iterator[Setting]:
    """Settings shown in the form's ``group`` ("main" or "more"), in display order."""
    return iter(sorted((s for s in SETTINGS if s.widget.group == group),
                       key=lambda s: s.widget.order))
