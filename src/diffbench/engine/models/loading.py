"""Build a diffusers pipeline for a RunConfig: class by family and task, ControlNet,
scheduler, LoRA.

Imports torch and diffusers (call from the runner, never at dashboard start-up).
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from diffbench.engine.errors import ConfigError
from diffbench.engine.models.registry import get_builtin
from diffbench.engine.models.sources import ModelSource, resolve_source

#: diffusers pipeline class per (family, task).
PIPELINE_CLASSES = {
    ("sd15", "t2i"): "StableDiffusionPipeline",
    ("sd15", "i2i"): "StableDiffusionImg2ImgPipeline",
    ("sdxl", "t2i"): "StableDiffusionXLPipeline",
    ("sdxl", "i2i"): "StableDiffusionXLImg2ImgPipeline",
    ("pix2pix", "pix2pix"): "StableDiffusionInstructPix2PixPipeline",
}
#: diffusers pipeline class per (family, task) with ``--controlnet``.
CONTROLNET_PIPELINE_CLASSES = {
    ("sd15", "t2i"): "StableDiffusionControlNetPipeline",
    ("sd15", "i2i"): "StableDiffusionControlNetImg2ImgPipeline",
    ("sdxl", "t2i"): "StableDiffusionXLControlNetPipeline",
    ("sdxl", "i2i"): "StableDiffusionXLControlNetImg2ImgPipeline",
}


def pipeline_class_name(family: str, task: str, controlnet: bool = False) -> str:
    """The diffusers pipeline class name for ``family`` and ``task`` (ControlNet variant
    when ``controlnet``).

    Raises:
        ConfigError: the pair does not exist (e.g. task pix2pix on an SDXL model, or a
            ControlNet with an instruct-pix2pix model).
    """
    try:
        name = PIPELINE_CLASSES[(family, task)]
    except KeyError:
        tasks = sorted(t for f, t in PIPELINE_CLASSES if f == family)
        raise ConfigError(f"task {task!r} does not fit a {family} model; this model supports "
                          f"--task {' or '.join(tasks)}") from None
    if not controlnet:
        return name
    try:
        return CONTROLNET_PIPELINE_CLASSES[(family, task)]
    except KeyError:
        raise ConfigError("--controlnet does not work with instruct-pix2pix models (diffusers "
                          "has no ControlNet pix2pix pipeline); use an SD 1.5 or SDXL model") \
            from None


def pipeline_class(cfg: Any, source: ModelSource | None = None) -> Any:
    """The diffusers pipeline class for ``cfg`` (imports diffusers and the pipeline module).

    Raises:
        ModelNotFoundError, ConfigError: as :func:`resolve_source` / :func:`pipeline_class_name`.
    """
    import diffusers

    source = source or resolve_source(cfg.model)
    return getattr(diffusers, pipeline_class_name(source.family, cfg.task,
                                                  bool(cfg.controlnet)))


def check_compatible(cfg: Any, source: ModelSource) -> None:
    """Cheap checks that need the model's family (used by preflight; no torch).

    Raises:
        ConfigError: task/family mismatch, a missing LoRA file or peft, a ControlNet with
            instruct-pix2pix.
        ModelNotFoundError: a ControlNet that is neither "random", a local folder nor cached.
    """
    pipeline_class_name(source.family, cfg.task, bool(cfg.controlnet))
    if cfg.controlnet:
        from diffbench.engine.models.controlnet import check_controlnet

        check_controlnet(cfg, source.family)
    if cfg.lora and not os.path.exists(os.path.expanduser(cfg.lora)):
        raise ConfigError(f"lora not found: {cfg.lora} (pass a local .safetensors file or "
                          "folder)")
    if cfg.lora:
        require_peft(import_it=False)


def resolve_dtype(name: str, device: str) -> Any:
    """torch dtype for ``name``; "auto" = float16 on CUDA (OneDiff's script), float32 on CPU."""
    import torch

    if name == "auto":
        return torch.float16 if str(device).startswith("cuda") else torch.float32
    return getattr(torch, name)


def _construct(cls: Any, components: dict) -> Any:
    """Instantiate ``cls`` from components; optional parts it expects default to None."""
    params = inspect.signature(cls.__init__).parameters
    kwargs = {k: v for k, v in components.items() if k in params}
    for optional in ("safety_checker", "feature_extractor", "image_encoder"):
        if optional in params and optional not in kwargs:
            kwargs[optional] = None
    if "requires_safety_checker" in params:
        kwargs["requires_safety_checker"] = False
    return cls(**kwargs)


def load_pipeline(cfg: Any, device: str, dtype: Any) -> Any:
    """Build the pipeline for ``cfg`` on ``device`` in ``dtype`` (a torch.dtype).

    Built-ins are constructed from their builder (no safety checker); local folders and cached
    hub ids load with ``from_pretrained(local_files_only=True)``, safetensors only unless
    ``cfg.trust_remote_code`` (which also allows ``cfg.custom_pipeline``). Then the scheduler
    is swapped (``cfg.scheduler``; "none" keeps the model's) and a local LoRA is loaded.
    With ``cfg.controlnet`` the model loads as its plain pipeline first, then the ControlNet
    (diffbench.engine.models.controlnet.load_controlnet) joins its components in the ControlNet
    pipeline class of the same family and task.

    Raises:
        ModelNotFoundError: the model (or ControlNet) is not available locally.
        ConfigError: task/family mismatch, a LoRA or ControlNet that cannot load, peft missing.
    """
    import diffusers

    source = resolve_source(cfg.model)
    cls = getattr(diffusers, pipeline_class_name(source.family, cfg.task))
    if source.kind == "builtin":
        builtin = get_builtin(cfg.model)
        assert builtin is not None
        pipe = _construct(cls, builtin.build(device, dtype))
    else:
        kwargs: dict[str, Any] = dict(torch_dtype=dtype, local_files_only=True,
                                      use_safetensors=not cfg.trust_remote_code)
        if cfg.variant:
            kwargs["variant"] = cfg.variant
        if cfg.custom_pipeline and cfg.trust_remote_code:
            kwargs["custom_pipeline"] = cfg.custom_pipeline
        pipe = cls.from_pretrained(source.path or cfg.model, **kwargs)
        pipe = pipe.to(device)
    if cfg.controlnet:
        from diffbench.engine.models.controlnet import load_controlnet

        controlnet = load_controlnet(cfg, pipe.unet, device, dtype)
        pipe = _construct(pipeline_class(cfg, source), {**pipe.components,
                                                        "controlnet": controlnet})
    if cfg.scheduler != "none":
        scheduler_cls = getattr(diffusers, cfg.scheduler)
        pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config)
    if cfg.lora:
        load_lora(pipe, cfg.lora)
    pipe.set_progress_bar_config(disable=True)
    return pipe


