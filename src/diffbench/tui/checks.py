"""Checks the form needs beyond RunConfig's own validation, run in worker threads.

They touch the file system, NVML and the backends' ``available()`` probes (cheap, no torch
import), but never on the UI thread: a slow disk or driver must not freeze typing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional


def resolve_device(requested: str) -> str:
    """"auto" -> "cuda" when NVML sees a GPU, else "cpu" (diffbench.engine.environment.detect_device)."""
    try:
        from diffbench.engine.environment import detect_device
    except ImportError:
        return "cpu" if requested == "auto" else requested
    return detect_device(requested)


def backend_availability(device: str) -> dict[str, tuple[bool, str]]:
    """compiler name -> (can run on ``device``, reason when not), from diffbench.engine.accelerators."""
    from diffbench.engine import accelerators

    out = {}
    for name, backend in accelerators.all_backends().items():
        try:
            out[name] = backend.available(device)
        except Exception as exc:  # a probe must never take the form down
            out[name] = (False, f"availability check failed: {exc}")
    return out


def quantize_availability(device: str) -> dict[str, tuple[bool, str]]:
    """quantize mode -> (can run on ``device``, reason when not); {} when unknown.

    fp8 on CUDA is not probed here: telling needs torch (compute capability), which the
    dashboard process does not import; the run itself reports it.
    """
    try:
        from diffbench.engine.accelerators import quantize
        from diffbench.engine.config import QUANTIZE_MODES
    except ImportError:
        return {}
    out = {}
    for mode in QUANTIZE_MODES:
        if mode.startswith("fp8") and device.startswith("cuda"):
            continue
        try:
            out[mode] = quantize.available(mode, device)
        except Exception as exc:
            out[mode] = (False, f"availability check failed: {exc}")
    return out


def model_problem(name: str) -> Optional[str]:
    """None when ``name`` resolves (built-in, local folder, cached hub id), else why not."""
    from diffbench.engine.errors import DiffbenchError
    from diffbench.engine.models import resolve_source

    try:
        resolve_source(name)
    except DiffbenchError as exc:
        return str(exc)
    return None


def cached_hub_models() -> list[str]:
    """Hub ids of diffusers pipelines in the local Hugging Face cache ("owner/name").

    The cache folder follows huggingface_hub's rules (HF_HUB_CACHE, else HF_HOME/hub, else
    ~/.cache/huggingface/hub); a repo counts when a snapshot holds model_index.json.
    """
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.join(Path.home(), ".cache", "huggingface"), "hub")
    found = []
    try:
        entries = sorted(Path(cache).glob("models--*"))
    except OSError:
        return []
    for entry in entries:
        snapshots = entry / "snapshots"
        try:
            if any((snap / "model_index.json").is_file() for snap in snapshots.iterdir()):
                found.append(entry.name[len("models--"):].replace("--", "/"))
        except OSError:
            continue
    return found
