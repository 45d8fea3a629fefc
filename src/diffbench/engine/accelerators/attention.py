"""``--attention-backend`` and ``--fuse-qkv``: the denoiser's attention kernels and fused
query/key/value projections (both lossless up to float rounding, as a compiler is).

Attention backend (diffusers' ``ModelMixin.set_attention_backend``, the attention dispatcher of
``diffusers.models.attention_dispatch``; diffusers docs: optimization/attention_backends):

=============  =========================  =================================================
setting        diffusers backend          needs
=============  =========================  =================================================
native         ``native``                 torch SDPA, torch picks the kernel
flash          ``_native_flash``          torch SDPA's FlashAttention kernel (CUDA: fp16/bf16)
cudnn          ``_native_cudnn``          torch SDPA's cuDNN kernel: CUDA, cuDNN >= 9, sm80+
efficient      ``_native_efficient``      torch SDPA's memory-efficient kernel: CUDA
math           ``_native_math``           torch SDPA's reference kernel (anywhere; slow)
flash-attn     ``flash``                  the flash-attn package (FlashAttention-2), CUDA
flash3         ``_flash_3``               FlashAttention-3 (flash_attn_interface), sm90
=============  =========================  =================================================

The backend is set on the model's attention processors only: diffusers' setter also changes
the process-wide active backend, which is put back so other models in the process keep theirs.
Models whose processors are not on the dispatcher (the UNets' ``AttnProcessor2_0``, SD3's
``JointAttnProcessor2_0`` in diffusers 0.42) are refused with one line.

Fused QKV: ``fuse_qkv_projections()`` of the denoiser (and the VAE where it has one): one
matmul instead of three per attention layer. Runs before quantization (table order), so the
fused weights are the ones quantized.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from diffbench.engine.accelerators import versions
from diffbench.engine.accelerators.base import STACKED, Accelerator
from diffbench.engine.errors import AcceleratorUnavailableError
from diffbench.engine.events import LogMessage

if TYPE_CHECKING:  # pragma: no cover
    from diffbench.engine.accelerators.base import AcceleratorState
    from diffbench.engine.config import RunConfig
    from diffbench.engine.events import EventCallback
    from diffbench.engine.families import DenoiserSpec

#: setting -> diffusers AttentionBackendName value.
BACKENDS = {"native": "native", "flash": "_native_flash", "cudnn": "_native_cudnn",
            "efficient": "_native_efficient", "math": "_native_math", "flash-attn": "flash",
            "flash3": "_flash_3"}
CUDA_ONLY = ("cudnn", "efficient", "flash-attn", "flash3")
HALF_ONLY = ("flash", "cudnn", "flash-attn", "flash3")  # on CUDA: fp16/bf16 inputs only


def _capability(device: str) -> "tuple[int, int] | None":
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_capability(torch.device(device).index or 0)


def available(name: str, device: str = "cuda", dtype: str = "auto") -> tuple[bool, str]:
    """(ok, reason) for attention backend ``name`` on ``device`` with RunConfig ``dtype``
    ("auto" is float16 on CUDA). Reads package metadata; on CUDA imports torch for the
    compute capability and the cuDNN version."""
    if name == "default":
        return True, ""
    if name not in BACKENDS:
        return False, f"unknown attention backend {name!r}"
    cuda = str(device).startswith("cuda")
    if name in CUDA_ONLY and not cuda:
        return False, f"attention backend {name} needs a CUDA GPU (this run is on the CPU)"
    if name == "flash-attn" and versions.dist_version("flash-attn") is None:
        return False, "attention backend flash-attn needs the flash-attn package " \
                      "(pip install flash-attn)"
    if name == "flash3" and versions.dist_version("flash_attn_3") is None:
        return False, "attention backend flash3 needs FlashAttention-3 (flash_attn_interface, " \
                      "built from the flash-attention repo's hopper/ folder)"
    if not cuda:
        return True, ""
    if name in HALF_ONLY and dtype == "float32":
        return False, f"attention backend {name} runs fp16/bf16 only; use --dtype bfloat16"
    capability = _capability(device)
    if capability is None:
        return False, "no CUDA GPU is visible"
    need = {"cudnn": (8, 0), "flash": (8, 0), "flash-attn": (8, 0), "flash3": (9, 0)}.get(name)
    if need and capability < need:
        return False, (f"attention backend {name} needs compute capability >= "
                       f"{need[0]}.{need[1]}; this GPU has {capability[0]}.{capability[1]}")
    if name == "cudnn":
        import torch

        version = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        if not version or version < 90000:
            return False, f"attention backend cudnn needs cuDNN >= 9 (torch has {version})"
    return True, ""


def _processors(denoiser: Any) -> list:
    """The attention processors of ``denoiser`` that take a dispatcher backend."""
    return [m.processor for m in denoiser.modules()
            if hasattr(getattr(m, "processor", None), "_attention_backend")]


def apply_backend(pipe: Any, spec: "DenoiserSpec", cfg: "RunConfig",
                  emit: "EventCallback") -> Any:
    """Set ``cfg.attention_backend`` on the denoiser's attention processors; return ``pipe``.

    Raises:
        AcceleratorUnavailableError: the model's processors are not on diffusers' dispatcher,
            or diffusers refuses the backend (a missing package), in one line.
    """
    import logging

    from diffusers.models.attention_dispatch import _AttentionBackendRegistry

    denoiser = spec.denoiser(pipe)
    model = type(denoiser).__name__
    targets = _processors(denoiser)
    setter = getattr(denoiser, "set_attention_backend", None)
    if setter is None or not targets:
        raise AcceleratorUnavailableError(
            f"attention_backend {cfg.attention_backend}: {model}'s attention processors are "
            f"not on diffusers' attention dispatcher (set_attention_backend has nothing to set)")
    backend = BACKENDS[cfg.attention_backend]
    previous = _AttentionBackendRegistry._active_backend
    quiet = logging.getLogger("diffusers.models.modeling_utils")  # "experimental feature"
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        setter(backend)
    except (RuntimeError, ValueError) as exc:
        raise AcceleratorUnavailableError(f"attention_backend {cfg.attention_backend}: "
                                          f"{str(exc).splitlines()[0]}") from None
    finally:
        quiet.setLevel(level)
        _AttentionBackendRegistry._active_backend = previous  # process-wide: put it back
    emit(LogMessage("info", f"attention backend {cfg.attention_backend} (diffusers {backend}) "
                            f"on {len(targets)} attention layers of the "
                            f"{spec.denoiser_label}"))
    return pipe


def apply_fused_qkv(pipe: Any, spec: "DenoiserSpec", cfg: "RunConfig",
                    emit: "EventCallback") -> Any:
    """Fuse the QKV projections of the denoiser and the VAE (once); return ``pipe``.

    Raises:
        AcceleratorUnavailableError: the denoiser has no ``fuse_qkv_projections``.
    """
    denoiser = spec.denoiser(pipe)
    fuse = getattr(denoiser, "fuse_qkv_projections", None)
    if fuse is None:
        raise AcceleratorUnavailableError(
            f"fuse_qkv: {type(denoiser).__name__} has no fuse_qkv_projections in this "
            f"diffusers")
    done = []
    parts = [(spec.denoiser_label, denoiser), ("VAE", getattr(pipe, spec.vae_attr, None))]
    for label, module in parts:
        if module is None or not hasattr(module, "fuse_qkv_projections"):
            continue
        if any(getattr(m, "fused_projections", False) for m in module.modules()):
            continue  # compiler_config fuse_qkv got there first
        module.fuse_qkv_projections()
        done.append(label)
    emit(LogMessage("info", f"fused QKV projections in {', '.join(done)}" if done else
                    "fused QKV projections: already fused (compiler_config fuse_qkv)"))
    return pipe


class AttentionBackend(Accelerator):
    """``--attention-backend``: the attention kernels of the denoiser (lossless)."""

    name = "attention"
    kind = STACKED
    category = "attention"
    config_keys = ("attention_backend",)
    description = "attention kernels of the denoiser (diffusers' set_attention_backend)"
    choices = tuple((f"attention {name}", {"attention_backend": name}) for name in BACKENDS)

    def available(self, device: str = "cuda") -> tuple[bool, str]:
        return available("native", device)

    def available_for(self, cfg: "RunConfig", device: str) -> tuple[bool, str]:
        return available(cfg.attention_backend, device, cfg.dtype)

    def requested(self, cfg: "RunConfig") -> bool:
        return cfg.attention_backend != "default"

    def describe(self, cfg: "RunConfig") -> str:
        return f"attention backend {cfg.attention_backend!r}"

    def family_reason(self, cfg: "RunConfig", spec: "DenoiserSpec") -> str:
        if spec.denoiser_attr == "unet":
            return (f"attention_backend {cfg.attention_backend}: {spec.label}'s UNet attention "
                    f"is not on diffusers' attention dispatcher; use --compiler for its "
                    f"kernels")
        return ""

    def apply(self, pipe: Any, spec: "DenoiserSpec", cfg: "RunConfig", emit: "EventCallback",
              state: "AcceleratorState | None" = None) -> Any:
        return apply_backend(pipe, spec, cfg, emit)


class FusedQKV(Accelerator):
    """``--fuse-qkv``: one QKV matmul per attention layer (lossless)."""

    name = "fuse-qkv"
    kind = STACKED
    category = "attention"
    config_keys = ("fuse_qkv",)
    description = "fused query/key/value projections (diffusers' fuse_qkv_projections)"

    def requested(self, cfg: "RunConfig") -> bool:
        return bool(cfg.fuse_qkv)

    def apply(self, pipe: Any, spec: "DenoiserSpec", cfg: "RunConfig", emit: "EventCallback",
              state: "AcceleratorState | None" = None) -> Any:
        return apply_fused_qkv(pipe, spec, cfg, emit)
