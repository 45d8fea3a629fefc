"""What the model picker lists: the built-in models, the diffusers pipelines in the local
Hugging Face cache, and well-known pipelines that would need a download first.

No network and no torch: built-ins come from the catalog's list, the cache from
huggingface_hub's scan_cache_dir (the folder rules of HF_HUB_CACHE / HF_HOME; a repo counts
when a snapshot holds model_index.json), the known names from the shipped profiles and the
published models the synthetic-* built-ins reproduce.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple, Optional

from diffbench.engine.catalog.settings import BUILTIN_MODELS

#: Published pipelines offered for download: those the synthetic-* built-ins reproduce
#: (engine/models/synthetic*.py) and FLUX Kontext; the shipped profiles' models are added.
KNOWN_HUB_MODELS = (
    "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "stabilityai/stable-diffusion-xl-base-1.0",
    "timbrooks/instruct-pix2pix",
    "black-forest-labs/FLUX.1-dev",
    "black-forest-labs/FLUX.1-schnell",
    "black-forest-labs/FLUX.1-Kontext-dev",
    "stabilityai/stable-diffusion-3.5-large",
    "stabilityai/stable-diffusion-3.5-medium",
)


class ModelEntry(NamedTuple):
    """One line of the picker: ``group`` is "built-in", "cached" or "download"; ``note`` a
    short description (what a built-in is, a cached repo's size on disk in GiB, the command
    that fetches a missing one)."""

    name: str
    group: str
    note: str


def builtin_note(name: str) -> str:
    """What kind of built-in ``name`` is (from its prefix)."""
    if name.startswith("tiny-"):
        return "tiny random weights: runs on CPU in seconds, offline"
    if name.startswith("synthetic-"):
        return "real architecture, random weights: GPU timing without a download"
    return "built in"


def _cache_dir() -> Path:
    return Path(os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.join(Path.home(), ".cache", "huggingface"), "hub"))


def cached_pipelines(cache_dir: Optional[Path] = None) -> dict[str, Optional[float]]:
    """Hub id -> size on disk (GiB, None when unknown) of each diffusers pipeline in the local
    cache. Never raises: an unreadable cache is an empty one."""
    cache_dir = Path(cache_dir) if cache_dir is not None else _cache_dir()
    found: dict[str, Optional[float]] = {}
    try:
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir(cache_dir)
        for repo in info.repos:
            if repo.repo_type != "model":
                continue
            if any((rev.snapshot_path / "model_index.json").is_file() for rev in repo.revisions):
                found[repo.repo_id] = repo.size_on_disk / 1024 ** 3
        return dict(sorted(found.items()))
    except Exception:  # noqa: BLE001 - no cache folder, a corrupt one: fall back to folders
        pass
    try:
        for entry in sorted(cache_dir.glob("models--*")):
            snapshots = entry / "snapshots"
            if snapshots.is_dir() and any((s / "model_index.json").is_file()
                                          for s in snapshots.iterdir()):
                found[entry.name[len("models--"):].replace("--", "/")] = None
    except OSError:
        return {}
    return found


def profile_models() -> list[str]:
    """The hub ids the shipped profiles name (not the built-ins)."""
    from diffbench.engine.errors import DiffbenchError
    from diffbench.tui.bridge import store

    names = []
    for profile in store.list_profiles():
        try:
            model = store.load_profile(profile).get("model")
        except DiffbenchError:
            continue
        if isinstance(model, str) and "/" in model and model not in names:
            names.append(model)
    return names


def model_entries(cache_dir: Optional[Path] = None) -> list[ModelEntry]:
    """Every entry of the picker, in group order: built-in, cached, download."""
    entries = [ModelEntry(name, "built-in", builtin_note(name)) for name in BUILTIN_MODELS]
    cached = cached_pipelines(cache_dir)
    for name, gib in cached.items():
        entries.append(ModelEntry(name, "cached", f"{gib:.1f} GiB on disk" if gib is not None
                                  else "in the local cache"))
    for name in list(KNOWN_HUB_MODELS) + profile_models():
        if name not in cached and all(e.name != name for e in entries):
            entries.append(ModelEntry(name, "download", f"hf download {name}"))
    return entries
