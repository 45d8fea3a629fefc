"""Peak CUDA memory per part of one pipeline call: text encoders, denoiser, VAE.

The call's parts run one after the other, so the peak of each is the peak since the previous
part ended: torch's peak counters are read and reset at each boundary (host-side allocator
statistics: no device synchronisation, nothing inside the denoiser's forward):

- text encoders: from the call's start to the output of the last text encoder (a forward
  hook on every ``text_encoder*`` module of the pipeline);
- denoiser: from there to the end of the last denoising step (the step-end callback; image
  latents of img2img / edits are encoded in this part);
- VAE: from the last step's end to the call's end (decode, image post-processing).

The call's overall peaks (allocated and reserved) are the maxima over the parts, so they
equal what one reset before the call would have read. Off CUDA nothing is hooked and every
figure is None.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

GIB = float(1 << 30)
PARTS = ("text_encoder", "denoiser", "vae")


class PhasePeaks:
    """Use as a context manager around one measured pipeline call; wrap its step-end callback
    with :meth:`wrap`.

    Args:
        pipe: the loaded pipeline (its ``text_encoder*`` attributes are hooked).
        device: the run's device; only "cuda[:N]" measures.
    """

    def __init__(self, pipe: Any, device: str) -> None:
        self.pipe = pipe
        self.device = str(device)
        self.active = self.device.startswith("cuda")
        self.peaks: dict[str, Optional[float]] = {part: None for part in PARTS}
        self.reserved: Optional[float] = None
        self._handles: list = []

    def _cut(self, part: str) -> None:
        """Fold the peak since the last boundary into ``part`` and reset the counters."""
        import torch

        allocated = torch.cuda.max_memory_allocated(self.device) / GIB
        reserved = torch.cuda.max_memory_reserved(self.device) / GIB
        self.peaks[part] = max(self.peaks[part] or 0.0, allocated)
        self.reserved = max(self.reserved or 0.0, reserved)
        torch.cuda.reset_peak_memory_stats(self.device)

    def __enter__(self) -> "PhasePeaks":
        if not self.active:
            return self
        import torch

        for name in sorted(vars(self.pipe)):
            module = getattr(self.pipe, name, None)
            if name.startswith("text_encoder") and isinstance(module, torch.nn.Module):
                self._handles.append(module.register_forward_hook(
                    lambda *_: self._cut("text_encoder")))
        return self

    def wrap(self, callback: Callable) -> Callable:
        """A step-end callback that closes the denoiser part at each step, then calls
        ``callback`` (diffusers' callback_on_step_end signature; returns its result)."""
        if not self.active:
            return callback

        def on_step_end(pipe: Any, step: int, timestep: Any, callback_kwargs: dict) -> dict:
            self._cut("denoiser")
            return callback(pipe, step, timestep, callback_kwargs)

        return on_step_end

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        if self.active and exc[0] is None:
            self._cut("vae")

    def overall_gib(self) -> tuple[Optional[float], Optional[float]]:
        """(peak allocated, peak reserved) of the whole call in GiB; (None, None) off CUDA."""
        if not self.active or self.reserved is None:
            return None, None
        return max(p for p in self.peaks.values() if p is not None), self.reserved

    def metrics(self) -> dict:
        """{"text_encoder_peak_gib", "denoiser_peak_gib", "vae_peak_gib"}: GiB or None."""
        return {f"{part}_peak_gib": self.peaks[part] for part in PARTS}
