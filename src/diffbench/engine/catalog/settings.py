"""The run settings, each declared once, in RunConfig's field order (also the order of a
run's config in history rows and TOML exports).

Names and defaults follow OneDiff's benchmark script (onediff/benchmarks/text_to_image.py)
where they make sense — model, variant, custom_pipeline, scheduler, lora, controlnet, steps,
prompt, negative_prompt, seed (333), warmups (1), batch, height, width, input_image,
control_image, output_image, extra_call_kwargs, compiler, compiler_config, quantize_config,
cache_interval (3), cache_layer_id (0), cache_block_id (0) — so results compare with theirs;
their flags are that script's flags. diffbench adds task, strength, guidance_scale, dtype,
device and run-control settings.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Optional

from diffbench.engine.catalog.setting import Cli, Setting, Widget

#: The seed report's prompt (OneDiff's default prompt for RealVisXL).
DEFAULT_PROMPT = "best quality, realistic, unreal engine, 4K,a cat sitting on human lap"
#: The embedded default model: runs on CPU, offline, in seconds.
DEFAULT_MODEL = "tiny-sd15"
#: Built-in model names offered as suggestions (any hub id or local folder may be typed).
BUILTIN_MODELS = ("tiny-sd15", "tiny-sdxl", "tiny-pix2pix", "tiny-flux", "tiny-flux-kontext",
                  "tiny-sd3", "synthetic-sd15", "synthetic-sdxl", "synthetic-pix2pix",
                  "synthetic-flux-dev", "synthetic-flux-schnell", "synthetic-sd35-large",
                  "synthetic-sd35-medium")

TASKS = ("t2i", "i2i", "pix2pix")
DTYPES = ("auto", "float32", "float16", "bfloat16")
DEVICES = ("auto", "cpu", "cuda")
#: Compilers selectable with ``--compiler``; accelerators/ holds one module per backend.
COMPILERS = ("none", "compile", "compile-max-autotune", "cudagraph", "nexfort", "oneflow")
#: Quantization recipes (torchao): int8 weight-only, int8 dynamic, float8 dynamic.
QUANTIZE_MODES = ("none", "int8wo", "int8dq", "fp8dq")
#: T5 text-encoder quantization (torchao weight-only): FLUX's and SD3's largest text encoder.
TEXT_ENCODER_QUANTS = ("none", "int8", "fp8")
#: Longest T5 prompt the FLUX and SD3 pipelines take (tokens).
MAX_SEQUENCE_LENGTH = 512
#: Flow-matching schedulers (FLUX, SD3); the others drive SD 1.5 / SDXL / pix2pix UNets.
FLOW_MATCH_SCHEDULERS = ("FlowMatchEulerDiscreteScheduler", "FlowMatchHeunDiscreteScheduler")
#: Step caches of the diffusion transformers through diffusers' cache hooks (``enable_cache``):
#: First Block Cache, TaylorSeer, MagCache, FasterCache, Pyramid Attention Broadcast.
STEP_CACHES = ("none", "first-block", "taylorseer", "magcache", "fastercache", "pab")
#: Attention backends (diffusers' ``set_attention_backend``): default keeps the model's.
ATTENTION_BACKENDS = ("default", "native", "flash", "cudnn", "efficient", "math", "flash-attn",
                      "flash3")
#: cache_threshold's range (First Block Cache's relative residual change, MagCache's
#: accumulated error): above 1 every step after the first would be skipped.
CACHE_THRESHOLD_RANGE = (0.0, 1.0)
#: Scheduler class names in diffusers that drive the UNets, then the flow-matching ones.
SCHEDULERS = (
    "DDIMScheduler", "DDPMScheduler", "DEISMultistepScheduler", "DPMSolverMultistepScheduler",
    "DPMSolverSinglestepScheduler", "DPMSolverSDEScheduler", "EulerAncestralDiscreteScheduler",
    "EulerDiscreteScheduler", "HeunDiscreteScheduler", "KDPM2AncestralDiscreteScheduler",
    "KDPM2DiscreteScheduler", "LCMScheduler", "LMSDiscreteScheduler", "PNDMScheduler",
    "TCDScheduler", "UniPCMultistepScheduler",
) + FLOW_MATCH_SCHEDULERS

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
    "max_sequence_length": "--max-sequence-length",
}

#: Largest height/width accepted (pixels); beyond this a UNet run is not a benchmark.
MAX_SIZE = 8192
#: Longest --timeout: threading.Timer's limit (threading.TIMEOUT_MAX, about 292 years).
MAX_TIMEOUT_S = threading.TIMEOUT_MAX
MAX_STEPS = 10_000
#: Longest prompt / negative prompt (characters). Text encoders read 77 (CLIP) or 512 (T5)
#: tokens, a few thousand characters at most; longer text only costs time and memory and
#: fills the history and every export.
MAX_PROMPT_CHARS = 10_000
MAX_BATCH = 64
MAX_WARMUPS = 100
MAX_REPEAT = 100
#: Measured calls of ``--repeat auto`` by device kind: several on a GPU, where host noise
#: moves eager figures between calls; one on CPU, so the embedded tiny run stays quick.
REPEAT_AUTO = {"cuda": 3, "cpu": 1}


# ------------------------------------------------------------------ value rules
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _model(value: Any) -> Optional[str]:
    if not isinstance(value, str) or not value.strip():
        return "model must be a non-empty name, hub id or folder"
    return None


def _size(name: str):
    def check(value: Any) -> Optional[str]:
        if value % 8:
            return f"{name} must be a multiple of 8 (the VAE downsamples by 8), got {value}"
        return None
    return check


def _one_of(what: str, choices: tuple, hint: str = "choose one of"):
    def check(value: Any) -> Optional[str]:
        if value not in choices:
            return f"unknown {what} {value!r}; {hint} {', '.join(choices)}"
        return None
    return check


def _scheduler(value: Any) -> Optional[str]:
    if value != "none" and value not in SCHEDULERS:
        return (f"unknown scheduler {value!r}; use 'none' to keep the model's, or one of "
                f"{', '.join(SCHEDULERS)}")
    return None


def _device(value: Any) -> Optional[str]:
    if value not in DEVICES and not str(value).startswith("cuda:"):
        return f"device must be one of {', '.join(DEVICES)} or cuda:N, got {value!r}"
    return None


def _strength(value: Any) -> Optional[str]:
    if not _is_number(value) or not 0.0 < float(value) <= 1.0:
        return f"strength must be a number in (0, 1], got {value!r}"
    return None


def _guidance(value: Any) -> Optional[str]:
    if not _is_number(value) or not 0.0 <= float(value) <= 100.0:
        return f"guidance_scale must be a number in [0, 100], got {value!r}"
    return None


def _cache_threshold(value: Any) -> Optional[str]:
    low, high = CACHE_THRESHOLD_RANGE
    if not _is_number(value) or not math.isfinite(value) or not low < float(value) <= high:
        return (f"cache threshold {value!r} out of range: cache_threshold must be a number in "
                f"({low:g}, {high:g}] (first-block: relative change of the first block's "
                f"residual, diffusers' default 0.05; magcache: accumulated error, default 0.06)")
    return None


def _timeout(value: Any) -> Optional[str]:
    if not _is_number(value) or not math.isfinite(value) or not 0 < value <= MAX_TIMEOUT_S:
        return (f"timeout_s (--timeout) must be a positive, finite number of seconds "
                f"(at most {MAX_TIMEOUT_S:g}), got {value!r}")
    return None


def _prompt_text(name: str):
    def check(value: Any) -> Optional[str]:
        if len(value) > MAX_PROMPT_CHARS:
            return (f"{name} is {len(value):,} characters long; at most {MAX_PROMPT_CHARS:,} "
                    f"are accepted (text encoders read 77 or 512 tokens)")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # bytes the terminal's encoding could not decode
            return (f"{name} is not valid text (it holds bytes that are not UTF-8, as "
                    f"$'\\xff' gives); write it in UTF-8")
        return None
    return check


def _call_kwargs(value: dict) -> Optional[str]:
    for key in value:
        if key in RESERVED_CALL_KWARGS:
            return (f"extra_call_kwargs may not set {key!r}: diffbench sets it; "
                    f"use {RESERVED_CALL_KWARGS[key]}")
    return None


_SELECT_SCHEDULERS = (("none (model's)", "none"),) + tuple(
    (s.replace("Scheduler", ""), s) for s in SCHEDULERS)


# ------------------------------------------------------------------ the table
def _s(name: str, kind: type, default: Any, help: str, widget: Widget,
       flag: Optional[str] = "", **kw: Any) -> Setting:
    """Shorthand: ``flag`` "" means ``--`` + the name with dashes; None means no flag."""
    cli = kw.pop("cli", None)
    if cli is None and flag is not None:
        cli = Cli(flag or "--" + name.replace("_", "-"))
    return Setting(name, kind, default, help, widget, cli=cli, **kw)


W = Widget
SETTINGS: tuple[Setting, ...] = (
    _s("model", str, DEFAULT_MODEL, "built-in name (tiny-sd15, tiny-sdxl, tiny-pix2pix, "
       "tiny-flux, tiny-flux-kontext, tiny-sd3, synthetic-*), local diffusers folder, or a "
       f"hub id in the local HF cache (default {DEFAULT_MODEL})",
       W("text", "main", 20, "Model", "name, hub id or folder"), check=_model),
    _s("variant", str, None, "weights variant, e.g. fp16",
       W("text", "more", 130, "Variant", "e.g. fp16"), optional=True),
    _s("custom_pipeline", str, None, "diffusers custom pipeline (needs --trust-remote-code)",
       W("text", "more", 170, "Pipeline", "custom pipeline (trust code)"), optional=True),
    _s("scheduler", str, "EulerAncestralDiscreteScheduler", "scheduler class name, or 'none' "
       "to keep the model's (default EulerAncestralDiscreteScheduler; FLUX and SD3 keep their "
       "flow-matching one)",
       W("select", "more", 20, "Scheduler", options=_SELECT_SCHEDULERS), check=_scheduler),
    _s("lora", str, None, "local LoRA .safetensors file or folder",
       W("text", "more", 120, "LoRA", "path or hub id"), optional=True),
    _s("controlnet", str, None, "ControlNet: 'random' (built from the model's UNet config, "
       "random weights), a local ControlNet folder, or a hub id in the local HF cache",
       W("text", "more", 150, "ControlNet", "random, folder or hub id"), optional=True),
    _s("steps", int, 30, "denoising steps (num_inference_steps; default 30, or the model "
       "card's: FLUX.1-dev 28, schnell 4, SD3.5 large 28, medium 40)",
       W("integer", "main", 60, "Steps"), low=1, high=MAX_STEPS),
    _s("prompt", str, DEFAULT_PROMPT, "prompt", W("text", "main", 100, "Prompt"),
       keep_spaces=True, check=_prompt_text("prompt")),
    # None: no negative prompt is passed; "" (--negative-prompt "") is passed as "", as
    # OneDiff's script does (SDXL's force_zeros_for_empty_prompt then zeroes its embedding)
    _s("negative_prompt", str, None, "negative prompt (default: none is passed; "
       "--negative-prompt \"\" passes an empty one, as OneDiff's script)",
       W("text", "more", 10, "Negative", "none"), optional=True, keep_spaces=True,
       check=_prompt_text("negative_prompt")),
    _s("seed", int, 333, "torch.Generator seed, re-applied before every call (default 333)",
       W("integer", "main", 80, "Seed"), low=0, high=2**63 - 1),
    _s("warmups", int, 1, "warmup calls before the measured one (default 1)",
       W("integer", "main", 70, "Warmups", beside=True), low=0, high=MAX_WARMUPS,
       affects_image=False),
    _s("repeat", int, None, "measured calls after the warmups, in the same process; it/s, "
       "inference time and step p50/p90 are their median, with min and max (default auto: "
       f"{REPEAT_AUTO['cuda']} on CUDA, {REPEAT_AUTO['cpu']} on CPU)",
       W("integer", "more", 42, "Repeat", "auto", beside=True), optional=True, low=1,
       high=MAX_REPEAT, affects_image=False, auto_word=True),
    _s("batch", int, 1, "images per prompt (default 1)",
       W("integer", "main", 90, "Batch", beside=True), low=1, high=MAX_BATCH),
    _s("height", int, None, "pixels, multiple of 8 (default: the model's native size)",
       W("size", "main", 40, "Size", id="size"), optional=True, low=8, high=MAX_SIZE,
       check=_size("height")),
    _s("width", int, None, "pixels, multiple of 8 (default: the model's native size)",
       W("size", "main", 40, "Size", id="size"), optional=True, low=8, high=MAX_SIZE,
       check=_size("width")),
    _s("input_image", str, None, "input image: img2img, or an instruction edit "
       "(instruct-pix2pix, FLUX.1 Kontext)",
       W("text", "main", 35, "Input img", "for i2i/pix2pix"), optional=True),
    _s("control_image", str, None, "ControlNet conditioning image (default: edges of "
       "--input-image, else a synthetic line pattern)",
       W("text", "more", 160, "Ctrl image", "default: edges of input"), optional=True),
    _s("output_image", str, None, "write the measured call's first image (format from the "
       "extension, e.g. .png, .jpg; PNG otherwise)",
       W("text", "more", 140, "Output", "file.png"), optional=True, affects_image=False,
       sweepable=False),
    _s("extra_call_kwargs", dict, {}, "JSON object passed to the pipeline call",
       W("json", "more", 110, "Call args", "JSON"), check=_call_kwargs),
    _s("compiler", str, "none", "none | compile | compile-max-autotune | cudagraph | "
       "nexfort | oneflow (default none)", W("select", "main", 50, "Compiler"),
       choices=COMPILERS, check=_one_of("compiler", COMPILERS), affects_image=False),
    _s("compiler_config", dict, {}, "JSON object of compiler options, e.g. "
       "'{\"mode\": \"max-autotune\", \"memory_format\": \"channels_last\"}'",
       W("json", "more", 70, "Comp cfg", 'JSON {"mode": ...}'), affects_image=False),
    _s("quantize", str, "none", f"torchao quantization of the UNet: {' | '.join(QUANTIZE_MODES)}"
       " (bare --quantize: quant_type from --quantize-config, else int8dq)",
       W("select", "more", 80, "Quantize"), choices=QUANTIZE_MODES,
       check=_one_of("quantize mode", QUANTIZE_MODES), affects_image=False,
       cli=Cli("--quantize", nargs="?", const="auto")),
    _s("quantize_config", dict, {}, "JSON object of quantization options",
       W("json", "more", 90, "Quant cfg", "JSON"), affects_image=False),
    _s("deepcache", bool, False, "DeepCache-style step caching",
       W("toggle", "more", 100, "DeepCache", options=(("off", False), ("on", True))),
       affects_image=False, cli=Cli("--deepcache", action="store_true")),
    _s("cache_interval", int, 3, "step caching: a full step every N steps (DeepCache; "
       "taylorseer and pab too; default 3)",
       W("integer", "more", 101, "interval", beside=True), low=1, high=1000,
       affects_image=False),
    _s("cache_layer_id", int, 0, "DeepCache layer id (default 0)",
       W("integer", "more", 102, "Layer id"), low=0, high=100, affects_image=False),
    _s("cache_block_id", int, 0, "DeepCache block id (default 0)",
       W("integer", "more", 103, "block id", beside=True), low=0, high=100, affects_image=False),
    # diffusion transformers: diffusers' cache hooks, attention backend, fused QKV
    _s("cache", str, "none", f"step caching of a diffusion transformer through diffusers' "
       f"cache hooks: {' | '.join(STEP_CACHES)} (default none)",
       W("select", "more", 104, "Step cache"), choices=STEP_CACHES,
       check=_one_of("step cache", STEP_CACHES), affects_image=False),
    _s("cache_threshold", float, None, "first-block / magcache threshold in (0, 1] (default: "
       "diffusers' 0.05 / 0.06); taylorseer and pab take cache_interval",
       W("number", "more", 105, "threshold", "default", beside=True), optional=True,
       check=_cache_threshold, affects_image=False),
    _s("attention_backend", str, "default", f"attention kernels of the denoiser (diffusers' "
       f"set_attention_backend): {' | '.join(ATTENTION_BACKENDS)} (default: the model's)",
       W("select", "more", 84, "Attention"), choices=ATTENTION_BACKENDS,
       check=_one_of("attention backend", ATTENTION_BACKENDS), affects_image=False),
    _s("fuse_qkv", bool, False, "fuse the attention query/key/value projections into one "
       "matmul (diffusers' fuse_qkv_projections; lossless)",
       W("toggle", "more", 85, "Fuse QKV", options=(("off", False), ("on", True)), beside=True),
       affects_image=False, cli=Cli("--fuse-qkv", action="store_true")),
    _s("task", str, None, f"{' | '.join(TASKS)} (default: inferred from model and input)",
       W("select", "main", 30, "Task", none_label="auto"), optional=True, choices=TASKS),
    _s("strength", float, 0.8, "img2img strength in (0, 1]; runs int(steps*strength) steps "
       "(default 0.8)", W("number", "more", 40, "Strength"), check=_strength),
    _s("guidance_scale", float, None, "CFG scale, or FLUX-dev's guidance input (default: "
       "the model card's, else the pipeline's; FLUX-schnell takes none)",
       W("number", "more", 30, "CFG scale", "model default"), optional=True, check=_guidance),
    _s("dtype", str, "auto", f"{' | '.join(DTYPES)} (auto: float16 on CUDA, float32 on CPU)",
       W("select", "more", 50, "dtype"), choices=DTYPES),
    _s("device", str, "auto", f"{' | '.join(DEVICES)} or cuda:N (default auto)",
       W("select", "more", 60, "Device", options=tuple((d, d) for d in DEVICES)),
       check=_device),
    _s("max_sequence_length", int, None, "T5 tokens of the prompt (FLUX, SD3; default: the "
       "model's, FLUX.1-dev 512, schnell 256, SD3 256)",
       W("integer", "more", 35, "T5 tokens", "model default", beside=True), optional=True,
       low=1, high=MAX_SEQUENCE_LENGTH),
    _s("cpu_offload", bool, False, "model CPU offload (diffusers enable_model_cpu_offload): "
       "each model moves to the GPU only while it runs; less memory, slower",
       W("toggle", "more", 65, "CPU offload", options=(("off", False), ("on", True))),
       affects_image=False, cli=Cli("--cpu-offload", action="store_true")),
    _s("text_encoder_quant", str, "none", "quantize the T5 text encoder's weights with torchao "
       f"(FLUX, SD3; CUDA): {' | '.join(TEXT_ENCODER_QUANTS)}",
       W("select", "more", 85, "T5 quant", beside=True), choices=TEXT_ENCODER_QUANTS,
       check=_one_of("text_encoder_quant", TEXT_ENCODER_QUANTS), affects_image=False),
    # run control: where and how the run happens, not what it computes
    _s("profile", str, None, "profile name (see profiles/) or a path to a .toml file; flags "
       "override it", W("profile", "main", 10, "Profile", "(none)"), optional=True,
       in_profiles=False, affects_image=False, sweepable=False,
       cli=Cli("--profile", default=None)),
    _s("python", str, None, "interpreter for the child process (e.g. a separate venv with "
       "nexfort)", W("text", "more", 190, "Python", "child interpreter"), optional=True,
       affects_image=False, sweepable=False),
    _s("timeout_s", float, None, "stop the run after this many seconds",
       W("number", "more", 145, "Timeout s", "none"), flag="--timeout", optional=True,
       check=_timeout, affects_image=False, sweepable=False),
    _s("trust_remote_code", bool, False, "allow custom pipelines and non-safetensors weights",
       W("toggle", "more", 180, "Trust code", options=(("refused", False),
                                                         ("trusted", True))),
       affects_image=False, cli=Cli("--trust-remote-code", action="store_true")),
    _s("compile_cache_dir", str, None, "compile cache folder for this run (default: "
       "$DIFFBENCH_CACHE_DIR/compile/[<profile>__]<model>__<compiler>, else the user cache "
       "dir)", W("text", "more", 200, "Cache dir", "compile cache folder"), optional=True,
       affects_image=False),
)
