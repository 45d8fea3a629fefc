"""``compile`` and ``compile-max-autotune``: torch.compile of the denoiser (UNet or
transformer, from the family's spec) and the VAE decode.

As OneDiff's benchmark script (``--compiler compile`` / ``compile-max-autotune``), plus the
options users of diffusers reach for: channels_last, fused QKV, regional compilation
(``compile_repeated_blocks``, diffusers >= 0.35) and torch.compile's modes. Keys are parsed by
:mod:`diffbench.engine.accelerators.options`. Compilation itself happens lazily in the first warmup call.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Optional

from diffbench.engine.accelerators.base import Accelerator
from diffbench.engine.accelerators import versions
from diffbench.engine.accelerators.options import CompileOptions, parse_compile_options
from diffbench.engine.errors import AcceleratorUnavailableError
from diffbench.engine.events import LogMessage

if TYPE_CHECKING:  # pragma: no cover
    from diffbench.engine.accelerators.base import AcceleratorState
    from diffbench.engine.config import RunConfig
    from diffbench.engine.events import EventCallback
    from diffbench.engine.families import DenoiserSpec


#: Modes whose inductor CUDA graphs break under regional compilation -> the mode used instead.
REGIONAL_MODE_FALLBACK = {"max-autotune": "max-autotune-no-cudagraphs",
                          "reduce-overhead": "default"}


def prepare_modules(pipe: Any, spec: "DenoiserSpec", opts: CompileOptions,
                    emit: "EventCallback", state: "AcceleratorState") -> None:
    """Apply channels_last and fused QKV to the pipeline's denoiser, VAE and ControlNet (in
    place), once per pipeline (``state.modules_prepared``): the compiler's prepare() runs
    before step caching/quantization and its apply() asks again.

    Raises:
        AcceleratorUnavailableError: fuse_qkv asked for but this diffusers cannot fuse.
    """
    if state.modules_prepared:
        return
    state.modules_prepared = True
    import torch

    parts = {spec.denoiser_label: spec.denoiser(pipe),
             "VAE": getattr(pipe, spec.vae_attr, None),
             "ControlNet": getattr(pipe, "controlnet", None)}
    if opts.channels_last:
        for module in parts.values():
            if isinstance(module, torch.nn.Module):
                module.to(memory_format=torch.channels_last)
        denoiser = parts[spec.denoiser_label]
        if isinstance(denoiser, torch.nn.Module) and \
                not any(p.dim() == 4 for p in denoiser.parameters()):
            # a diffusion transformer has no convolution past its patch embedding
            emit(LogMessage("info", f"channels_last: the {spec.denoiser_label} has no 4-D "
                                    f"weights (no effect there); applied to the VAE"))
    if opts.fuse_qkv:
        fused = []
        for label in (spec.denoiser_label, "VAE"):
            fuse = getattr(parts[label], "fuse_qkv_projections", None)
            if fuse is None:
                continue
            fuse()
            fused.append(label)
        if not fused:
            raise AcceleratorUnavailableError(
                f"fuse_qkv: this diffusers' {spec.denoiser_label}/VAE have no "
                f"fuse_qkv_projections; upgrade diffusers or drop fuse_qkv")
        emit(LogMessage("info", f"fused QKV projections in {', '.join(fused)}"))


def compile_module(module: Any, kwargs: dict) -> Any:
    """Compile ``module`` in place (``nn.Module.compile``, torch >= 2.2) so the pipeline keeps
    its own module object (LoRA, step caching and CUDA graphs still see the real class);
    older torch gets the ``torch.compile`` wrapper. Returns the module to store back."""
    import torch

    if isinstance(module, torch.nn.Module) and hasattr(torch.nn.Module, "compile"):
        module.compile(**kwargs)
        return module
    return torch.compile(module, **kwargs)


#: Dynamo's recompile cap per code object under regional compilation: every distinct input
#: shape of a block class compiles once (SDXL's ResnetBlock2D has more than torch's default 8).
REGIONAL_RECOMPILE_LIMIT = 64


def _raise_recompile_limit(limit: int) -> None:
    """Raise Dynamo's per-code-object recompile cap to at least ``limit`` for the rest of the
    process (never lowers it; a cap hit makes Dynamo run the block eagerly from then on)."""
    import torch._dynamo.config as dynamo_config

    for knob in ("recompile_limit", "cache_size_limit"):  # the name since torch 2.6, before
        if hasattr(dynamo_config, knob) and getattr(dynamo_config, knob) < limit:
            setattr(dynamo_config, knob, limit)


def check_blocks(denoiser: Any, blocks: "tuple[str, ...]") -> None:
    """Raise unless ``denoiser`` has modules of every class in ``blocks``
    (``regional_blocks``).

    Raises:
        AcceleratorUnavailableError: one line naming the missing classes and close names.
    """
    present = {type(module).__name__ for module in denoiser.modules()}
    missing = [name for name in blocks if name not in present]
    if missing:
        import difflib

        hints = list(dict.fromkeys(hint for name in missing  # closest first
                                   for hint in difflib.get_close_matches(name, present, n=2)))
        raise AcceleratorUnavailableError(
            f"regional_blocks: {type(denoiser).__name__} has no {', '.join(missing)} modules"
            + (f" (did you mean {', '.join(hints)}?)" if hints else ""))


def compile_regional(denoiser: Any, kwargs: dict,
                     blocks: "tuple[str, ...] | None" = None,
                     fallback: "tuple[str, ...]" = ()) -> int:
    """Compile only the denoiser's repeated blocks in place; the number of modules compiled.

    Also raises Dynamo's recompile cap to :data:`REGIONAL_RECOMPILE_LIMIT` for the process
    (each distinct input shape of a block class is one more compile of the same code).

    Args:
        denoiser: the UNet or transformer (diffusers ModelMixin; ``spec.denoiser(pipe)``).
        kwargs: torch.compile keyword arguments.
        blocks: class names to compile; None = the model's declared repeated blocks
            (diffusers' ``compile_repeated_blocks``, ``_repeated_blocks``).
        fallback: the family's repeated block classes (``spec.repeated_blocks``), compiled
            when ``blocks`` is None and the model declares none (SD3's transformer in
            diffusers 0.42 declares no ``_repeated_blocks``).

    Raises:
        AcceleratorUnavailableError: diffusers too old, the model declares no repeated blocks,
            or no module of the named classes exists (the message suggests close names).
    """
    if blocks is not None:
        check_blocks(denoiser, blocks)
        _raise_recompile_limit(REGIONAL_RECOMPILE_LIMIT)
        targets = [module for module in denoiser.modules() if type(module).__name__ in blocks]
        for module in targets:
            module.compile(**kwargs)
        return len(targets)
    if fallback and not getattr(denoiser, "_repeated_blocks", None):
        return compile_regional(denoiser, kwargs, tuple(fallback))
    method = getattr(denoiser, "compile_repeated_blocks", None)
    if method is None:
        raise AcceleratorUnavailableError(
            "regional compilation needs diffusers >= 0.35 (ModelMixin.compile_repeated_blocks)")
    if not getattr(denoiser, "_repeated_blocks", None):
        raise AcceleratorUnavailableError(
            f"regional compilation: {type(denoiser).__name__} declares no repeated blocks")
    _raise_recompile_limit(REGIONAL_RECOMPILE_LIMIT)
    method(**kwargs)
    return sum(1 for module in denoiser.modules()
               if type(module).__name__ in denoiser._repeated_blocks)


class CompileOptionsAccelerator(Accelerator):
    """A backend whose compiler_config parses into :class:`CompileOptions` (``options``):
    its notices validate the config, and channels_last / fused QKV are applied from it."""

    def options(self, cfg: "RunConfig") -> tuple[CompileOptions, list[str]]:
        """(options, notices) for ``cfg``. Raises ConfigError for a bad value."""
        raise NotImplementedError

    def validate(self, cfg: "RunConfig") -> list[str]:
        return self.options(cfg)[1]

    def compiles(self, opts: CompileOptions) -> bool:
        """Whether this backend compiles with these options (then the compile cache is used)."""
        return True

    def prepare(self, pipe: Any, spec: "DenoiserSpec", cfg: "RunConfig",
                emit: "EventCallback", state: "AcceleratorState") -> None:
        """The compile cache folder (compiling runs), then channels_last and fused QKV, before
        step caching/quantization touch the modules."""
        opts = self.options(cfg)[0]
        if self.compiles(opts) and state.compile_cache is None:
            from diffbench.engine.accelerators import compile_cache

            state.compile_cache = compile_cache.prepare(cfg, emit)
        prepare_modules(pipe, spec, opts, emit, state)

    def begin_apply(self, pipe: Any, spec: "DenoiserSpec", cfg: "RunConfig",
                    emit: "EventCallback", state: "AcceleratorState | None"
                    ) -> "tuple[CompileOptions, AcceleratorState]":
        """The start of every apply(): parse the options, make a state when the caller passed
        none, apply channels_last / fused QKV (once per pipeline). Returns (options, state).

        Raises:
            ConfigError: a bad compiler_config value.
            AcceleratorUnavailableError: fuse_qkv asked for but this diffusers cannot fuse.
        """
        from diffbench.engine.accelerators.base import AcceleratorState

        opts = self.options(cfg)[0]
        state = state if state is not None else AcceleratorState()
        prepare_modules(pipe, spec, opts, emit, state)
        return opts, state


class TorchCompile(CompileOptionsAccelerator):
    """``--compiler compile``: torch.compile of the denoiser (and ControlNet) and the VAE
    decode."""

    name = "compile"
    default_mode: Optional[str] = None
    description = "torch.compile (inductor) of the denoiser and VAE decode"
    config_keys = ("mode", "fullgraph", "dynamic", "memory_format", "fuse_qkv", "regional",
                   "regional_blocks", "compile_vae", "backend")

    def available(self, device: str = "cuda") -> tuple[bool, str]:
        torch_version = versions.torch_version()
        if torch_version is None:
            return False, "torch is not installed"
        if not versions.torch_at_least(2, 0):
            return False, f"torch.compile needs torch >= 2.0, this is torch {torch_version}"
        ok, reason = versions.dynamo_supports_this_python()
        if not ok:
            return False, reason
        if str(device).startswith("cuda"):
            if versions.dist_version("triton") is None and \
                    versions.dist_version("pytorch-triton") is None:
                return False, ("inductor needs Triton for CUDA and it is not installed "
                               "(pip install triton matching your torch)")
        elif versions.cxx_compiler() is None:
            return False, ("inductor's CPU backend needs a C++ compiler (g++ or clang++) on "
                           "PATH, or set CXX")
        return True, ""

    def options(self, cfg: "RunConfig") -> tuple[CompileOptions, list[str]]:
        """(options, notices) from cfg.compiler_config. Raises ConfigError on wrong types."""
        opts, notices = parse_compile_options(cfg.compiler_config, self.name, self.default_mode)
        if opts.regional and opts.mode in REGIONAL_MODE_FALLBACK:
            # Inductor's CUDA graphs (cudagraph trees) per block fail here: each block's
            # graph output is overwritten by the next block's replay while the residual
            # stream still holds it (seen on the H200: "accessing tensor output of CUDAGraphs
            # that has been overwritten by a subsequent run").
            fallback = REGIONAL_MODE_FALLBACK[opts.mode]
            notices.append(f"regional compilation cannot use mode {opts.mode}'s CUDA graphs; "
                           f"using mode {fallback} (for CUDA graphs over regional compilation "
                           f"use --compiler cudagraph with {{\"regional\": true}})")
            opts = dataclasses.replace(opts, mode=fallback)
        return opts, notices

    def apply(self, pipe: Any, spec: "DenoiserSpec", cfg: "RunConfig", emit: "EventCallback",
              state: "AcceleratorState | None" = None) -> Any:
        import torch

        opts, state = self.begin_apply(pipe, spec, cfg, emit, state)
        # Convolutions with 1x1 kernels as matmuls: a known win on diffusion UNets
        # (PyTorch's diffusion-fast recipe); harmless where inductor is not the backend.
        if opts.backend == "inductor":
            try:
                import torch._inductor.config as inductor_config

                inductor_config.conv_1x1_as_mm = True
            except Exception:  # an older torch without the knob
                pass
        kwargs = opts.torch_kwargs()
        compiled = []
        label = spec.denoiser_label
        if opts.regional:
            count = compile_regional(spec.denoiser(pipe), kwargs, opts.regional_blocks,
                                     spec.repeated_blocks)
            kinds = "+".join(opts.regional_blocks) if opts.regional_blocks else "repeated"
            compiled.append(f"{label} ({count} {kinds} blocks)")
        else:
            spec.set_denoiser(pipe, compile_module(spec.denoiser(pipe), kwargs))
            compiled.append(label)
        controlnet = getattr(pipe, "controlnet", None)
        if isinstance(controlnet, torch.nn.Module):
            pipe.controlnet = compile_module(controlnet, kwargs)
            compiled.append("ControlNet")
        vae = getattr(pipe, spec.vae_attr, None)
        if opts.compile_vae and vae is not None and hasattr(vae, "decoder"):
            vae.decoder = compile_module(vae.decoder, kwargs)
            compiled.append("VAE decoder")
        emit(LogMessage("info", f"torch.compile ({opts.describe()}): {', '.join(compiled)}; "
                                f"compiling in the first warmup call"))
        return pipe


class TorchCompileMaxAutotune(TorchCompile):
    """``--compiler compile-max-autotune``: as ``compile`` with mode max-autotune (autotunes
    matmul/conv kernels and uses CUDA graphs: longest warmup, fastest steps)."""

    name = "compile-max-autotune"
    default_mode = "max-autotune"
    description = "torch.compile mode max-autotune of the denoiser and VAE decode"

