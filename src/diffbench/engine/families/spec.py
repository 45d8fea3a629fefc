"""The denoiser spec: what every accelerator and loader needs to know about a model family.

A family (SD 1.5, SDXL, InstructPix2Pix; FLUX.1, FLUX.1 Kontext, SD3/3.5) is one
:class:`DenoiserSpec`: the diffusers pipeline classes per task, where the denoiser lives on
the pipeline (``unet`` or ``transformer``), its repeated block classes (what regional compile,
CUDA graphs over compiled blocks and quantize-under-cudagraph work on), how to build one
denoising step's inputs, how many copies of the latents CFG puts in the denoiser batch, and the
FLOPs of one denoising step at a given size. Diffusion transformers add: a flow-matching
scheduler, a T5 text encoder with a token budget (``max_sequence_length``), guidance as a
denoiser input (FLUX-dev), the model card's settings read from the denoiser's config.

Cheap to import: no torch. The callables import torch when called.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

#: One step's inputs: (denoiser, height px, width px, denoiser batch, device, dtype, seed)
#: -> (args, kwargs) for ``denoiser(*args, return_dict=False, **kwargs)``.
StepInputs = Callable[[Any, int, int, int, Any, Any, int], "tuple[tuple, dict]"]
#: FLOPs of one denoiser call: (denoiser config, height px, width px, denoiser batch) -> FLOPs.
StepFlops = Callable[[Any, int, int, int], float]
#: The model card's settings from the denoiser's config (a dict; {} when unknown) -> e.g.
#: {"steps": 28, "guidance_scale": 3.5, "max_sequence_length": 512}.
Recommended = Callable[[Mapping], dict]
#: Model checks that need the denoiser's config: (RunConfig, config dict) -> notices (one-line
#: warnings); raises ConfigError (one line) for a setting the model cannot take (guidance on
#: FLUX-schnell).
ModelCheck = Callable[[Any, Mapping], "list[str]"]
#: Extra pipeline-call keywords of a family: (task, height px, width px) -> dict.
CallExtras = Callable[[str, int, int], dict]


@dataclass(frozen=True)
class DenoiserSpec:
    """One model family.

    Attributes:
        family: the short name used everywhere ("sd15", "sdxl", "pix2pix").
        label: a human name ("Stable Diffusion 1.5").
        pipelines: task ("t2i", "i2i", "pix2pix") -> diffusers pipeline class name.
        controlnet_pipelines: task -> the ControlNet pipeline class name (empty: no ControlNet
            for this family).
        index_classes: model_index.json ``_class_name`` values that mean this family (local
            folders and HF-cache snapshots); the family is never guessed from a model's name.
        denoiser_attr: the pipeline attribute holding the denoiser ("unet"; "transformer" for
            diffusion transformers).
        denoiser_label: how messages name it ("UNet", "transformer").
        repeated_blocks: the denoiser's repeated block classes (diffusers' ``_repeated_blocks``
            of the model class) used when the loaded model declares none itself.
        cfg_copies: copies of the latents in the denoiser batch when classifier-free guidance
            is on (2: unconditional + text; 3 for InstructPix2Pix: + image guidance; 1: the
            guidance is an input, one forward per step).
        step_inputs: builds one step's inputs (see :data:`StepInputs`), or None.
        step_flops: FLOPs of one denoiser call (see :data:`StepFlops`), or None.
        latent_factor: pixels per latent element along each side (the VAE scale factor).
        vae_attr: the pipeline attribute holding the VAE.
        flow_matching: the model is trained for a flow-matching scheduler (FLUX, SD3): the
            discrete (UNet) schedulers do not apply.
        guidance_input: guidance is a denoiser input (FLUX-dev's guidance embedding), not a
            second copy of the latents.
        max_sequence_length: default T5 token budget of the prompt (FLUX 512, SD3 256); None:
            the family has no T5 encoder (CLIP's 77 tokens, fixed).
        clip_tokens: CLIP tokens joined to the T5 tokens in the denoiser's text sequence (SD3:
            77; FLUX passes CLIP only as the pooled vector: 0).
        t5_attr: the pipeline attribute of the T5 text encoder (None: no T5).
        size_multiple: height and width must be multiples of this (pixels): the VAE factor
            times the patch size (16 for FLUX and SD3).
        image_in_sequence: an input image's latents join the denoiser's sequence (Kontext's
            edit: twice the image tokens per step).
        recommended: the model card's settings from the denoiser config (see
            :data:`Recommended`), or None.
        check_model: model checks from the denoiser config (see :data:`ModelCheck`), or None.
        call_extras: extra pipeline-call keywords (see :data:`CallExtras`), or None.
        cuda_dtype: the dtype "auto" means on CUDA ("float16" as OneDiff's script; the
            diffusion transformers are trained in bfloat16 and overflow in float16).
    """

    family: str
    label: str
    pipelines: Mapping[str, str]
    controlnet_pipelines: Mapping[str, str] = field(default_factory=dict)
    index_classes: tuple[str, ...] = ()
    denoiser_attr: str = "unet"
    denoiser_label: str = "UNet"
    repeated_blocks: tuple[str, ...] = ()
    cfg_copies: int = 2
    step_inputs: Optional[StepInputs] = None
    step_flops: Optional[StepFlops] = None
    latent_factor: int = 8
    vae_attr: str = "vae"
    flow_matching: bool = False
    guidance_input: bool = False
    max_sequence_length: Optional[int] = None
    clip_tokens: int = 0
    t5_attr: Optional[str] = None
    size_multiple: int = 8
    image_in_sequence: bool = False
    recommended: Optional[Recommended] = None
    check_model: Optional[ModelCheck] = None
    call_extras: Optional[CallExtras] = None
    cuda_dtype: str = "float16"

    # ------------------------------------------------------------------ the pipeline
    @property
    def cfg_doubles_batch(self) -> bool:
        """True when CFG runs the denoiser on more than one copy of the latents per step."""
        return self.cfg_copies > 1

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks this family's pipelines run, sorted."""
        return tuple(sorted(self.pipelines))

    def denoiser(self, pipe: Any) -> Any:
        """The denoiser module of ``pipe`` (``pipe.<denoiser_attr>``).

        Raises:
            AttributeError: the pipeline has no such component.
        """
        return getattr(pipe, self.denoiser_attr)

    def set_denoiser(self, pipe: Any, module: Any) -> None:
        """Put ``module`` back as the pipeline's denoiser (e.g. a torch.compile wrapper)."""
        setattr(pipe, self.denoiser_attr, module)

    def block_classes(self, denoiser: Any,
                      override: "tuple[str, ...] | None" = None) -> tuple[str, ...]:
        """Class names of the repeated blocks: ``override`` (``regional_blocks``) when given,
        else what the model class declares (diffusers' ``_repeated_blocks``, what
        ``compile_repeated_blocks`` compiles), else this spec's :attr:`repeated_blocks`."""
        if override is not None:
            return tuple(override)
        declared = getattr(denoiser, "_repeated_blocks", None)
        if declared:  # ModelMixin declares [] where a model names none (SD3)
            return tuple(declared)
        return self.repeated_blocks

    def blocks(self, denoiser: Any,
               override: "tuple[str, ...] | None" = None) -> list[tuple[str, Any]]:
        """(qualified name, module) of every repeated block of ``denoiser`` in module order
        (see :meth:`block_classes`)."""
        classes = self.block_classes(denoiser, override)
        return [(fqn, module) for fqn, module in denoiser.named_modules()
                if type(module).__name__ in classes]

    # ------------------------------------------------------------------ one step
    def denoiser_batch(self, batch: int, cfg: bool = True) -> int:
        """Rows of the denoiser batch for ``batch`` images (x :attr:`cfg_copies` with CFG)."""
        return batch * (self.cfg_copies if cfg else 1)

    def text_tokens(self, max_sequence_length: Optional[int] = None) -> Optional[int]:
        """Text tokens in the denoiser's sequence: :attr:`clip_tokens` + the T5 budget
        (``max_sequence_length``, None: :attr:`max_sequence_length`); None for a family
        without T5 (the UNet formulas use CLIP's 77)."""
        if self.max_sequence_length is None:
            return None
        return self.clip_tokens + int(max_sequence_length or self.max_sequence_length)

    def _extras(self, max_sequence_length: Optional[int], image: bool) -> dict:
        extra: dict = {}
        tokens = self.text_tokens(max_sequence_length)
        if tokens is not None:
            extra["text_tokens"] = tokens
        if self.image_in_sequence and image:
            extra["image_in_sequence"] = True
        return extra

    def example_inputs(self, denoiser: Any, height: int, width: int, batch: int = 1,
                       cfg: bool = True, device: Any = "cpu", dtype: Any = None,
                       seed: int = 1234, max_sequence_length: Optional[int] = None,
                       image: bool = False) -> "tuple[tuple, dict]":
        """(args, kwargs) of one denoising step for ``batch`` images of height x width pixels
        (random values from a CPU generator seeded with ``seed``: the same in every process),
        on ``device`` in ``dtype`` (None: float32). The denoiser batch is
        :meth:`denoiser_batch`. Transformers: ``max_sequence_length`` T5 tokens (None: the
        family's default); ``image``: an edit's input image joins the sequence (Kontext).

        Raises:
            NotImplementedError: this family has no step-input builder.
        """
        if self.step_inputs is None:
            raise NotImplementedError(f"{self.label}: no step inputs defined")
        return self.step_inputs(denoiser, height, width, self.denoiser_batch(batch, cfg),
                                device, dtype, seed, **self._extras(max_sequence_length, image))

    def flops_per_step(self, config: Any, height: int, width: int, batch: int = 1,
                       cfg: bool = True, max_sequence_length: Optional[int] = None,
                       image: bool = False) -> float:
        """FLOPs of one denoising step (the denoiser on :meth:`denoiser_batch` rows) for
        ``batch`` images of height x width pixels, from the denoiser's config. A multiply-add
        counts 2 FLOPs, as torch.utils.flop_counter counts them. ``max_sequence_length`` and
        ``image`` as in :meth:`example_inputs`.

        Raises:
            NotImplementedError: this family has no FLOP formula.
        """
        if self.step_flops is None:
            raise NotImplementedError(f"{self.label}: no FLOP formula")
        return float(self.step_flops(config, height, width, self.denoiser_batch(batch, cfg),
                                     **self._extras(max_sequence_length, image)))
