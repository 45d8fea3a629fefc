"""Shared plumbing of OneDiff's backends (``nexfort``, ``oneflow``) through onediffx.

Both go through ``onediffx.compile_pipe`` as OneDiff's benchmark script does. Availability is
read from installed distribution metadata (never by importing: a backend built for another
torch can abort the interpreter), so the reason names exactly what is missing or mismatched.
"""

from __future__ import annotations

import inspect
from typing import Any

from diffbench.engine.accelerators import versions
from diffbench.engine.errors import AcceleratorUnavailableError

#: Run OneDiff in its own environment and point diffbench at that interpreter.
ISOLATION_HINT = ("or run it in a separate environment that has it and pass that "
                  "interpreter with --python")


def onediffx_missing() -> str:
    """A reason string when onediffx is not installed, else ""."""
    if versions.dist_version("onediffx") is None:
        return f"onediffx is not installed (pip install onediffx, {ISOLATION_HINT})"
    return ""


def torch_mismatch(dist: str) -> str:
    """"" when ``dist`` fits the installed torch, else the reason ("nexfort 0.1.dev264 was built
    against torch 2.4.1 while this is torch 2.13.0")."""
    dist_version = versions.dist_version(dist) or "?"
    torch_version = versions.torch_version()
    if torch_version is None:
        return "torch is not installed"
    built = versions.built_for_torch(dist_version)
    if built and versions.version_tuple(built)[:2] != versions.version_tuple(torch_version)[:2]:
        return (f"{dist} {dist_version} was built against torch {built} while this is torch "
                f"{torch_version}; install the {dist} build for torch {torch_version} or the "
                f"torch it was built for, {ISOLATION_HINT}")
    pin = versions.torch_required_by(dist)
    if pin and not _satisfies(torch_version, pin):
        return (f"{dist} {dist_version} requires {pin} while this is torch {torch_version}; "
                f"{ISOLATION_HINT}")
    return ""


def _satisfies(torch_version: str, requirement: str) -> bool:
    """Whether torch_version meets a requirement like "torch==2.4.1" or "torch<=2.5.1"."""
    try:
        from packaging.requirements import Requirement
        from packaging.version import Version

        req = Requirement(requirement)
        return req.specifier.contains(Version(torch_version.split("+")[0]), prereleases=True)
    except Exception:  # no packaging or an odd pin: do not claim a mismatch we cannot read
        return True


def compile_pipe(pipe: Any, backend: str, options: Any = None) -> Any:
    """Call ``onediffx.compile_pipe`` with the seed's arguments across onediffx versions.

    Raises:
        AcceleratorUnavailableError: onediffx (or the backend) fails to import, one line.
    """
    try:
        import onediffx
    except Exception as exc:  # ImportError, or a backend built for another torch
        raise AcceleratorUnavailableError(
            f"onediffx failed to import: {type(exc).__name__}: {str(exc).splitlines()[0]}"
            if str(exc) else f"onediffx failed to import: {type(exc).__name__}") from None
    params = inspect.signature(onediffx.compile_pipe).parameters
    kwargs: dict[str, Any] = {}
    if "backend" in params:
        kwargs["backend"] = backend
    if options is not None and "options" in params:
        compile_options = getattr(onediffx, "CompileOptions", None)
        if compile_options is not None and backend == "nexfort":
            # onediffx 1.x: options is a CompileOptions whose .nexfort holds the dict.
            wrapped = compile_options()
            wrapped.nexfort = options
            kwargs["options"] = wrapped
        else:
            kwargs["options"] = options
    if backend == "nexfort" and "fuse_qkv_projections" in params:
        kwargs["fuse_qkv_projections"] = True
    return onediffx.compile_pipe(pipe, **kwargs)


def backend_available(dist: str, device: str, install_hint: str) -> tuple[bool, str]:
    """(ok, reason) for a OneDiff backend distribution (``nexfort`` or ``oneflow``) on
    ``device``, read from installed metadata only: CUDA device, the package installed, built
    for this torch, and onediffx present. ``install_hint`` completes "DIST is not installed (…)".
    """
    if not str(device).startswith("cuda"):
        return False, f"{dist} runs on CUDA GPUs only"
    if versions.dist_version(dist) is None:
        return False, f"{dist} is not installed ({install_hint})"
    problem = torch_mismatch(dist) or onediffx_missing()
    return not problem, problem
