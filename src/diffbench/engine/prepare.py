"""A loaded, accelerated pipeline ready to call (:func:`prepare`: phases "load" and
"accelerate"), and the keyword arguments of one call (:func:`call_kwargs`).

These building blocks are public so analysis commands (the throughput fit, the parameter
check, benchmarks) can call one loaded, accelerated pipeline several times, exactly as a run
(diffbench.engine.runner.run) calls it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional

from diffbench.engine import events as ev
from diffbench.engine.config import RunConfig
from diffbench.engine.events import EventCallback
from diffbench.engine.preflight import Preflight, check_call_kwargs, preflight


def resolve_size(cfg: RunConfig, pipe: Any, spec: Any = None) -> tuple[int, int]:
    """(height, width) in pixels: cfg's, or the model's native size (the denoiser's
    sample_size x VAE scale factor, as diffusers defaults them; ``spec`` the family's
    DenoiserSpec, None: from the pipeline class)."""
    from diffbench.engine.models.loading import native_size

    native = native_size(pipe, spec)
    return cfg.height or native, cfg.width or native


def load_input_image(path: str, width: int, height: int) -> Any:
    """The input image as RGB PIL, resized to width x height (LANCZOS).

    Raises:
        ConfigError: the file cannot be read as an image.
    """
    from PIL import Image

    from diffbench.engine.input_image import open_rgb

    with open_rgb(path, "input_image") as image:
        return image.resize((width, height), Image.LANCZOS)


def call_kwargs(cfg: RunConfig, pipe: Any, device: str, height: int, width: int,
                image: Any = None, control_image: Any = None, **overrides: Any) -> dict:
    """Keyword arguments of one pipeline call, with a freshly seeded torch.Generator.

    t2i passes height/width; i2i passes ``image`` and ``strength``; pix2pix passes ``image``.
    With ``cfg.controlnet`` the control image (``control_image``: :func:`prepare` makes it,
    :meth:`Prepared.call_kwargs` passes it) goes in as diffusers' ControlNet pipelines expect
    it: ``image`` for text-to-image, ``control_image`` for img2img. guidance_scale only when
    set (else the pipeline's default). ``negative_prompt`` only when set, "" included (as
    OneDiff's script passes it); None passes none. The diffusion transformers add what their family
    needs (diffbench.engine.effective.call_settings: the T5 token budget, the model card's
    guidance, the run's height/width for img2img and Kontext's edit). ``cfg.extra_call_kwargs``
    (e.g. controlnet_conditioning_scale) and then ``overrides`` are applied last.
    """
    import torch

    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    kwargs: dict[str, Any] = dict(prompt=cfg.prompt, num_inference_steps=cfg.steps,
                                  num_images_per_prompt=cfg.batch, generator=generator)
    if cfg.negative_prompt is not None:  # "" too: OneDiff's script passes it
        kwargs["negative_prompt"] = cfg.negative_prompt
    from diffbench.engine import effective

    # the family's own: T5 tokens, the model card's guidance, the run's size (FLUX, SD3)
    kwargs.update(effective.call_settings(cfg, pipe, effective.family_of(pipe), height, width))
    if cfg.guidance_scale is not None:
        kwargs["guidance_scale"] = float(cfg.guidance_scale)
    if cfg.task == "t2i":
        kwargs.update(height=height, width=width)
    else:
        kwargs["image"] = image
        if cfg.task == "i2i":
            kwargs["strength"] = float(cfg.strength)
    if cfg.controlnet:
        kwargs["image" if cfg.task == "t2i" else "control_image"] = control_image
    kwargs.update(cfg.extra_call_kwargs)
    kwargs.update(overrides)
    return kwargs


@dataclass
class Prepared:
    """A loaded, accelerated pipeline ready to call (see :func:`prepare`).

    ``spec``: the family's DenoiserSpec; ``state``: the accelerators' AcceleratorState (step
    cache, compile cache, CUDA graphs) for :func:`diffbench.engine.accelerators.after_warmup`.
    """

    pipe: Any
    device: str
    dtype: Any
    height: int
    width: int
    image: Any
    notices: list[str]
    load_s: float
    accelerate_s: float
    control_image: Any = None
    spec: Any = None
    state: Any = None

    def call_kwargs(self, cfg: RunConfig, **overrides: Any) -> dict:
        """:func:`call_kwargs` for this pipeline: its size, input and control images."""
        overrides.setdefault("control_image", self.control_image)
        return call_kwargs(cfg, self.pipe, self.device, self.height, self.width, self.image,
                           **overrides)


def prepare(cfg: RunConfig, on_event: Optional[EventCallback] = None,
            pre: Optional[Preflight] = None) -> Prepared:
    """Load the pipeline and apply the accelerators (phases "load" and "accelerate").

    Raises whatever loading raises (DiffbenchError subclasses for known problems).
    """
    emit = on_event or ev.null_callback
    pre = pre or preflight(cfg)
    from diffbench.engine import accelerators
    from diffbench.engine.models import load_pipeline
    from diffbench.engine.models.loading import pipeline_class, resolve_dtype

    device = pre.device
    spec = pre.source.spec
    dtype = resolve_dtype(cfg.dtype, device, spec)
    state = accelerators.AcceleratorState()
    pipeline_class(cfg, pre.source)  # import diffusers before the clock: load_s is the build
    t0 = time.perf_counter()
    emit(ev.PhaseStarted("load", detail=cfg.model))
    pipe = load_pipeline(cfg, device, dtype, state)
    load_s = time.perf_counter() - t0
    emit(ev.PhaseFinished("load", load_s))
    check_call_kwargs(cfg, pipe)
    height, width = resolve_size(cfg, pipe, spec)
    image = load_input_image(cfg.input_image, width, height) if cfg.task != "t2i" else None
    notices = list(pre.notices)
    for notice in notices:
        emit(ev.LogMessage("warning", notice))
    control_image = None
    if cfg.controlnet:
        from diffbench.engine.models.controlnet import control_image_for

        control_image, origin = control_image_for(cfg, width, height, image)
        notices.append(origin)
        emit(ev.LogMessage("info", origin))
    t1 = time.perf_counter()
    emit(ev.PhaseStarted("accelerate", detail=cfg.compiler))
    pipe = accelerators.apply_all(pipe, spec, cfg, emit, state)
    accelerate_s = time.perf_counter() - t1
    emit(ev.PhaseFinished("accelerate", accelerate_s))
    return Prepared(pipe, device, dtype, height, width, image, notices, load_s,
                    accelerate_s, control_image, spec, state)
