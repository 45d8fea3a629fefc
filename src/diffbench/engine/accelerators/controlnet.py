"""``--controlnet``: a ControlNet joins the pipeline, which is rebuilt as the family's ControlNet
pipeline class for the task (``spec.controlnet_pipelines``). A stacked plugin of stage "load":
part of building the pipeline, timed in load_s.

Where the ControlNet comes from (random from the denoiser's config, a local folder, a cached hub
id) and the control image: :mod:`diffbench.engine.models.controlnet`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from diffbench.engine.accelerators.base import STACKED, Accelerator

if TYPE_CHECKING:  # pragma: no cover
    from diffbench.engine.accelerators.base import AcceleratorState
    from diffbench.engine.config import RunConfig
    from diffbench.engine.events import EventCallback
    from diffbench.engine.families import DenoiserSpec


class ControlNet(Accelerator):
    """``--controlnet``: rebuild the pipeline with a ControlNet (part of the model: the eager
    baseline of the same settings has it too)."""

    name = "controlnet"
    kind = STACKED
    stage = "load"
    category = "controlnet"
    config_keys = ("controlnet", "control_image")
    description = "a ControlNet (random, local folder or cached hub id) in the pipeline"

    def requested(self, cfg: "RunConfig") -> bool:
        return bool(cfg.controlnet)

    def validate(self, cfg: "RunConfig") -> list[str]:
        """Raises ModelNotFoundError: a ControlNet that is neither "random", a local folder
        nor cached."""
        from diffbench.engine.models.controlnet import resolve_controlnet

        resolve_controlnet(cfg.controlnet)
        return []

    def apply(self, pipe: Any, spec: "DenoiserSpec", cfg: "RunConfig", emit: "EventCallback",
              state: "AcceleratorState | None" = None) -> Any:
        """Build the ControlNet on the denoiser's device and dtype and return the family's
        ControlNet pipeline for the task made of ``pipe``'s components plus the ControlNet.

        Raises:
            ConfigError: no ControlNet pipeline for this family and task; weights that cannot
                load or do not fit the denoiser.
        """
        import diffusers

        from diffbench.engine.models.controlnet import load_controlnet
        from diffbench.engine.models.loading import construct, pipeline_class_name

        denoiser = spec.denoiser(pipe)
        controlnet = load_controlnet(cfg, denoiser, denoiser.device, denoiser.dtype)
        cls = getattr(diffusers, pipeline_class_name(spec.family, cfg.task, True))
        return construct(cls, {**pipe.components, "controlnet": controlnet})
