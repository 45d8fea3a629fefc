"""Model sources and pipeline construction.

- :func:`resolve_source` (cheap, no torch): built-in name, local diffusers folder, or a hub id
  already in the local Hugging Face cache; else ModelNotFoundError naming the fix.
- :func:`register_builtin` / :class:`BuiltinModel`: random-weight models built in code.
  tiny-* live in engine/models/tiny.py, synthetic-* in engine/models/synthetic.py; each is
  imported lazily when a name with its prefix is asked for.
- :func:`load_pipeline` (imports torch/diffusers): the pipeline for a RunConfig.
- :func:`diffbench.engine.models.tokenizer.offline_clip_tokenizer`: a CLIPTokenizer with no hub access.
"""

from __future__ import annotations

from typing import Any

from diffbench.engine.models.registry import (FAMILIES, BuiltinModel, get_builtin, list_builtins,
                                    register_builtin)
from diffbench.engine.models.sources import ModelSource, family_of, resolve_source

__all__ = ["FAMILIES", "BuiltinModel", "ModelSource", "family_of", "get_builtin",
           "list_builtins", "load_pipeline", "register_builtin", "resolve_source"]


def load_pipeline(cfg: Any, device: str, dtype: Any, state: Any = None) -> Any:
    """See :func:`diffbench.engine.models.loading.load_pipeline` (imported lazily: it needs torch)."""
    from diffbench.engine.models.loading import load_pipeline as _load

    return _load(cfg, device, dtype, state)
