"""RunConfig: one benchmark run's settings, validated and frozen.

Field names and defaults follow OneDiff's benchmark script (onediff/benchmarks/text_to_image.py)
where they make sense — model, variant, custom_pipeline, scheduler, lora, controlnet, steps,
prompt, negative_prompt, seed (333), warmups (1), batch, height, width, input_image,
control_image, output_image, extra_call_kwargs, compiler, compiler_config, quantize_config,
cache_interval (3), cache_layer_id (0), cache_block_id (0) — so results compare with theirs.
diffbench adds task, strength, guidance_scale, dtype, device and run-control fields.

Validation is cheap (no torch import) and raises :class:`diffbench.engine.errors.ConfigError` with a
one-line message. Checks that need the model or the installed backends (unknown model, an
unavailable compiler) live in diffbench.engine.models.sources and diffbench.engine.accelerators.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Optional

from diffbench.engine.errors import ConfigError

#: The seed report's prompt (OneDiff's default prompt for RealVisXL).
DEFAULT_PROMPT = "best quality, realistic, unreal engine, 4K,a cat sitting on human lap"
#: The embedded default model: runs on CPU, offline, in seconds.
DEFAULT_MODEL = "tiny-sd15"

TASKS = ("t2i", "i2i", "pix2pix")
DTYPES = ("auto", "float32", "float16", "bfloat16")
DEVICES = ("auto", "cpu", "cuda")
#: Compilers selectable with ``--compiler``; accelerators/ holds one module per backend.
COMPILERS = ("none", "compile", "compile-max-autotune", "cudagraph", "nexfort", "oneflow")
#: Quantization recipes (torchao): int8 weight-only, int8 dynamic, float8 dynamic.
QUANTIZE_MODES = ("none", "int8wo", "int8dq", "fp8dq")

#: Scheduler class names in diffusers that drive SD 1.5 / SDXL / pix2pix UNets.
SCHEDULERS = (
    "DDIMScheduler", "DDPMScheduler", "DEISMultistepScheduler", "DPMSolverMultistepScheduler",
    "DPMSolverSinglestepScheduler", "DPMSolverSDEScheduler", "EulerAncestralDiscreteScheduler",
    "EulerDiscreteScheduler", "HeunDiscreteScheduler", "KDPM2AncestralDiscreteScheduler",
    "KDPM2DiscreteScheduler", "LCMScheduler", "LMSDiscreteScheduler", "PNDMScheduler",
    "TCDScheduler", "UniPCMultistepScheduler",
)

#: Pipeline-call keywords diffbench sets itself -> the flag to use instead. Passing them in
#: extra_call_kwargs would silently override the settings the result reports.
RESERVED_CALL_KWARGS = {
    "prompt": "--prompt", "negative_prompt": "--negative-prompt",
    "num_inference_steps": "--steps", "height": "--height", "width": "--width",
    "generator": "--seed", "num_images_per_prompt": "--batch",
    "image": "--input-image (or --control-image)", "strength": "--strength",
    "guidance_scale": "--guidance-scale",
    "callback_on_step_end": "none (diffbench times the denoising steps through it)",
    "callback_on_step_end_tensor_inputs": "none (diffbench times the denoising steps "
                                          "through callback_on_step_end)",
    "output_type": "none (diffbench needs PIL images to save and check)",
}

#: Largest height/width accepted (pixels); beyond this a UNet run is not a benchmark.
MAX_SIZE = 8192
#: Longest --timeout: threading.Timer's limit (threading.TIMEOUT_MAX, about 292 years).
MAX_TIMEOUT_S = threading.TIMEOUT_MAX
MAX_STEPS = 10_000
MAX_BATCH = 64
MAX_WARMUPS = 100


def _parse_json_object(value: Any, name: str) -> dict:
    """Accept a dict, a JSON object string, or None/"" (-> {}). Raise ConfigError otherwise."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{name} is not valid JSON ({exc.msg} at column {exc.colno}): "
                              f"{value!r}") from None
        if not isinstance(parsed, dict):
            raise ConfigError(f"{name} must be a JSON object like '{{\"key\": 1}}', got {value!r}")
        return parsed
    raise ConfigError(f"{name} must be a JSON object, got {type(value).__name__}")


