"""The dashboard's history, TOML export and profiles.

Profiles are read with diffbench.engine.profiles (it imports no torch): one loader for the
CLI and the dashboard.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Optional

from diffbench.engine.config import RunConfig
from diffbench.engine.result import RunResult


def open_history() -> Any:
    """diffbench.engine.history.History(): the SQLite history of the data folder
    (``$DIFFBENCH_HOME``), which persists across starts.

    Raises:
        HistoryError: a corrupt or newer database (one line, with the way out).
    """
    from diffbench.engine.history import History

    store = History()
    store.persistent = True  # the dashboard says when runs are kept in memory only
    return store


def export_toml(results: list[RunResult], path: Path) -> Path:
    """Write ``results`` as one TOML file (diffbench.engine.session.Session.export); returns
    the path.

    Raises:
        OSError / DiffbenchError: the file cannot be written.
    """
    from diffbench.engine.session import Session

    Session.export(list(results), path)
    return Path(path)


def default_export_path(results: list[RunResult], folder: Optional[Path] = None) -> Path:
    """``diffbench-<run_id>.toml`` for one run, ``diffbench-<N>-runs-<time>.toml`` for more."""
    folder = Path(folder or os.getcwd())
    if len(results) == 1:
        return folder / f"diffbench-{results[0].run_id}.toml"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return folder / f"diffbench-{len(results)}-runs-{stamp}.toml"


def list_profiles() -> list[str]:
    """Names of the shipped profiles: the ``*.toml`` file names of the profiles folder.

    Only names are read (diffbench.engine.profiles.list_profiles parses and validates every
    file, which the first screen should not wait for); :func:`load_profile` validates the
    profile the user picks and reports a broken one in one line.
    """
    from diffbench.engine.profiles import profiles_dir

    folder = Path(profiles_dir())
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


def load_profile(name_or_path: str) -> dict[str, Any]:
    """RunConfig fields of a profile (shipped name or .toml path) as a dict
    (diffbench.engine.profiles.load_profile).

    Raises:
        ConfigError: unknown profile, unreadable TOML, unknown key or wrong type (one line).
    """
    from diffbench.engine.profiles import load_profile as load

    return dict(load(name_or_path).settings)


def read_profile_file(path: Path) -> dict[str, Any]:
    """A profile TOML's settings: flat keys, or the ``[config]`` / ``[run]`` table of a file
    that has one (an export). Read with diffbench.engine.profiles' TOML reader; checked by
    the form and RunConfig when loaded, as typed settings are.

    Raises:
        ConfigError: missing file or invalid TOML (one line).
    """
    from diffbench.engine import profiles
    from diffbench.engine.errors import ConfigError

    try:
        with open(path, "rb") as handle:
            data = profiles.tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"profile not found: {path}") from None
    except (OSError, UnicodeDecodeError, profiles.tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read profile {path}: {exc}") from None
    for table in ("config", "run"):
        if isinstance(data.get(table), dict) and "model" in data[table]:
            data = data[table]
            break
    return {k: v for k, v in data.items() if not isinstance(v, dict) or k in (
        "extra_call_kwargs", "compiler_config", "quantize_config")}


def save_profile(cfg: RunConfig, path: Path) -> Path:
    """Write ``cfg``'s non-default settings as a profile TOML (flat keys) to ``path``, in the
    form ``diffbench run --profile PATH`` and the dashboard load again.

    Only keys a profile may hold are written (diffbench.engine.catalog.profile_keys): not
    ``profile``, the profile the form started from, whose settings are already in ``cfg``.

    Raises:
        OSError: the file cannot be written.
    """
    import tomli_w

    from diffbench.engine import catalog

    allowed = set(catalog.profile_keys())
    defaults = RunConfig().to_dict()
    data = {k: v for k, v in cfg.to_dict().items()
            if k in allowed and v is not None and (v != defaults.get(k) or k == "model")}
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(tomli_w.dumps(data).encode())
    os.replace(tmp, path)
    return path
