"""Random LoRA files for a UNet: what tests and the LoRA-swap benchmark load with ``--lora``.

A LoRA adds ``up @ down`` (rank r) to a Linear layer's weight. :func:`random_lora_state_dict`
makes one for every attention projection of a UNet (``to_q``, ``to_k``, ``to_v``,
``to_out.0``: the targets of diffusers' LoRA training scripts, e.g.
examples/text_to_image/train_text_to_image_lora.py) with seeded random weights, keys in
diffusers' format (``unet.<module>.lora.down.weight`` / ``.lora.up.weight``, what
``convert_state_dict_to_diffusers`` writes), so ``pipe.load_lora_weights(file)`` reads it like a
trained LoRA. Same seed -> same file; two seeds -> two LoRAs of identical shapes (hot-swappable).
"""

from __future__ import annotations

import math
import os
from typing import Any

#: Attention projections a LoRA targets (diffusers' LoRA training scripts).
TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def random_lora_state_dict(unet: Any, rank: int = 4, seed: int = 0,
                           strength: float = 0.5) -> dict:
    """Seeded random LoRA tensors (float32, CPU) for every attention projection of ``unet``.

    ``down``: (rank, in_features) ~ N(0, 1/in_features); ``up``: (out_features, rank) ~
    N(0, strength^2 / rank), so the update's scale is ``strength`` times a weight's.

    Raises:
        ValueError: the UNet has no attention projections to target.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    tensors: dict = {}
    for name, module in unet.named_modules():
        if not isinstance(module, torch.nn.Linear) or not name.endswith(TARGETS):
            continue
        down = torch.randn(rank, module.in_features, generator=generator)
        up = torch.randn(module.out_features, rank, generator=generator)
        tensors[f"unet.{name}.lora.down.weight"] = down / math.sqrt(module.in_features)
        tensors[f"unet.{name}.lora.up.weight"] = up * (strength / math.sqrt(rank))
    if not tensors:
        raise ValueError(f"{type(unet).__name__} has no attention projections "
                         f"({', '.join(TARGETS)}) for a LoRA")
    return tensors


def write_random_lora(unet: Any, path: str, rank: int = 4, seed: int = 0,
                      strength: float = 0.5) -> str:
    """Write :func:`random_lora_state_dict` to ``path`` (.safetensors); returns the path."""
    from safetensors.torch import save_file

    tensors = random_lora_state_dict(unet, rank=rank, seed=seed, strength=strength)
    save_file({k: v.contiguous() for k, v in tensors.items()}, path)
    return os.path.abspath(path)