#: The one-line error for a LoRA without peft installed.
PEFT_MISSING = ("--lora needs the peft package (diffusers loads LoRA weights through it): "
                "pip install peft")


def require_peft(import_it: bool = True) -> None:
    """Raise a one-line ConfigError when peft (diffusers' LoRA backend) is not installed.

    ``import_it`` False only looks for the package (cheap: preflight), True imports it.
    """
    import sys

    if not import_it:
        if "peft" in sys.modules:
            missing = sys.modules["peft"] is None
        else:
            import importlib.util

            missing = importlib.util.find_spec("peft") is None
        if missing:
            raise ConfigError(PEFT_MISSING)
        return
    try:
        import peft  # noqa: F401
    except ImportError:
        raise ConfigError(PEFT_MISSING) from None


def load_lora(pipe: Any, path: str, adapter_name: str | None = None) -> None:
    """Load a LoRA (.safetensors file or folder, diffusers/kohya format) into ``pipe``.

    Raises:
        ConfigError: peft missing, or the file cannot load into this pipeline (one line).
    """
    require_peft()
    kwargs = {"adapter_name": adapter_name} if adapter_name else {}
    try:
        pipe.load_lora_weights(os.path.expanduser(path), **kwargs)
    except Exception as exc:  # noqa: BLE001 - any failure to read user input is one line
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"cannot load lora {path}: {detail}"[:400]) from None


def native_size(pipe: Any) -> int:
    """Default height/width in pixels: UNet sample_size x VAE scale factor (diffusers' rule)."""
    sample = pipe.unet.config.sample_size
    if isinstance(sample, (list, tuple)):
        sample = sample[0]
    return int(sample) * int(pipe.vae_scale_factor)
