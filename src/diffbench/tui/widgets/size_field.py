"""The form's size field: presets and the text a user types ("512", "768x512", "native")
as (width, height) in pixels. Pure functions: no widget, no engine import beyond errors."""

from __future__ import annotations

from typing import Optional

from diffbench.engine.errors import ConfigError

__all__ = ["SIZE_PRESETS", "format_size", "parse_size"]

#: Resolution presets (width x height); "native" = the model's own size.
SIZE_PRESETS = ("native", "64x64", "128x128", "256x256", "512x512", "768x768", "1024x1024",
                "832x1216", "1216x832", "custom")


def parse_size(text: str) -> tuple[Optional[int], Optional[int]]:
    """``"native"``/``""`` -> (None, None); ``"512"`` -> (512, 512); ``"768x512"`` -> (768, 512);
    ``"768xnative"`` -> (768, None) (one side given, as ``--width 768`` alone).

    Returns (width, height) in pixels. Raises ConfigError (``.field`` "size") otherwise.
    """
    text = text.strip().lower().replace(" ", "").replace("*", "x")
    if text in ("", "native", "auto"):
        return None, None
    parts = text.split("x")
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not all(p.isdigit() or p == "native" for p in parts) \
            or parts == ["native", "native"]:
        raise ConfigError(f"size must be WIDTHxHEIGHT like 512x512, or native; got {text!r}",
                          field="size")
    width, height = (None if p == "native" else int(p) for p in parts)
    return width, height


def format_size(width: Optional[int], height: Optional[int]) -> str:
    """Inverse of :func:`parse_size`."""
    if width is None and height is None:
        return "native"
    return f"{'native' if width is None else width}x{'native' if height is None else height}"
