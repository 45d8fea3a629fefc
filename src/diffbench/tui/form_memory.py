"""The settings form as last used, kept across dashboard starts.

Stored as JSON (the form's RunConfig keyword arguments, as SettingsForm.values() gives them:
no "task" when the form says auto) in
``$DIFFBENCH_HOME/last_settings.json`` when DIFFBENCH_HOME is set, else in the platformdirs
user data dir beside the history database. Written atomically (diffbench.engine.atomic: temporary file,
fsync, rename), so a crash mid-write leaves the previous settings, never half a file. Reading
is a single small file and json (no torch, no TOML parser), so start-up stays fast.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

FILE_NAME = "last_settings.json"


def path() -> Path:
    """Where the last settings live (the folder may not exist yet)."""
    home = os.environ.get("DIFFBENCH_HOME")
    if home:
        return Path(home).expanduser() / FILE_NAME
    import platformdirs

    return Path(platformdirs.user_data_dir("diffbench", appauthor=False)) / FILE_NAME


def load() -> Optional[dict[str, Any]]:
    """The saved RunConfig fields, or None when there are none or the file is unreadable
    (a damaged file must not keep the dashboard from starting: the form keeps its defaults).
    """
    try:
        data = json.loads(path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    # a profile choice would re-load the profile over the remembered values
    data.pop("profile", None)
    data.setdefault("task", None)  # not saved when the form said "auto"; None keeps it auto
    return data


def save(config: dict[str, Any]) -> bool:
    """Write ``config`` (RunConfig keyword arguments) for the next start. Returns False, without raising,
    when it cannot be written (read-only home, full disk): losing it is not worth an error."""
    from diffbench.engine import atomic

    target = path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(target, json.dumps(config, indent=1, sort_keys=True, default=str))
    except Exception:  # OSError, ConfigError (unwritable folder), TypeError: see docstring
        return False
    return True
