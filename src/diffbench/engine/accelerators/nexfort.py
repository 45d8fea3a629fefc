"""``nexfort``: OneDiff's torch-based compiler through ``onediffx.compile_pipe``.

nexfort pins an old torch (<= 2.5.1) and its wheels carry the torch they were built for in the
version label (``+torch241cu121``); available() compares that with the installed torch without
importing nexfort. compiler_config is passed to nexfort unchanged (as the seed's script); the
default is the seed's ``{"mode": "max-optimize:max-autotune:low-precision",
"memory_format": "channels_last"}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from diffbench.engine.accelerators.base import Accelerator
from diffbench.engine.accelerators.onediff import ISOLATION_HINT, backend_available, compile_pipe
from diffbench.engine.errors import ConfigError
from diffbench.engine.events import LogMessage

if TYPE_CHECKING:  # pragma: no cover
    from diffbench.engine.accelerators.base import AcceleratorState
    from diffbench.engine.config import RunConfig
    from diffbench.engine.events import EventCallback
    from diffbench.engine.families import DenoiserSpec

#: OneDiff's benchmark default for nexfort (seed report; onediff/benchmarks/text_to_image.py).
DEFAULT_NEXFORT_CONFIG = {"mode": "max-optimize:max-autotune:low-precision",
                          "memory_format": "channels_last"}


class Nexfort(Accelerator):
    """``--compiler nexfort``: onediffx.compile_pipe(pipe, backend="nexfort", options=...)."""

    name = "nexfort"
    description = "OneDiff nexfort (needs torch <= 2.5.1 and onediffx)"
    lossless = False  # its default mode includes low-precision
    config_keys = ("mode", "memory_format", "dynamic", "options", "fullgraph")

    def available(self, device: str = "cuda") -> tuple[bool, str]:
        return backend_available("nexfort", device, (
            f"pip install nexfort onediffx; nexfort needs torch <= 2.5.1, so "
            f"{ISOLATION_HINT.removeprefix('or ')}"))

    def validate(self, cfg: "RunConfig") -> list[str]:
        config = cfg.compiler_config
        mode = config.get("mode")
        if mode is not None and not isinstance(mode, str):
            raise ConfigError(f"compiler_config mode must be a string like "
                              f"'max-optimize:max-autotune:low-precision', got {mode!r}")
        options = config.get("options")
        if options is not None and not isinstance(options, dict):
            raise ConfigError("compiler_config options must be a JSON object of nexfort "
                              "inductor options")
        for key in ("dynamic", "fullgraph"):
            if key in config and not isinstance(config[key], bool):
                raise ConfigError(f"compiler_config {key} must be true or false, "
                                  f"got {config[key]!r}")
        return [f"ignored: compiler_config key {key!r} is not a nexfort option"
                for key in config if key not in self.config_keys]

    def apply(self, pipe: Any, spec: "DenoiserSpec", cfg: "RunConfig", emit: "EventCallback",
              state: "AcceleratorState | None" = None) -> Any:
        options = dict(cfg.compiler_config) or dict(DEFAULT_NEXFORT_CONFIG)
        emit(LogMessage("info", f"onediffx compile_pipe backend=nexfort options={options}"))
        return compile_pipe(pipe, "nexfort", options)

