"""``--lora``: a local LoRA (.safetensors file or folder, diffusers/kohya format) loaded into the
pipeline through diffusers' ``load_lora_weights`` (peft adapters on the denoiser and text
encoders). A stacked plugin of stage "load": part of building the pipeline, timed in load_s.

Random LoRA files for tests and benchmarks: :mod:`diffbench.engine.models.lora`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from diffbench.engine import extras
from diffbench.engine.accelerators.base import STACKED, Accelerator
from diffbench.engine.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from diffbench.engine.accelerators.base import AcceleratorState
    from diffbench.engine.config import RunConfig
    from diffbench.engine.events import EventCallback
    from diffbench.engine.families import DenoiserSpec


def peft_missing() -> bool:
    """True when peft cannot be imported (looks for the package without importing it)."""
    return extras.missing("peft")


def require_peft(import_it: bool = True) -> None:
    """Raise a one-line ConfigError ("LoRA needs peft: pip install 'diffbench[lora]'") when
    peft (diffusers' LoRA backend) is not installed.

    ``import_it`` False only looks for the package (cheap: preflight), True imports it.
    """
    if not import_it:
        if peft_missing():
            raise ConfigError(extras.hint("peft"))
        return
    extras.require("peft")


def load_lora(pipe: Any, path: str, adapter_name: "str | None" = None,
              trust_remote_code: bool = False) -> None:
    """Load a LoRA (.safetensors file or folder, diffusers/kohya format) into ``pipe``;
    pickled weights (.bin, .pt) only with ``trust_remote_code`` (unpickling can run code).

    Raises:
        ConfigError: peft missing, or the file cannot load into this pipeline (one line).
    """
    require_peft()
    kwargs: dict[str, Any] = {"adapter_name": adapter_name} if adapter_name else {}
    if not trust_remote_code:
        kwargs["use_safetensors"] = True  # diffusers then never falls back to a pickle
    try:
        pipe.load_lora_weights(os.path.expanduser(path), **kwargs)
    except Exception as exc:  # noqa: BLE001 - any failure to read user input is one line
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"cannot load lora {path}: {detail}"[:400]) from None


class LoRA(Accelerator):
    """``--lora PATH``: load a local LoRA into the pipeline (part of the model: the eager
    baseline of the same settings has it too, so it counts as lossless here)."""

    name = "lora"
    kind = STACKED
    stage = "load"
    category = "lora"
    config_keys = ("lora",)
    description = "a local LoRA loaded through diffusers' load_lora_weights (needs peft)"

    def available(self, device: str = "cuda") -> tuple[bool, str]:
        if peft_missing():
            return False, f"peft is not installed ({extras.EXTRAS['peft'].command()})"
        return True, ""

    def requested(self, cfg: "RunConfig") -> bool:
        return bool(cfg.lora)

    def validate(self, cfg: "RunConfig") -> list[str]:
        """Raises ConfigError: the file is missing, or peft is not installed."""
        path = os.path.expanduser(cfg.lora)
        if not os.path.exists(path):
            raise ConfigError(f"lora not found: {cfg.lora} (pass a local .safetensors file or "
                              "folder)")
        if not cfg.trust_remote_code and not _safetensors(path):
            raise ConfigError(f"lora {cfg.lora} is not .safetensors: pickled weights can run "
                              f"code when loaded; pass --trust-remote-code to load it, or "
                              f"convert it to .safetensors")
        require_peft(import_it=False)
        return []

    def apply(self, pipe: Any, spec: "DenoiserSpec", cfg: "RunConfig", emit: "EventCallback",
              state: "AcceleratorState | None" = None) -> Any:
        load_lora(pipe, cfg.lora, trust_remote_code=cfg.trust_remote_code)
        return pipe


def _safetensors(path: str) -> bool:
    """A .safetensors file, or a folder holding one."""
    if os.path.isdir(path):
        try:
            return any(name.endswith(".safetensors") for name in os.listdir(path))
        except OSError:
            return True  # unreadable: loading says why
    return path.lower().endswith(".safetensors")
