"""Memory options for smaller GPUs: model CPU offload and a quantized T5 text encoder.

- ``cpu_offload``: diffusers' ``enable_model_cpu_offload`` — every model of the pipeline stays
  on the CPU and moves to the GPU only while it runs (text encoders, then the denoiser, then
  the VAE). Peak GPU memory drops to about the largest model; each call pays the transfers.
- ``text_encoder_quant``: the T5 encoder's linear weights quantized with torchao
  (``int8``: Int8WeightOnlyConfig; ``fp8``: Float8WeightOnlyConfig, e4m3, needs compute
  capability 8.9+). T5-XXL is 4.8 B parameters (9.5 GB in bf16): int8 halves it. Lossy for
  the prompt embedding, so the image is compared with the unquantized baseline.

Both change what the run costs, never what it computes (apart from the T5 rounding); their
cost shows in load_s, inference_s and the memory figures of the run, and against its baseline.
"""

from __future__ import annotations

from typing import Any

from diffbench.engine.errors import ConfigError

#: torchao config class per text_encoder_quant mode (torchao.quantization).
RECIPES = {"int8": "Int8WeightOnlyConfig", "fp8": "Float8WeightOnlyConfig"}
#: Older torchao releases name the recipes as functions.
LEGACY_RECIPES = {"int8": "int8_weight_only", "fp8": "float8_weight_only"}


def check(cfg: Any, spec: Any, device: str) -> None:
    """Refuse memory options that cannot work for this family or device (one line each).

    Raises:
        ConfigError: ``.field`` text_encoder_quant or cpu_offload: no T5 in the family, not
            on CUDA, torchao missing, fp8 on a GPU without fp8.
    """
    quant = cfg.text_encoder_quant
    if quant != "none":
        field = "text_encoder_quant"
        if spec.t5_attr is None:
            raise ConfigError(f"text_encoder_quant quantizes the T5 text encoder; "
                              f"{spec.label} has none (CLIP only)", field=field)
        if not str(device).startswith("cuda"):
            raise ConfigError(f"text_encoder_quant {quant} needs a CUDA GPU (torchao's "
                              "weight-only kernels); this run is on the CPU", field=field)
        from diffbench.engine.accelerators.versions import dist_version

        if dist_version("torchao") is None:
            raise ConfigError("text_encoder_quant needs torchao: pip install torchao "
                              "(matching your torch)", field=field)
        if quant == "fp8":
            import torch

            index = torch.device(device).index or 0
            capability = torch.cuda.get_device_capability(index)
            if capability < (8, 9):
                raise ConfigError(f"text_encoder_quant fp8 needs compute capability >= 8.9 "
                                  f"(Ada, Hopper); {torch.cuda.get_device_name(index)} has "
                                  f"{capability[0]}.{capability[1]}: use int8", field=field)
    if cfg.cpu_offload and not str(device).startswith("cuda"):
        raise ConfigError("cpu_offload moves each model between the CPU and a CUDA GPU; this "
                          "run is on the CPU", field="cpu_offload")


def quantize_text_encoder(pipe: Any, spec: Any, mode: str, device: str) -> None:
    """Quantize the T5 encoder of ``pipe`` in place on ``device`` (torchao weight-only,
    ``mode`` "int8" or "fp8"); a no-op for "none". Linear weights only: embeddings and norms
    stay in the pipeline's dtype.

    Raises:
        ConfigError: the installed torchao has no such recipe.
    """
    if mode == "none":
        return
    import torchao.quantization as tq

    encoder = getattr(pipe, spec.t5_attr)
    if hasattr(tq, RECIPES[mode]):
        recipe = getattr(tq, RECIPES[mode])()
    elif hasattr(tq, LEGACY_RECIPES[mode]):
        recipe = getattr(tq, LEGACY_RECIPES[mode])()
    else:
        raise ConfigError(f"text_encoder_quant {mode}: this torchao has neither "
                          f"{RECIPES[mode]} nor {LEGACY_RECIPES[mode]}; upgrade torchao",
                          field="text_encoder_quant")
    encoder.to(device)
    tq.quantize_(encoder, recipe)


def place(pipe: Any, spec: Any, cfg: Any, device: str) -> Any:
    """Put ``pipe`` on ``device``: quantize the T5 encoder (``cfg.text_encoder_quant``), then
    either move every model (``pipe.to(device)``) or install diffusers' model CPU offload
    (``cfg.cpu_offload``: models wait on the CPU). Returns the pipeline."""
    quantize_text_encoder(pipe, spec, cfg.text_encoder_quant, device)
    if cfg.cpu_offload:
        pipe.enable_model_cpu_offload(device=device)
        return pipe
    return pipe.to(device) if str(device) != "cpu" else pipe