@dataclass(frozen=True)
class RunConfig:
    """Validated settings of one run. Construct with keywords; invalid values raise ConfigError.

    Sizes are pixels (multiples of 8; None = the model's native size: UNet sample_size x VAE
    scale factor). ``steps`` is num_inference_steps; img2img actually runs
    int(steps * strength) denoising steps. ``batch`` is num_images_per_prompt. ``seed`` seeds a
    torch.Generator on the run's device before every call. ``dtype`` "auto" means float16 on
    CUDA (as OneDiff's script) and float32 on CPU. ``extra_call_kwargs``, ``compiler_config``
    and ``quantize_config`` are dicts (JSON strings are parsed).

    Raises:
        ConfigError: any invalid field, with a one-line message naming the field.
    """

    model: str = DEFAULT_MODEL
    variant: Optional[str] = None
    custom_pipeline: Optional[str] = None
    scheduler: str = "EulerAncestralDiscreteScheduler"
    lora: Optional[str] = None
    controlnet: Optional[str] = None
    steps: int = 30
    prompt: str = DEFAULT_PROMPT
    negative_prompt: str = ""
    seed: int = 333
    warmups: int = 1
    batch: int = 1
    height: Optional[int] = None
    width: Optional[int] = None
    input_image: Optional[str] = None
    control_image: Optional[str] = None
    output_image: Optional[str] = None
    extra_call_kwargs: dict = field(default_factory=dict)
    compiler: str = "none"
    compiler_config: dict = field(default_factory=dict)
    quantize: str = "none"
    quantize_config: dict = field(default_factory=dict)
    deepcache: bool = False
    cache_interval: int = 3
    cache_layer_id: int = 0
    cache_block_id: int = 0
    task: Optional[str] = None
    strength: float = 0.8
    guidance_scale: Optional[float] = None
    dtype: str = "auto"
    device: str = "auto"
    # run control (not pipeline settings)
    profile: Optional[str] = None
    python: Optional[str] = None
    timeout_s: Optional[float] = None
    trust_remote_code: bool = False
    compile_cache_dir: Optional[str] = None

    def __post_init__(self) -> None:
        for name in ("extra_call_kwargs", "compiler_config", "quantize_config"):
            object.__setattr__(self, name, _parse_json_object(getattr(self, name), name))
        if self.task is None:
            object.__setattr__(self, "task", infer_task(self.model, self.input_image))
        self._validate()

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        def check_int(name: str, low: int, high: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name} must be an integer, got {value!r}")
            if not low <= value <= high:
                raise ConfigError(f"{name} must be between {low} and {high}, got {value}")

        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError("model must be a non-empty name, hub id or folder")
        check_int("steps", 1, MAX_STEPS)
        check_int("warmups", 0, MAX_WARMUPS)
        check_int("batch", 1, MAX_BATCH)
        check_int("seed", 0, 2**63 - 1)
        check_int("cache_interval", 1, 1000)
        check_int("cache_layer_id", 0, 100)
        check_int("cache_block_id", 0, 100)
        for name in ("height", "width"):
            value = getattr(self, name)
            if value is None:
                continue
            check_int(name, 8, MAX_SIZE)
            if value % 8:
                raise ConfigError(f"{name} must be a multiple of 8 (the VAE downsamples by 8), "
                                  f"got {value}")
        for name in ("prompt", "negative_prompt"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be a string")
        if self.task not in TASKS:
            raise ConfigError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.device not in DEVICES and not str(self.device).startswith("cuda:"):
            raise ConfigError(f"device must be one of {', '.join(DEVICES)} or cuda:N, "
                              f"got {self.device!r}")
        if self.compiler not in COMPILERS:
            raise ConfigError(f"unknown compiler {self.compiler!r}; choose one of "
                              f"{', '.join(COMPILERS)}")
        if self.quantize not in QUANTIZE_MODES:
            raise ConfigError(f"unknown quantize mode {self.quantize!r}; choose one of "
                              f"{', '.join(QUANTIZE_MODES)}")
        if self.scheduler != "none" and self.scheduler not in SCHEDULERS:
            raise ConfigError(f"unknown scheduler {self.scheduler!r}; use 'none' to keep the "
                              f"model's, or one of {', '.join(SCHEDULERS)}")
        if isinstance(self.strength, bool) or not isinstance(self.strength, (int, float)) \
                or not 0.0 < float(self.strength) <= 1.0:
            raise ConfigError(f"strength must be a number in (0, 1], got {self.strength!r}")
        if self.guidance_scale is not None and (
                isinstance(self.guidance_scale, bool)
                or not isinstance(self.guidance_scale, (int, float))
                or not 0.0 <= float(self.guidance_scale) <= 100.0):
            raise ConfigError(f"guidance_scale must be a number in [0, 100], "
                              f"got {self.guidance_scale!r}")
        for key in self.extra_call_kwargs:
            if key in RESERVED_CALL_KWARGS:
                raise ConfigError(f"extra_call_kwargs may not set {key!r}: diffbench sets it; "
                                  f"use {RESERVED_CALL_KWARGS[key]}")
        if self.timeout_s is not None and (not isinstance(self.timeout_s, (int, float))
                                           or isinstance(self.timeout_s, bool)
                                           or not math.isfinite(self.timeout_s)
                                           or not 0 < self.timeout_s <= MAX_TIMEOUT_S):
            raise ConfigError(f"timeout_s (--timeout) must be a positive, finite number of "
                              f"seconds (at most {MAX_TIMEOUT_S:g}), got {self.timeout_s!r}")
        if self.task in ("i2i", "pix2pix"):
            if self.input_image is None:
                raise ConfigError(f"task {self.task} needs an input image (--input-image)")
            if self.task == "i2i" and int(self.steps * self.strength) < 1:
                raise ConfigError(
                    f"img2img runs int(steps * strength) = int({self.steps} * {self.strength})"
                    f" = 0 denoising steps; raise --steps or --strength")
        for name in ("input_image", "control_image"):
            path = getattr(self, name)
            if path is not None:
                _check_readable_file(name, path)
        if self.output_image is not None:
            folder = os.path.dirname(os.path.abspath(self.output_image)) or "."
            if not os.path.isdir(folder):
                raise ConfigError(f"output_image folder does not exist: {folder}")
        if self.custom_pipeline and not self.trust_remote_code:
            raise ConfigError("custom_pipeline runs code from the model repo; pass "
                              "--trust-remote-code to allow it")

    # ------------------------------------------------------------------ helpers
    def to_dict(self) -> dict[str, Any]:
        """All fields as a JSON/TOML-friendly dict (None values kept)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        """Build from a dict; unknown keys raise ConfigError naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
        return cls(**data)

    def replace(self, **changes: Any) -> "RunConfig":
        """A copy with ``changes`` applied and validated again (task re-inferred if unset)."""
        data = self.to_dict()
        data.update(changes)
        if "task" not in changes and ("input_image" in changes or "model" in changes):
            data["task"] = None
        return RunConfig.from_dict(data)


def infer_task(model: str, input_image: Optional[str]) -> str:
    """Guess the task: pix2pix models -> "pix2pix"; an input image -> "i2i"; else "t2i"."""
    if "pix2pix" in str(model).lower():
        return "pix2pix"
    return "i2i" if input_image else "t2i"


def _check_readable_file(name: str, path: str) -> None:
    if not isinstance(path, str) or not path:
        raise ConfigError(f"{name} must be a file path")
    if not os.path.exists(path):
        raise ConfigError(f"{name} not found: {path}")
    if not os.path.isfile(path):
        raise ConfigError(f"{name} is not a file: {path}")
    if not os.access(path, os.R_OK):
        raise ConfigError(f"{name} is not readable: {path}")
