"""Parsing and checking of ``compiler_config`` for the torch-based backends.

One parser serves ``compile``, ``compile-max-autotune`` and ``cudagraph`` so that a key means
the same everywhere. Keys (all optional):

- ``mode``: torch.compile mode — "default", "max-autotune", "max-autotune-no-cudagraphs",
  "reduce-overhead" (torch.compile's own names). A nexfort mode string such as
  "max-optimize:max-autotune:low-precision" (colon-separated, OneDiff's benchmark default) is
  ignored with a notice and the backend's default mode is used.
- ``fullgraph`` (bool, default false): fail on a graph break instead of splitting the graph.
- ``dynamic`` (bool or null, default null = torch decides): compile for dynamic shapes.
- ``memory_format``: "channels_last" or "contiguous_format" (default) for UNet and VAE weights.
- ``fuse_qkv`` (bool, default false; alias ``fuse_qkv_projections``): fuse the attention
  query/key/value projections into one matmul (diffusers' ``fuse_qkv_projections``).
- ``regional`` (bool, default false; alias ``compile_repeated_blocks``): compile only the
  repeated transformer blocks (diffusers' ``compile_repeated_blocks``) — one compile reused
  by every block, so warmup is seconds instead of minutes.
- ``regional_blocks`` (list of class names; implies ``regional``): the module classes to
  compile instead of the model's declared repeated blocks (diffusers' ``_repeated_blocks``,
  ``["BasicTransformerBlock"]`` for UNet2DConditionModel). ``["BasicTransformerBlock",
  "ResnetBlock2D"]`` also fuses the ResNet blocks' group norm, SiLU and residual adds: faster
  CUDA-graphed steps for a longer first call (the H200 figures: benchmarks/RESULTS.md, "UNet
  step alone"). Use it with ``"dynamic": false``: each distinct input shape of a
  class then compiles once, to static-shape kernels (by default Dynamo switches a block to
  dynamic shapes at its first recompile). ``null`` = unset.
- ``compile_vae`` (bool; default true, false with ``regional``: a fast start should not wait
  for the VAE decoder's compile, whose cost is in benchmarks/RESULTS.md, "Targets"): also
  compile the VAE decoder.
- ``backend`` (str, default "inductor"): the torch.compile backend ("eager", "aot_eager" are
  useful to test the plumbing without code generation).

Keys only nexfort understands (``options``) and unknown keys are ignored with a notice.
Wrong types raise :class:`diffbench.engine.errors.ConfigError` with a one-line message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from diffbench.engine.errors import ConfigError

#: torch.compile's modes (torch/__init__.py, torch.compile docstring).
TORCH_COMPILE_MODES = ("default", "max-autotune", "max-autotune-no-cudagraphs",
                       "reduce-overhead")
#: Keys that only OneDiff's nexfort backend reads.
NEXFORT_ONLY_KEYS = ("options",)
MEMORY_FORMATS = ("channels_last", "contiguous_format", "contiguous")
_ALIASES = {"fuse_qkv_projections": "fuse_qkv", "compile_repeated_blocks": "regional"}
_BOOL_KEYS = ("fullgraph", "fuse_qkv", "regional", "compile_vae")


@dataclass(frozen=True)
class CompileOptions:
    """Resolved torch.compile settings. ``mode`` None means torch.compile's default mode."""

    mode: Optional[str] = None
    fullgraph: bool = False
    dynamic: Optional[bool] = None
    channels_last: bool = False
    fuse_qkv: bool = False
    regional: bool = False
    regional_blocks: Optional[tuple[str, ...]] = None
    compile_vae: bool = True
    backend: str = "inductor"

    def torch_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``torch.compile`` / ``nn.Module.compile``."""
        kwargs: dict[str, Any] = {"fullgraph": self.fullgraph, "dynamic": self.dynamic,
                                  "backend": self.backend}
        if self.mode not in (None, "default"):
            kwargs["mode"] = self.mode
        return kwargs

    def describe(self) -> str:
        """One line for logs: "mode=max-autotune fullgraph channels_last regional"."""
        parts = [f"mode={self.mode or 'default'}"]
        if self.backend != "inductor":
            parts.append(f"backend={self.backend}")
        for name in ("fullgraph", "channels_last", "fuse_qkv", "regional"):
            if getattr(self, name):
                parts.append(name)
        if self.regional_blocks:
            parts.append("blocks=" + "+".join(self.regional_blocks))
        if self.dynamic is not None:
            parts.append(f"dynamic={self.dynamic}")
        if not self.compile_vae:
            parts.append("no-vae")
        return " ".join(parts)


def is_nexfort_mode(mode: str) -> bool:
    """True for nexfort mode strings: colon-separated tokens or nexfort-only tokens."""
    return ":" in mode or mode in ("max-optimize", "low-precision", "cache-all", "jit",
                                   "benchmark", "disable-runtime-fusion", "freezing",
                                   "cudagraphs")


def parse_compile_options(config: dict, backend_name: str, default_mode: Optional[str] = None,
                          allowed: Optional[tuple[str, ...]] = None
                          ) -> tuple[CompileOptions, list[str]]:
    """Parse ``config`` (cfg.compiler_config) into CompileOptions plus user notices.

    Args:
        config: the compiler_config dict.
        backend_name: the --compiler name, used in messages.
        default_mode: mode used when ``mode`` is absent or ignored (None = torch default).
        allowed: keys this backend honours (default: every key above); others get a notice.

    Returns:
        (options, notices) — notices are one-line strings like
        "ignored: nexfort-only mode 'max-optimize:max-autotune:low-precision' ...".

    Raises:
        ConfigError: a known key with a wrong type or value.
    """
    if not isinstance(config, dict):
        raise ConfigError(f"compiler_config must be a JSON object, got {type(config).__name__}")
    notices: list[str] = []
    values: dict[str, Any] = {"mode": default_mode}
    written: dict[str, str] = {}  # canonical key -> the name the user wrote (for messages)
    known = ("mode", "fullgraph", "dynamic", "memory_format", "fuse_qkv", "regional",
             "regional_blocks", "compile_vae", "backend")
    honoured = allowed if allowed is not None else known
    for raw_key, value in config.items():
        key = _ALIASES.get(raw_key, raw_key)
        written[key] = raw_key
        if raw_key in NEXFORT_ONLY_KEYS:
            notices.append(f"ignored: nexfort-only key {raw_key!r} (compiler {backend_name} "
                           f"does not use it)")
            continue
        if key not in known:
            import difflib

            close = difflib.get_close_matches(raw_key, honoured, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            notices.append(f"ignored: unknown compiler_config key {raw_key!r} for compiler "
                           f"{backend_name} ({hint}known: {', '.join(honoured)})")
            continue
        if key not in honoured:
            notices.append(f"ignored: compiler_config key {raw_key!r} has no effect with "
                           f"compiler {backend_name}")
            continue
        if key == "mode":
            if value is None:
                continue
            if not isinstance(value, str):
                raise ConfigError(f"compiler_config mode must be a string, got {value!r}")
            if is_nexfort_mode(value):
                notices.append(
                    f"ignored: nexfort-only mode {value!r}; compiler {backend_name} uses "
                    f"torch.compile mode {default_mode or 'default'} (choose from "
                    f"{', '.join(TORCH_COMPILE_MODES)})")
                continue
            if value not in TORCH_COMPILE_MODES:
                raise ConfigError(f"compiler_config mode must be one of "
                                  f"{', '.join(TORCH_COMPILE_MODES)}, got {value!r}")
            values["mode"] = value
        elif key in _BOOL_KEYS:
            if not isinstance(value, bool):
                raise ConfigError(f"compiler_config {raw_key} must be true or false, "
                                  f"got {value!r}")
            values[key] = value
        elif key == "dynamic":
            if value is not None and not isinstance(value, bool):
                raise ConfigError(f"compiler_config dynamic must be true, false or null, "
                                  f"got {value!r}")
            values["dynamic"] = value
        elif key == "memory_format":
            if value not in MEMORY_FORMATS:
                raise ConfigError(f"compiler_config memory_format must be one of "
                                  f"channels_last, contiguous_format, got {value!r}")
            values["channels_last"] = value == "channels_last"
        elif key == "regional_blocks":
            if value is None:
                continue
            if not isinstance(value, list) or not value or \
                    not all(isinstance(item, str) and item for item in value):
                raise ConfigError(f"compiler_config regional_blocks must be a non-empty list "
                                  f"of module class names, got {value!r}")
            values["regional_blocks"] = tuple(value)
        elif key == "backend":
            if not isinstance(value, str) or not value:
                raise ConfigError(f"compiler_config backend must be a torch.compile backend "
                                  f"name, got {value!r}")
            values["backend"] = value
    if values.get("regional_blocks"):
        if values.get("regional") is False:
            raise ConfigError(f"compiler_config regional_blocks needs regional compilation; "
                              f"drop \"{written.get('regional', 'regional')}\": false")
        values["regional"] = True
    if "compile_vae" not in values:
        values["compile_vae"] = not values.get("regional", False)
    return CompileOptions(**values), notices
