"""ControlNet for ``--controlnet``: where it comes from, how it is built, its control image.

Sources (:func:`resolve_controlnet`, cheap, no torch):

- ``random``: a ControlNet built from the model's own UNet config (diffusers'
  ``ControlNetModel.from_unet``, so SDXL's text-time addition embedding matches) with random
  weights drawn like the synthetic models' (seeded pool, nothing left zero — the ControlNet's
  zero-initialised output convolutions get weights too, so the control image changes the
  result). Works for tiny-*, synthetic-* and real models alike.
- a local diffusers ControlNet folder (``config.json`` written by ``save_pretrained``);
- a hub id "owner/name" already in the local Hugging Face cache (never downloaded).

Control image (:func:`control_image_for`): ``--control-image`` resized to the run size, else
derived from the input image (edges, PIL's FIND_EDGES — a Canny-like map as in OneDiff's
ControlNet example), else for text-to-image a deterministic synthetic pattern at the run size.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Optional

from diffbench.engine.errors import ConfigError, ModelNotFoundError

#: ``--controlnet`` value that builds a random-weight ControlNet from the model's UNet config.
RANDOM = "random"
#: Seed of the random ControlNet's weight pool (differs from the models' seed 0 so the
#: ControlNet is not a copy of the UNet's first blocks).
CONTROLNET_WEIGHT_SEED = 1
#: Conditioning-embedding channels of the random ControlNet for small UNets (first block
#: <= 64 channels): four stages = three stride-2 convs = the VAE's 8x downsampling.
SMALL_CONDITIONING_CHANNELS = (4, 8, 8, 16)


@dataclass(frozen=True)
class ControlNetSource:
    """A resolved ControlNet: ``kind`` "random" | "local" | "hub"; ``path`` the folder holding
    config.json (None for random)."""

    name: str
    kind: str
    path: Optional[str] = None


def _read_config(folder: str, name: str) -> dict:
    path = os.path.join(folder, "config.json")
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelNotFoundError(f"controlnet {name!r}: cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or "ControlNet" not in str(data.get("_class_name", "")):
        raise ModelNotFoundError(f"controlnet {name!r}: {path} is not a diffusers ControlNet "
                                 f"config (_class_name {data.get('_class_name')!r})"
                                 if isinstance(data, dict) else
                                 f"controlnet {name!r}: {path} is not a JSON object")
    return data


def resolve_controlnet(name: str) -> ControlNetSource:
    """Resolve ``--controlnet`` without loading anything (no torch, no network).

    Raises:
        ModelNotFoundError: a folder without a ControlNet config.json, a hub id not in the
            local cache (the message names the download command), or an unknown name.
    """
    if name == RANDOM:
        return ControlNetSource(name, "random")
    expanded = os.path.expanduser(name)
    if os.path.isdir(expanded):
        if not os.path.isfile(os.path.join(expanded, "config.json")):
            raise ModelNotFoundError(f"controlnet {name!r} is a folder without config.json; "
                                     "pass the folder that ControlNetModel.save_pretrained "
                                     "wrote")
        _read_config(expanded, name)
        return ControlNetSource(name, "local", os.path.abspath(expanded))
    from diffbench.engine.models.sources import _HUB_ID

    if _HUB_ID.match(name):
        snapshot = _cached_snapshot(name)
        if snapshot is not None:
            _read_config(snapshot, name)
            return ControlNetSource(name, "hub", snapshot)
        raise ModelNotFoundError(
            f"controlnet {name!r} is not in the local Hugging Face cache and diffbench never "
            f"downloads; fetch it first with `hf download {name}`, or pass a local "
            "ControlNet folder")
    raise ModelNotFoundError(f"unknown controlnet {name!r}: use {RANDOM!r} (built from the "
                             "model's UNet, random weights), a local diffusers ControlNet "
                             "folder, or a cached hub id (owner/name)")


def _cached_snapshot(repo_id: str) -> Optional[str]:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # noqa: BLE001 - a malformed id or cache: treat as not cached
        return None
    if isinstance(found, str) and os.path.isfile(found):
        return os.path.dirname(found)
    return None


def build_random(unet: Any, device: Any, dtype: Any) -> Any:
    """A ControlNetModel from ``unet``'s config with seeded random weights, on ``device`` in
    ``dtype`` (a torch.dtype). Built on the meta device and filled from a random pool
    (diffbench.engine.models.synthetic.materialise), so a full-size SDXL ControlNet takes seconds."""
    from diffusers import ControlNetModel

    from diffbench.engine.models.synthetic import RandomPool, materialise

    first = int(unet.config.block_out_channels[0])
    channels = SMALL_CONDITIONING_CHANNELS if first <= 64 else (16, 32, 96, 256)

    def factory() -> Any:
        return ControlNetModel.from_unet(unet, load_weights_from_unet=False,
                                         conditioning_embedding_out_channels=channels)

    return materialise(factory, device, dtype, RandomPool(device, seed=CONTROLNET_WEIGHT_SEED))


def load_controlnet(cfg: Any, unet: Any, device: Any, dtype: Any) -> Any:
    """The ControlNetModel for ``cfg.controlnet`` on ``device`` in ``dtype``.

    Local folders and cached hub ids load with ``from_pretrained(local_files_only=True)``
    (safetensors only unless ``cfg.trust_remote_code``).

    Raises:
        ModelNotFoundError: as :func:`resolve_controlnet`.
        ConfigError: the weights cannot load, or the ControlNet's cross-attention width does
            not match the UNet's (a ControlNet for another model family).
    """
    source = resolve_controlnet(cfg.controlnet)
    if source.kind == RANDOM:
        return build_random(unet, device, dtype)
    from diffusers import ControlNetModel

    from diffbench.engine.models.loading import dtype_kwargs

    try:
        controlnet = ControlNetModel.from_pretrained(
            source.path, **dtype_kwargs(dtype), local_files_only=True,
            use_safetensors=not cfg.trust_remote_code)
    except (OSError, ValueError, EnvironmentError) as exc:
        raise ConfigError(f"cannot load controlnet {cfg.controlnet}: "
                          f"{str(exc).strip().splitlines()[0]}") from None
    mine = controlnet.config.cross_attention_dim
    theirs = unet.config.cross_attention_dim
    if mine != theirs:
        raise ConfigError(f"controlnet {cfg.controlnet} does not fit this model: its "
                          f"cross_attention_dim is {mine}, the UNet's is {theirs} (a ControlNet "
                          "for another model family?)")
    return controlnet.to(device)


# ---------------------------------------------------------------------- control image
def edges_of(image: Any) -> Any:
    """An edge map of a PIL image (grayscale FIND_EDGES, back to RGB); same size."""
    from PIL import ImageFilter, ImageOps

    edges = image.convert("L").filter(ImageFilter.FIND_EDGES)
    return ImageOps.autocontrast(edges).convert("RGB")


def synthetic_pattern(width: int, height: int) -> Any:
    """A deterministic line drawing (white on black, RGB, width x height pixels): concentric
    circles and a diagonal cross — the kind of sparse edge map a ControlNet expects."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), "black")
    draw = ImageDraw.Draw(image)
    line = max(1, min(width, height) // 64)
    cx, cy = width / 2, height / 2
    for fraction in (0.15, 0.3, 0.45):
        r = fraction * min(width, height)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline="white", width=line)
    draw.line((0, 0, width - 1, height - 1), fill="white", width=line)
    draw.line((0, height - 1, width - 1, 0), fill="white", width=line)
    return image


def control_image_for(cfg: Any, width: int, height: int,
                      input_image: Any = None) -> tuple[Any, str]:
    """(control image as RGB PIL at width x height, a one-line description of its origin).

    ``cfg.control_image`` when given; else the edges of ``input_image`` (a PIL image already
    at the run size); else :func:`synthetic_pattern`.

    Raises:
        ConfigError: the control image file cannot be read.
    """
    from PIL import Image

    if cfg.control_image:
        from diffbench.engine.input_image import open_rgb

        with open_rgb(cfg.control_image, "control_image") as image:
            picture = image.resize((width, height), Image.LANCZOS)
        return picture, f"control image: {cfg.control_image} ({width}x{height})"
    if input_image is not None:
        return (edges_of(input_image),
                f"control image: edges of the input image (PIL FIND_EDGES, {width}x{height}); "
                "pass --control-image to use your own")
    return (synthetic_pattern(width, height),
            f"control image: a synthetic line pattern ({width}x{height}); pass "
            "--control-image to use your own")
