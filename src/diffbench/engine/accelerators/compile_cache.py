"""Compile cache: one on-disk directory per profile, warmup reported as cold or warm.

Two layers, both torch's own:

- inductor's on-disk caches (FX graph cache, generated code, Triton kernels), pointed at
  ``<dir>/inductor`` through ``TORCHINDUCTOR_CACHE_DIR`` / ``TRITON_CACHE_DIR`` (read lazily
  by torch, so setting them before the first compile is enough);
- torch's portable cache artifacts (``torch.compiler.save_cache_artifacts`` /
  ``load_cache_artifacts``, torch >= 2.7): one file ``<dir>/artifacts.bin`` written after the
  warmup and hot-loaded before the next run's compile. Older torch skips this layer.

The directory is ``cfg.compile_cache_dir`` when given, else ``$DIFFBENCH_CACHE_DIR/compile/<key>``,
else ``<user cache dir>/diffbench/compile/<key>``, where key names the profile (if any), the
model and the compiler: a profile such as ``lossless-fast`` serves many models, and "warm"
should mean this model's pipeline was compiled by this backend before.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from diffbench.engine.events import LogMessage

if TYPE_CHECKING:  # pragma: no cover
    from diffbench.engine.config import RunConfig
    from diffbench.engine.events import EventCallback

ARTIFACTS_FILE = "artifacts.bin"


@dataclass
class CacheState:
    """Where the cache lives and whether the warmup started cold or warm."""

    directory: str
    state: str  # "cold" | "warm"
    artifacts_loaded: bool = False


def _safe(raw: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw).strip("_")


def cache_key(cfg: "RunConfig") -> str:
    """A file-name-safe key "[<profile>__]<model>__<compiler>" (a profile path gives its file
    stem; a model folder its name)."""
    parts = []
    if cfg.profile:
        profile = cfg.profile
        if os.sep in profile or profile.endswith(".toml"):
            profile = os.path.splitext(os.path.basename(profile.rstrip("/\\")))[0]
        parts.append(_safe(profile))
    # A local folder or file gives its name (a hub id "owner/name" is kept whole).
    model = cfg.model.rstrip("/\\")
    parts.append(_safe(os.path.basename(model) if os.path.exists(model) else model))
    parts.append(_safe(cfg.compiler))
    key = "__".join(part for part in parts if part) or "default"
    if len(key) > 120:  # file names stop at 255 bytes; keep it readable and unique
        import hashlib

        key = f"{key[:100]}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"
    return key


def cache_dir(cfg: "RunConfig") -> str:
    """The compile cache directory for ``cfg`` (not created here)."""
    if cfg.compile_cache_dir:
        return os.path.abspath(os.path.expanduser(cfg.compile_cache_dir))
    root = os.environ.get("DIFFBENCH_CACHE_DIR")
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("diffbench")
    return os.path.join(root, "compile", cache_key(cfg))


def _has_entries(path: str) -> bool:
    for _root, _dirs, files in os.walk(path):
        if files:
            return True
    return False


def prepare(cfg: "RunConfig", emit: "EventCallback") -> CacheState:
    """Point torch's compile caches at the profile's directory; load portable artifacts.

    Call before the first compile. Returns the CacheState (cold when the directory holds no
    cache entries yet). Never raises for cache problems: they become warnings.
    """
    directory = cache_dir(cfg)
    inductor_dir = os.path.join(directory, "inductor")
    try:
        os.makedirs(inductor_dir, exist_ok=True)
    except OSError as exc:
        emit(LogMessage("warning", f"compile cache disabled: cannot create {directory}: "
                                   f"{exc.strerror or exc}"))
        return CacheState(directory, "cold")
    warm = _has_entries(inductor_dir) or os.path.isfile(os.path.join(directory, ARTIFACTS_FILE))
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = inductor_dir
    os.environ["TRITON_CACHE_DIR"] = os.path.join(inductor_dir, "triton")
    state = CacheState(directory, "warm" if warm else "cold")
    path = os.path.join(directory, ARTIFACTS_FILE)
    import torch

    if not hasattr(getattr(torch, "compiler", None), "save_cache_artifacts"):
        emit(LogMessage("info", f"torch {torch.__version__} has no portable compile cache "
                                f"artifacts (torch >= 2.7); using inductor's on-disk cache only"))
    if os.path.isfile(path):
        loader = getattr(getattr(torch, "compiler", None), "load_cache_artifacts", None)
        if loader is not None:
            try:
                with open(path, "rb") as handle:
                    loader(handle.read())
                state.artifacts_loaded = True
            except Exception as exc:  # a stale or foreign file must not stop the run
                emit(LogMessage("warning", f"compile cache artifacts not loaded ({path}): "
                                           f"{type(exc).__name__}: {exc}"))
    emit(LogMessage("info", f"compile cache {state.state}: {directory}"))
    return state


def save(state: Optional[CacheState], emit: "EventCallback") -> Optional[str]:
    """Write torch's portable cache artifacts after the warmup (torch >= 2.7 only).

    Returns the file written, or None (nothing compiled, older torch, or an error — warned).
    """
    if state is None:
        return None
    import torch

    saver = getattr(getattr(torch, "compiler", None), "save_cache_artifacts", None)
    if saver is None:
        return None
    try:
        packed = saver()
    except Exception as exc:
        emit(LogMessage("warning", f"compile cache artifacts not saved: "
                                   f"{type(exc).__name__}: {exc}"))
        return None
    if not packed:
        return None
    data = packed[0]
    path = os.path.join(state.directory, ARTIFACTS_FILE)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        emit(LogMessage("warning", f"compile cache artifacts not saved to {path}: {exc}"))
        return None
    return path
