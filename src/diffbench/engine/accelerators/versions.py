"""Installed-package facts read from distribution metadata, without importing the packages.

Importing torch costs seconds and importing a backend built for another torch can crash the
interpreter, so availability checks read ``importlib.metadata`` instead.
"""

from __future__ import annotations

import re
import shutil
import sys
from importlib import metadata
from typing import Optional


def dist_version(name: str) -> Optional[str]:
    """The installed version string of distribution ``name``, or None if not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
    except Exception:  # a broken dist-info must read as "not installed", not crash
        return None


def version_tuple(version: str) -> tuple[int, ...]:
    """Leading numeric release of a version: "2.11.0+cu130" -> (2, 11, 0); "2.5" -> (2, 5)."""
    match = re.match(r"(\d+(?:\.\d+)*)", version or "")
    if not match:
        return ()
    return tuple(int(part) for part in match.group(1).split("."))


def torch_version() -> Optional[str]:
    """The installed torch version ("2.11.0+cu130"), or None."""
    return dist_version("torch")


def torch_at_least(*release: int) -> bool:
    """True when the installed torch is at least ``release`` (e.g. torch_at_least(2, 4))."""
    version = torch_version()
    return bool(version) and version_tuple(version)[:len(release)] >= release


def torch_required_by(dist: str) -> Optional[str]:
    """The torch requirement a distribution declares ("torch==2.4.1"), or None."""
    try:
        requires = metadata.requires(dist) or []
    except Exception:
        return None
    for req in requires:
        if ";" in req and "extra" in req.split(";", 1)[1]:
            continue
        if re.match(r"torch\b(?![-_])", req.strip()):
            return req.split(";", 1)[0].replace(" ", "")
    return None


def built_for_torch(version: str) -> Optional[str]:
    """The torch a wheel's local version label names: "0.1.dev264+torch241cu121" -> "2.4.1"."""
    match = re.search(r"\+torch(\d)(\d)(\d+)", version or "")
    if not match:
        return None
    return ".".join(match.groups())


def cxx_compiler() -> Optional[str]:
    """Path of the C++ compiler inductor's CPU backend would use, or None."""
    import os

    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def dynamo_supports_this_python() -> tuple[bool, str]:
    """Whether the installed torch's Dynamo supports this Python (3.12 needs torch >= 2.4,
    3.13 needs >= 2.6, per the torch release notes)."""
    needs = {(3, 12): (2, 4), (3, 13): (2, 6), (3, 14): (2, 10)}.get(sys.version_info[:2])
    if needs and not torch_at_least(*needs):
        return False, (f"torch {torch_version()} cannot compile on Python "
                       f"{sys.version_info[0]}.{sys.version_info[1]} (needs torch >= "
                       f"{needs[0]}.{needs[1]})")
    return True, ""
