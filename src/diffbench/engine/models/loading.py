"""Build a diffusers pipeline for a RunConfig: class by family and task (the family's
:class:`~diffbench.engine.families.DenoiserSpec`), scheduler, then the load-stage plugins
(ControlNet, LoRA: diffbench.engine.accelerators).

Imports torch and diffusers (call from the runner, never at dashboard start-up).
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from diffbench.engine import families
from diffbench.engine.errors import ConfigError
from diffbench.engine.models.registry import get_builtin
from diffbench.engine.models.sources import ModelSource, resolve_source



def dtype_kwargs(dtype: Any) -> dict[str, Any]:
    """``from_pretrained``'s dtype keyword for the installed diffusers: ``dtype`` where it
    exists (``torch_dtype`` is deprecated there and warns), ``torch_dtype`` before that."""
    from diffusers.utils import deprecation_utils

    return {"dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype": dtype}

def pipeline_class_name(family: str, task: str, controlnet: bool = False) -> str:
    """The diffusers pipeline class name for ``family`` and ``task`` (ControlNet variant
    when ``controlnet``), from the family's spec.

    Raises:
        ConfigError: the pair does not exist (e.g. task pix2pix on an SDXL model, or a
            ControlNet with an instruct-pix2pix model).
    """
    spec = families.get(family)
    try:
        name = spec.pipelines[task]
    except KeyError:
        raise ConfigError(f"task {task!r} does not fit a {family} model; this model supports "
                          f"--task {' or '.join(spec.tasks)}") from None
    if not controlnet:
        return name
    try:
        return spec.controlnet_pipelines[task]
    except KeyError:
        raise ConfigError(f"--controlnet does not work with {spec.label} models (diffusers "
                          f"has no ControlNet {spec.family} pipeline); use an SD 1.5 or SDXL "
                          "model") from None


def pipeline_class(cfg: Any, source: ModelSource | None = None) -> Any:
    """The diffusers pipeline class for ``cfg`` (imports diffusers and the pipeline module).

    Raises:
        ModelNotFoundError, ConfigError: as :func:`resolve_source` / :func:`pipeline_class_name`.
    """
    import diffusers

    source = source or resolve_source(cfg.model)
    return getattr(diffusers, pipeline_class_name(source.family, cfg.task,
                                                  bool(cfg.controlnet)))


def check_compatible(cfg: Any, source: ModelSource) -> list[str]:
    """Cheap checks that need the model's family (used by preflight; no torch): the task and
    a ControlNet fit the family, the size and the scheduler fit the model, the family's own
    model checks (FLUX-schnell takes no guidance), then the load-stage plugins' settings
    (ControlNet source, LoRA file and peft). Returns the model's notices.

    Raises:
        ConfigError: task/family mismatch, a size or scheduler the model cannot take, a T5
            setting on a model without T5, guidance on schnell, a missing LoRA file or peft, a
            ControlNet with instruct-pix2pix.
        ModelNotFoundError: a ControlNet that is neither "random", a local folder nor cached.
    """
    from diffbench.engine import accelerators

    spec = source.spec
    pipeline_class_name(source.family, cfg.task, bool(cfg.controlnet))
    for name in ("height", "width"):
        value = getattr(cfg, name)
        if value is not None and value % spec.size_multiple:
            raise ConfigError(f"{name} must be a multiple of {spec.size_multiple} for "
                              f"{spec.label} (VAE factor x patch size), got {value}",
                              field=name)
    scheduler_for(cfg, spec)
    if cfg.max_sequence_length is not None and spec.t5_attr is None:
        raise ConfigError(f"max_sequence_length sets the T5 prompt length; {spec.label} "
                          "has no T5 encoder (CLIP's 77 tokens)", field="max_sequence_length")
    notices = list(spec.check_model(cfg, source.denoiser_config())) if spec.check_model \
        else []
    accelerators.validate_all(cfg, stage="load")
    return notices


def scheduler_for(cfg: Any, spec: Any) -> str:
    """The scheduler class the run swaps in, or "none" to keep the model's. The catalog's
    default (a UNet scheduler) keeps a flow-matching model's own scheduler.

    Raises:
        ConfigError: ``.field`` scheduler; a UNet scheduler asked for a flow-matching model,
            or a flow-matching one for a UNet model.
    """
    from diffbench.engine import catalog
    from diffbench.engine.catalog.settings import FLOW_MATCH_SCHEDULERS

    name = cfg.scheduler
    if name == "none":
        return name
    flow = name in FLOW_MATCH_SCHEDULERS
    if spec.flow_matching and not flow:
        if name == catalog.BY_NAME["scheduler"].default:
            return "none"
        raise ConfigError(f"{spec.label} needs a flow-matching scheduler; --scheduler {name} "
                          f"is for UNet models: use none (the model's) or "
                          f"{' or '.join(FLOW_MATCH_SCHEDULERS)}", field="scheduler")
    if flow and not spec.flow_matching:
        raise ConfigError(f"--scheduler {name} is for flow-matching models (FLUX, SD3); "
                          f"{spec.label} needs a UNet scheduler", field="scheduler")
    return name


def check_device_settings(cfg: Any, spec: Any, device: str) -> None:
    """Preflight checks of the memory options that need the device (CPU offload, T5
    quantization): see :func:`diffbench.engine.models.memory.check`.

    Raises:
        ConfigError: one line naming the setting.
    """
    from diffbench.engine.models.memory import check

    check(cfg, spec, device)


def resolve_dtype(name: str, device: str, spec: Any = None) -> Any:
    """torch dtype for ``name``; "auto" = float16 on CUDA (OneDiff's script; bfloat16 for the
    diffusion transformers, which overflow in float16: ``spec.cuda_dtype``), float32 on
    CPU."""
    import torch

    if name == "auto":
        if not str(device).startswith("cuda"):
            return torch.float32
        return getattr(torch, spec.cuda_dtype) if spec is not None else torch.float16
    return getattr(torch, name)


def construct(cls: Any, components: dict) -> Any:
    """Instantiate pipeline class ``cls`` from ``components`` (name -> module); optional parts
    it expects default to None, the safety checker is off."""
    params = inspect.signature(cls.__init__).parameters
    kwargs = {k: v for k, v in components.items() if k in params}
    for optional in ("safety_checker", "feature_extractor", "image_encoder"):
        if optional in params and optional not in kwargs:
            kwargs[optional] = None
    if "requires_safety_checker" in params:
        kwargs["requires_safety_checker"] = False
    return cls(**kwargs)


def load_pipeline(cfg: Any, device: str, dtype: Any, state: Any = None) -> Any:
    """Build the pipeline for ``cfg`` on ``device`` in ``dtype`` (a torch.dtype).

    Built-ins are constructed from their builder (no safety checker); local folders and cached
    hub ids load with ``from_pretrained(local_files_only=True)``, safetensors only unless
    ``cfg.trust_remote_code`` (which also allows ``cfg.custom_pipeline``). The class is the
    family's pipeline for the task (the family read from model_index.json's ``_class_name``
    or the builder, never from the name). The T5 encoder is quantized and the pipeline moved
    to ``device`` or put under model CPU offload (diffbench.engine.models.memory). Then the
    scheduler is swapped (:func:`scheduler_for`; "none" keeps the model's) and the load-stage
    plugins apply in registry order: a ControlNet
    rebuilds the pipeline as the family's ControlNet pipeline, a local LoRA loads.
    ``state``: the run's diffbench.engine.accelerators.AcceleratorState (None: a fresh one).

    Raises:
        ModelNotFoundError: the model (or ControlNet) is not available locally.
        ConfigError: task/family mismatch (or a family not supported yet), a LoRA or
            ControlNet that cannot load, peft missing, a scheduler the model cannot take.
    """
    import diffusers

    from diffbench.engine import accelerators
    from diffbench.engine.events import null_callback

    from diffbench.engine.models.memory import place

    source = resolve_source(cfg.model)
    spec = source.spec
    cls = getattr(diffusers, pipeline_class_name(source.family, cfg.task))
    if source.kind == "builtin":
        builtin = get_builtin(cfg.model)
        assert builtin is not None
        # offloaded models wait on the CPU: build them there
        pipe = construct(cls, builtin.build("cpu" if cfg.cpu_offload else device, dtype))
        if getattr(pipe, "default_sample_size", None) is not None:  # the built-in's size
            pipe.default_sample_size = builtin.native_size // pipe.vae_scale_factor
    else:
        # trusted: safetensors where present, else pickled .bin weights (None: diffusers'
        # choice); untrusted: safetensors only
        kwargs: dict[str, Any] = dict(**dtype_kwargs(dtype), local_files_only=True,
                                      use_safetensors=None if cfg.trust_remote_code else True)
        if cfg.variant:
            kwargs["variant"] = cfg.variant
        if cfg.custom_pipeline and cfg.trust_remote_code:
            # diffusers runs a custom pipeline's code only with trust_remote_code
            kwargs.update(custom_pipeline=os.path.expanduser(cfg.custom_pipeline),
                          trust_remote_code=True)
        pipe = cls.from_pretrained(source.path or cfg.model, **kwargs)
    pipe = place(pipe, spec, cfg, device)
    scheduler = scheduler_for(cfg, spec)
    if scheduler != "none":
        scheduler_cls = getattr(diffusers, scheduler)
        pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config)
    pipe = accelerators.apply_all(pipe, spec, cfg, null_callback, state, stage="load")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def native_size(pipe: Any, spec: Any = None) -> int:
    """Default height/width in pixels: the denoiser's sample_size x VAE scale factor
    (diffusers' rule). ``spec``: the family's DenoiserSpec (None: from the pipeline class)."""
    spec = spec or families.for_pipeline(pipe)
    # FLUX's transformer has no sample_size: its pipeline's default_sample_size says it
    sample = getattr(spec.denoiser(pipe).config, "sample_size", None) or \
        pipe.default_sample_size
    if isinstance(sample, (list, tuple)):
        sample = sample[0]
    return int(sample) * int(pipe.vae_scale_factor)
