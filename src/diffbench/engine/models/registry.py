"""Registry of built-in random-weight models: tiny-* (tiny.py, tiny_dit.py) and synthetic-*
(synthetic.py, synthetic_dit.py).

Cheap to import: no torch. Builders import torch/diffusers when called.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Mapping, Optional

from diffbench.engine import families

#: Model families (diffbench.engine.families: one module and spec per family).
FAMILIES = families.names()


@dataclass(frozen=True)
class BuiltinModel:
    """A model built in code, not loaded from disk.

    ``build(device: str, dtype: torch.dtype) -> dict`` returns diffusers components keyed by
    pipeline argument name (unet, vae, text_encoder, tokenizer, [text_encoder_2, tokenizer_2],
    scheduler), already on ``device`` in ``dtype``. ``family`` is one of FAMILIES: the
    builder declares it (a built-in's family never comes from its name);
    ``native_size`` is the default height/width in pixels. ``denoiser_config``: the denoiser's
    config as its ``config.json`` would hold it (the diffusion transformers declare it: the
    model card's settings and model checks read it without building the model).
    """

    name: str
    family: str
    build: Callable[..., dict]
    native_size: int
    description: str = ""
    denoiser_config: Optional[Mapping] = None

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")


_BUILTINS: dict[str, BuiltinModel] = {}
#: (name prefix, module that registers built-ins with it); imported on first use.
_PROVIDERS = (("tiny-", "diffbench.engine.models.tiny"),
              ("tiny-", "diffbench.engine.models.tiny_dit"),
              ("synthetic-", "diffbench.engine.models.synthetic"),
              ("synthetic-", "diffbench.engine.models.synthetic_dit"))


def register_builtin(model: BuiltinModel) -> BuiltinModel:
    """Add (or replace) a built-in model under ``model.name``; returns it."""
    _BUILTINS[model.name] = model
    return model


def _load_provider(module: str) -> None:
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:  # a real missing dependency inside the provider
            raise


def get_builtin(name: str) -> BuiltinModel | None:
    """The built-in model called ``name``, or None. Imports its provider module lazily."""
    if name not in _BUILTINS:
        for prefix, module in _PROVIDERS:
            if name.startswith(prefix) and name not in _BUILTINS:
                _load_provider(module)
    return _BUILTINS.get(name)


def list_builtins() -> dict[str, BuiltinModel]:
    """Every built-in model by name (loads all providers that exist)."""
    for _, module in _PROVIDERS:
        _load_provider(module)
    return dict(sorted(_BUILTINS.items()))
