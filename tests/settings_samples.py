"""A valid RunConfig with every setting away from its default, derived from the catalog.

Values come from each setting's declaration (kind, range, choices, widget options), so a
setting added to the catalog is covered with no change here; only settings whose value must
point at something real (a model, files, a shipped profile) are named.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from diffbench.engine import catalog
from diffbench.engine.config import RunConfig


def _candidates(setting: catalog.Setting) -> list[Any]:
    if setting.kind is bool:
        return [not setting.default]
    if setting.kind is int:
        low = setting.low or 0
        return [low + 8, low + 1, low + 2]
    if setting.kind is float:
        return [7.5, 0.5, 0.25]
    if setting.kind is dict:
        return [{f"{setting.name}_key": 1}]
    options = [value for _, value in setting.widget.options] or list(setting.choices)
    return list(reversed(options)) + [f"{setting.name}-value"]


def every_setting_changed(tmp_path: Path) -> dict[str, Any]:
    """RunConfig keyword arguments, each differing from the catalog default; valid together.

    ``tmp_path``: where the input/control images and the output folder are made.
    """
    from PIL import Image

    image = tmp_path / "input.png"
    Image.new("RGB", (64, 64), (120, 30, 200)).save(image)
    (tmp_path / "out").mkdir(exist_ok=True)
    real = {  # values that must name something that exists
        "model": "tiny-sdxl", "profile": "tiny-sdxl", "input_image": str(image),
        "control_image": str(image), "output_image": str(tmp_path / "out" / "img.png"),
        "python": sys.executable, "compile_cache_dir": str(tmp_path / "cache"),
        "controlnet": "random", "device": "cuda:1",  # a device the form's list lacks
        "prompt": "  a red cube, spaces kept  ",
    }
    values: dict[str, Any] = {}
    for setting in catalog.SETTINGS:
        if setting.name in real:
            values[setting.name] = real[setting.name]
            continue
        for candidate in _candidates(setting):
            if candidate == setting.default or candidate == setting.widget.none_label:
                continue
            try:
                setting.validate(candidate)
            except Exception:
                continue
            values[setting.name] = candidate
            break
    values["task"] = "i2i"  # the input image makes it i2i; stated to be explicit
    values["height"] = values["width"] + 24  # unequal: a swapped width/height shows
    RunConfig(**values)  # raises when the sample is not valid as a whole
    return values
