"""Quantization of the denoiser's linear layers through torchao (``--quantize``).

Modes (``RunConfig.quantize``):

- ``int8wo``: int8 weight-only (torchao Int8WeightOnlyConfig / int8_weight_only).
- ``int8dq``: int8 dynamic activations, int8 weights (Int8DynamicActivationInt8WeightConfig).
- ``fp8dq``: float8 (e4m3) dynamic activations and weights, per-row scales
  (Float8DynamicActivationFloat8WeightConfig); needs CUDA compute capability >= 8.9.

These are lossy: report the output error. They pay off under torch.compile, which fuses the
(de)quantization into the matmuls; eager torchao kernels are slower than bf16.

``quantize_config`` keys (as OneDiff's ``quantize_pipe``):

- ``quant_type``: OneDiff's name for the recipe ("int8_weightonly", "int8_dynamic",
  "fp8_e4m3_e4m3_dynamic"; or our mode names); must agree with ``--quantize`` when both given.
- ``modules`` (list of pipeline component names, default ["unet"]: the family's denoiser, UNet
  or transformer — "transformer" names it too; "controlnet" allowed).
- ``ignores`` (list of substrings of module names to leave in bf16, default []).
- ``min_features`` (int, default 0): leave linear layers with in*out features below this in
  bf16 (small matmuls lose more to the quantize step than they gain).
- ``coordinate_descent_tuning`` (bool, default false): let torchao apply its recommended
  inductor settings for the whole process (its configs' ``set_inductor_config``, torchao's
  ``recommended_inductor_config_setter``: coordinate-descent tuning of every Triton kernel in
  all directions, float32 matmul precision "high"). Off by default: on the H200 the stalled
  warmups of compile + fp8/int8 (cut off at their time caps) sat in inductor's
  ``coordinate_descent_tuner.autotune``, and the reference notes record an SDXL UNet compile
  with that tuning running for many minutes (benchmarks/RESULTS.md, "UNet step alone").
  diffbench then asks torchao not to touch inductor,
  sets the one harmless recommendation itself (fusing int8 matmuls with their scale), and puts
  back the tuning flags and the float32 precision should an older torchao set them anyway.

Under ``--compiler cudagraph`` (which needs ``regional`` here) only the linear layers inside the
compiled blocks of the denoiser (``spec.blocks``) are quantized, and the ControlNet is left unquantized: torchao's
eager kernels synchronise with the host and cannot be captured in a CUDA graph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from diffbench.engine import extras
from diffbench.engine.accelerators import versions
from diffbench.engine.accelerators.base import STACKED, Accelerator
from diffbench.engine.config import QUANTIZE_MODES
from diffbench.engine.errors import AcceleratorUnavailableError, ConfigError
from diffbench.engine.events import LogMessage

if TYPE_CHECKING:  # pragma: no cover
    from diffbench.engine.config import RunConfig
    from diffbench.engine.accelerators.base import AcceleratorState
    from diffbench.engine.events import EventCallback
    from diffbench.engine.families import DenoiserSpec

#: OneDiff quant_type names -> our modes.
QUANT_TYPES = {
    "int8wo": "int8wo", "int8_weightonly": "int8wo", "int8_weight_only": "int8wo",
    "int8dq": "int8dq", "int8_dynamic": "int8dq",
    "fp8dq": "fp8dq", "fp8_e4m3_e4m3_dynamic": "fp8dq", "float8_dynamic": "fp8dq",
}
CONFIG_KEYS = ("quant_type", "modules", "ignores", "min_features", "coordinate_descent_tuning")
#: Inductor flags torchao's recommended_inductor_config_setter turns on that diffbench keeps off
#: (torchao/quantization/utils.py).
TUNING_FLAGS = ("coordinate_descent_tuning", "coordinate_descent_check_all_directions")
MODULES = ("unet", "transformer", "controlnet", "vae", "text_encoder", "text_encoder_2")
DENOISER = ("unet", "transformer")  # either name means the family's denoiser
#: What to install when torchao is missing (the package's extra).
INSTALL_HINT = "pip install 'diffbench[quantize]'"


def available(mode: str, device: str = "cuda") -> tuple[bool, str]:
    """(ok, reason) for quantization ``mode`` on ``device`` (reads metadata; fp8 on CUDA
    imports torch to read the compute capability). The device is judged first: fp8 on a CPU
    is refused whether or not torchao is installed."""
    if mode == "none":
        return True, ""
    if mode == "fp8dq":
        if not str(device).startswith("cuda"):
            return False, "float8 needs a CUDA GPU with compute capability >= 8.9"
        import torch

        if not torch.cuda.is_available():
            return False, "float8 needs a CUDA GPU with compute capability >= 8.9"
        index = torch.device(device).index or 0
        capability = torch.cuda.get_device_capability(index)
        if capability < (8, 9):
            return False, (f"float8 needs compute capability >= 8.9; "
                           f"{torch.cuda.get_device_name(index)} has "
                           f"{capability[0]}.{capability[1]}")
    if versions.dist_version("torchao") is None or extras.missing("torchao"):
        return False, f"torchao is not installed ({extras.EXTRAS['torchao'].command()})"
    return True, ""


def parse(cfg: "RunConfig") -> tuple[dict, list[str]]:
    """Resolved settings and user notices.

    Returns:
        ({"mode", "modules", "ignores", "min_features", "coordinate_descent_tuning",
        "graphed", "unet_blocks"}, notices): ``graphed`` is True under ``--compiler
        cudagraph``, where only linear layers inside the compiled UNet blocks are quantized;
        ``unet_blocks`` is then the compiled block classes (None = the model's declared
        repeated blocks).

    Raises:
        ConfigError: wrong types, an unknown quant_type, one that contradicts --quantize, a bad
            compiler_config, or cudagraph without regional compilation or with nothing left to
            quantize.
    """
    config = cfg.quantize_config
    notices = [f"ignored: unknown quantize_config key {key!r} (known: {', '.join(CONFIG_KEYS)})"
               for key in config if key not in CONFIG_KEYS]
    mode = cfg.quantize
    quant_type = config.get("quant_type")
    if quant_type is not None:
        if quant_type not in QUANT_TYPES:
            raise ConfigError(f"quantize_config quant_type must be one of "
                              f"{', '.join(QUANT_TYPES)}, got {quant_type!r}")
        if mode != "none" and QUANT_TYPES[quant_type] != mode:
            raise ConfigError(f"quantize_config quant_type {quant_type!r} contradicts "
                              f"--quantize {mode}")
    if mode == "none" and config:
        notices.append("ignored: quantize_config given without --quantize")
    modules = config.get("modules", ["unet"])
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        raise ConfigError(f"quantize_config modules must be a list of names, got {modules!r}")
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        raise ConfigError(f"quantize_config modules: unknown {', '.join(unknown)} "
                          f"(choose from {', '.join(MODULES)})")
    ignores = config.get("ignores", [])
    if not isinstance(ignores, list) or not all(isinstance(m, str) for m in ignores):
        raise ConfigError(f"quantize_config ignores must be a list of strings, got {ignores!r}")
    min_features = config.get("min_features", 0)
    if isinstance(min_features, bool) or not isinstance(min_features, int) or min_features < 0:
        raise ConfigError(f"quantize_config min_features must be an integer >= 0, "
                          f"got {min_features!r}")
    tuning = config.get("coordinate_descent_tuning", False)
    if not isinstance(tuning, bool):
        raise ConfigError(f"quantize_config coordinate_descent_tuning must be true or false, "
                          f"got {tuning!r}")
    graphed = mode != "none" and cfg.compiler == "cudagraph"
    blocks = None
    if graphed:
        blocks = _graphed_blocks(cfg)
        if "controlnet" in modules:
            notices.append("quantize with cudagraph leaves the ControlNet unquantized (its "
                           "quantized layers would run torchao's eager kernels inside a graph)")
            modules = [m for m in modules if m != "controlnet"]
            if not modules:
                raise ConfigError("quantize_config modules: nothing left to quantize under "
                                  "--compiler cudagraph (the ControlNet runs inside a CUDA "
                                  "graph); add \"unet\" or use --compiler compile")
        if any(m in DENOISER for m in modules):
            what = ", ".join(blocks) if blocks else "repeated-block"
            named = {"unet": "UNet", "transformer": "transformer"}.get(
                next(m for m in modules if m in DENOISER)) if "modules" in config else "denoiser"
            notices.append(f"quantize {mode} with cudagraph: only the linear layers inside the "
                           f"{named}'s compiled {what} modules are quantized (torchao's eager "
                           f"kernels cannot be captured in a CUDA graph)")
    if mode != "none" and cfg.compiler == "none":
        notices.append(f"quantize {mode} without torch.compile runs torchao's unfused kernels "
                       f"(usually slower than bf16); add --compiler compile")
    return ({"mode": mode, "modules": modules, "ignores": ignores,
             "min_features": min_features, "coordinate_descent_tuning": tuning,
             "graphed": graphed, "unet_blocks": blocks}, notices)


def _graphed_blocks(cfg: "RunConfig") -> "tuple[str, ...] | None":
    """Block classes a ``cudagraph`` run compiles (its UNet's quantizable part): its
    ``regional_blocks``, or None for the model's declared repeated blocks.

    Raises:
        ConfigError: cudagraph without regional compilation: every quantized layer would run
            torchao's eager kernels, which synchronise with the host and cannot be captured
            (seen on the H200: "operation not permitted when stream is capturing").
    """
    from diffbench.engine.accelerators.options import parse_compile_options

    opts = parse_compile_options(cfg.compiler_config, "cudagraph")[0]
    if not opts.regional:
        raise ConfigError("quantize with --compiler cudagraph needs regional compilation "
                          "(compiler_config {\"regional\": true}): torchao's eager kernels "
                          "cannot be captured in a CUDA graph")
    return opts.regional_blocks


def validate(cfg: "RunConfig") -> list[str]:
    """Notices for quantize settings; raises ConfigError on wrong types."""
    return parse(cfg)[1]


def _torchao_config(mode: str, set_inductor_config: bool = True) -> Any:
    """The torchao config object (new API) or factory result (old API) for ``mode``;
    ``set_inductor_config`` is passed where the config class has that field (torchao's
    switch for its recommended inductor settings)."""
    import dataclasses

    config = _torchao_recipe(mode)
    if dataclasses.is_dataclass(config) and \
            "set_inductor_config" in {field.name for field in dataclasses.fields(config)}:
        config = dataclasses.replace(config, set_inductor_config=set_inductor_config)
    return config


def _torchao_recipe(mode: str) -> Any:
    import torchao.quantization as tq

    if mode == "int8wo":
        if hasattr(tq, "Int8WeightOnlyConfig"):
            return tq.Int8WeightOnlyConfig()
        return tq.int8_weight_only()
    if mode == "int8dq":
        if hasattr(tq, "Int8DynamicActivationInt8WeightConfig"):
            return tq.Int8DynamicActivationInt8WeightConfig()
        return tq.int8_dynamic_activation_int8_weight()
    if mode == "fp8dq":
        granularity = tq.PerRow() if hasattr(tq, "PerRow") else None
        if hasattr(tq, "Float8DynamicActivationFloat8WeightConfig"):
            return tq.Float8DynamicActivationFloat8WeightConfig(granularity=granularity) \
                if granularity is not None else tq.Float8DynamicActivationFloat8WeightConfig()
        return tq.float8_dynamic_activation_float8_weight(granularity=granularity)
    raise ConfigError(f"unknown quantize mode {mode!r}")


def _tuning_state() -> "dict | None":
    """The inductor tuning flags and torch's float32 matmul precision, or None without
    inductor."""
    try:
        import torch
        import torch._inductor.config as inductor_config
    except Exception:  # a torch without inductor: nothing to protect
        return None
    state = {flag: getattr(inductor_config, flag) for flag in TUNING_FLAGS
             if hasattr(inductor_config, flag)}
    try:
        state["float32_matmul_precision"] = torch.get_float32_matmul_precision()
    except RuntimeError:  # torch >= 2.9 refuses the read once old and new precision APIs mixed
        pass
    return state


def restore_tuning(state: "dict | None") -> list[str]:
    """Put back what :func:`_tuning_state` read; the names of the settings that had changed."""
    if state is None:
        return []
    import torch
    import torch._inductor.config as inductor_config

    changed = []
    for name, value in state.items():
        if name == "float32_matmul_precision":
            try:
                if torch.get_float32_matmul_precision() != value:
                    torch.set_float32_matmul_precision(value)
                    changed.append(name)
            except RuntimeError:  # see _tuning_state
                pass
        elif getattr(inductor_config, name) != value:
            setattr(inductor_config, name, value)
            changed.append(name)
    return changed


def _block_prefixes(spec: "DenoiserSpec", denoiser: Any,
                    blocks: "tuple[str, ...] | None") -> tuple[str, ...]:
    """"fqn." prefixes of the denoiser's modules of the compiled block classes (None = the
    model's declared ``_repeated_blocks``, as diffusers' compile_repeated_blocks compiles)."""
    return tuple(f"{fqn}." for fqn, _module in spec.blocks(denoiser, blocks))


def _component(pipe: Any, spec: "DenoiserSpec", name: str) -> Any:
    """The pipeline component ``name`` of quantize_config modules ("unet" = the denoiser)."""
    return spec.denoiser(pipe) if name in DENOISER + (spec.denoiser_attr,) else \
        getattr(pipe, name, None)


def apply(pipe: Any, spec: "DenoiserSpec", cfg: "RunConfig", emit: "EventCallback",
          state: "AcceleratorState | None" = None) -> Any:
    """Quantize the configured components' linear layers in place; return ``pipe``.

    Raises:
        AcceleratorUnavailableError: torchao missing or failing to import (one line).
        ConfigError: as :func:`parse`.
    """
    settings, _ = parse(cfg)
    if settings["mode"] == "none":
        return pipe
    tuning = settings["coordinate_descent_tuning"]
    import torch

    extras.require("torchao", AcceleratorUnavailableError)
    try:
        from torchao.quantization import quantize_
        config = _torchao_config(settings["mode"], set_inductor_config=tuning)
    except ImportError as exc:
        raise AcceleratorUnavailableError(f"torchao failed to import: {exc} "
                                          f"({INSTALL_HINT})") from None
    ignores, min_features = settings["ignores"], settings["min_features"]
    inside: "tuple[str, ...] | None" = None
    denoiser = spec.denoiser(pipe)
    if settings["graphed"] and isinstance(denoiser, torch.nn.Module):
        if settings["unet_blocks"] is not None:
            from diffbench.engine.accelerators.compile import check_blocks

            check_blocks(denoiser, settings["unet_blocks"])  # the compiler's own message
        inside = _block_prefixes(spec, denoiser, settings["unet_blocks"])
        if not inside and any(m in DENOISER for m in settings["modules"]):
            raise AcceleratorUnavailableError(
                f"quantize under cudagraph: {type(denoiser).__name__} has no compiled blocks "
                f"to quantize (it declares no repeated blocks; name them with regional_blocks)")

    def keep_in(component: str) -> Any:
        def keep(module: Any, fqn: str) -> bool:
            if not isinstance(module, torch.nn.Linear):
                return False
            if any(part in fqn for part in ignores):
                return False
            if inside is not None and component in DENOISER and not fqn.startswith(inside):
                return False
            return module.in_features * module.out_features >= min_features
        return keep

    done, total = [], 0
    before = _tuning_state()
    try:
        for name in settings["modules"]:
            module = _component(pipe, spec, name)
            if not isinstance(module, torch.nn.Module):
                continue
            keep = keep_in(name)
            count = sum(1 for fqn, sub in module.named_modules() if keep(sub, fqn))
            quantize_(module, config, filter_fn=keep)
            label = spec.denoiser_label if name in DENOISER else name
            done.append(f"{label} ({count} linear layers)")
            total += count
    except BaseException:
        # An in-process caller must not inherit torchao's settings, and the error that
        # stopped the quantization is the one to report.
        if not tuning:
            try:
                restore_tuning(before)
            except Exception:  # pragma: no cover - setattr on a config module
                pass
        raise
    restored = [] if tuning else restore_tuning(before)
    emit(LogMessage("info", f"torchao {settings['mode']}: quantized {', '.join(done) or 'nothing'}"))
    if not tuning and settings["mode"] == "int8dq" and total and _fuse_int_mm_with_scale():
        emit(LogMessage("info", "inductor: int8 matmuls fused with their scale "
                                "(force_fuse_int_mm_with_mul, as torchao recommends)"))
    if restored:
        emit(LogMessage("info", f"put back inductor settings torchao had changed: "
                                f"{', '.join(restored)} (coordinate-descent tuning makes the "
                                f"UNet's compile take many minutes; quantize_config "
                                f"coordinate_descent_tuning = true keeps torchao's)"))
    return pipe


def _fuse_int_mm_with_scale() -> bool:
    """torchao's one recommendation that costs no compile time: fuse int8 matmuls with their
    scale multiplication (inductor's force_fuse_int_mm_with_mul, process-wide). True if set."""
    try:
        import torch._inductor.config as inductor_config
    except Exception:  # no inductor: nothing to fuse
        return False
    if not hasattr(inductor_config, "force_fuse_int_mm_with_mul"):
        return False
    inductor_config.force_fuse_int_mm_with_mul = True
    return True


class Quantize(Accelerator):
    """``--quantize``: torchao quantization of the denoiser's linear layers (lossy)."""

    name = "quantize"
    kind = STACKED
    lossless = False
    category = "quantize"
    config_keys = CONFIG_KEYS
    description = "torchao quantization of the denoiser's linear layers"
    choices = tuple((f"quantize {mode}", {"quantize": mode})
                    for mode in QUANTIZE_MODES if mode != "none")

    def available(self, device: str = "cuda") -> tuple[bool, str]:
        return available("int8wo", device)

    def available_for(self, cfg: "RunConfig", device: str) -> tuple[bool, str]:
        return available(cfg.quantize, device)

    def requested(self, cfg: "RunConfig") -> bool:
        # quantize_config alone is validated too (its notice says it is ignored).
        return cfg.quantize != "none" or bool(cfg.quantize_config)

    def describe(self, cfg: "RunConfig") -> str:
        return f"quantize {cfg.quantize!r}"

    def validate(self, cfg: "RunConfig") -> list[str]:
        return validate(cfg)

    def apply(self, pipe: Any, spec: "DenoiserSpec", cfg: "RunConfig", emit: "EventCallback",
              state: "AcceleratorState | None" = None) -> Any:
        return apply(pipe, spec, cfg, emit, state)
