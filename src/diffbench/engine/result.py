"""RunResult: what one run measured, per the measurement contract (README.md, "What the numbers
mean"; each metric's unit and format: diffbench.engine.metrics).

Units are in the names: seconds (``_s``), milliseconds (``_ms``), GiB (``_gib``).
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional

#: "running": recorded at its start, not ended yet; "interrupted": its diffbench was stopped
#: (SIGTERM, SIGHUP) or died (SIGKILL) before the run ended (diffbench.engine.history).
STATUSES = ("finished", "failed", "cancelled", "running", "interrupted")


@dataclass
class Metrics:
    """Measured figures of one run. None = not measured (e.g. the run ended earlier).

    - load_s: building/loading the pipeline and moving it to the device.
    - accelerate_s: applying the compiler/accelerator (lazy compilers: ~0, they compile in
      warmup).
    - warmup_s: wall time of all warmup calls, compilation included (OneDiff's "Warmup time").
    - compile_s: compile time attributed by the compiler's own counters, where known.
    - inference_s: wall time of the measured pipeline call, device synchronised at the end.
    - it_per_s: OneDiff's IterationProfiler definition: (steps_run - 1) / time from the end of
      step 1 to the end of the last step (CUDA events on GPU; perf_counter on CPU).
    - steps_run: denoising steps the measured call actually ran (img2img: int(steps*strength)).
    - step_ms: per-step times (ms) of steps 2..N (intervals between step ends), so
      it_per_s == len(step_ms) / (sum(step_ms) / 1000). first_step_ms: call start -> step 1
      end (includes prompt encoding).
    - peak_allocated_gib / peak_reserved_gib: torch.cuda.max_memory_allocated / _reserved
      during the measured call (reset before it); warmup_peak_allocated_gib likewise for the
      warmups. peak_rss_gib: process peak resident set size (CPU runs; ru_maxrss).
    - steps_computed / steps_skipped: denoising steps of the measured call a diffusers step
      cache (``--cache``) ran in full / reused (steps_computed + steps_skipped == steps_run);
      None without one, or for a cache that gives no step count (fastercache, pab: "n/a").
    - recompiles: recompilations during the measured call (should be 0).
    - warmup_cache: "cold" | "warm" | None (compile cache state at warmup).
    - image_flag: None when the image looks sane, else "nan" | "black" | "constant".
    - psnr_db / ssim: similarity of the image to the baseline run's (same model, settings and
      seed, compiler none, no accelerator) named by baseline_run_id; None without a baseline.
    - guidance_used: the guidance scale the call ran with (the setting, else the model card's
      or the pipeline's default); None when the model takes none (FLUX-schnell).
    - denoiser_batch: latent rows the denoiser runs per denoising step over all its calls
      (batch x 2 with CFG, x 3 for instruct-pix2pix; FLUX-dev: batch, guidance is an input).
    - tflop_per_step: TFLOP of one denoising step on denoiser_batch rows (the family's
      formula, as torch.utils.flop_counter counts: 2 per multiply-add).
    - text_encoder_peak_gib / denoiser_peak_gib / vae_peak_gib: torch max allocated CUDA
      memory (GiB) in each part of the measured call: prompt encoding (up to the last text
      encoder's output), denoising (to the last step's end, image latents included), VAE
      decode (to the call's end). GPU runs only.
    - Several measured calls (``--repeat``, diffbench.engine.repeats): ``<figure>_calls``
      holds every call's it_per_s / inference_s / step_ms_p50 / step_ms_p90 in call order;
      the figure itself is their median, ``<figure>_min`` / ``_max`` the range. step_ms,
      first_step_ms and step_ms_max are the median call's. spread: (max - min) / median of
      it/s (of inference_s without it/s), a fraction; None for one call. Older records: empty
      lists and None.
    - busy_fraction: GPU kernel time per step over the measured mean step time (1000 /
      it_per_s), 0..1;
      busy_source: "profiler" (torch.profiler in one extra untimed call) or "nvml"
      (utilisation sampled during the measured calls); None off CUDA (diffbench.engine.busy).
    - peak_tflops: the GPU's dense bf16 TFLOP/s used for the fraction of peak; None when the
      GPU is not in diffbench.engine.busy.DENSE_BF16_TFLOPS.
    - text_tokens: text sequence length of the prompt encoding (CLIP's context, 77; T5's
      max_sequence_length for FLUX / SD3).
    """

    load_s: Optional[float] = None
    accelerate_s: Optional[float] = None
    warmup_s: Optional[float] = None
    compile_s: Optional[float] = None
    inference_s: Optional[float] = None
    it_per_s: Optional[float] = None
    steps_run: Optional[int] = None
    first_step_ms: Optional[float] = None
    step_ms: list[float] = field(default_factory=list)
    step_ms_p50: Optional[float] = None
    step_ms_p90: Optional[float] = None
    step_ms_max: Optional[float] = None
    peak_allocated_gib: Optional[float] = None
    peak_reserved_gib: Optional[float] = None
    warmup_peak_allocated_gib: Optional[float] = None
    peak_rss_gib: Optional[float] = None
    nvml_used_gib: Optional[float] = None
    recompiles: Optional[int] = None
    graph_breaks: Optional[int] = None
    warmup_cache: Optional[str] = None
    image_flag: Optional[str] = None
    psnr_db: Optional[float] = None
    ssim: Optional[float] = None
    baseline_run_id: Optional[str] = None
    guidance_used: Optional[float] = None
    denoiser_batch: Optional[int] = None
    tflop_per_step: Optional[float] = None
    text_encoder_peak_gib: Optional[float] = None
    denoiser_peak_gib: Optional[float] = None
    vae_peak_gib: Optional[float] = None
    steps_computed: Optional[int] = None
    steps_skipped: Optional[int] = None
    it_per_s_calls: list[float] = field(default_factory=list)
    it_per_s_min: Optional[float] = None
    it_per_s_max: Optional[float] = None
    inference_s_calls: list[float] = field(default_factory=list)
    inference_s_min: Optional[float] = None
    inference_s_max: Optional[float] = None
    step_ms_p50_calls: list[float] = field(default_factory=list)
    step_ms_p50_min: Optional[float] = None
    step_ms_p50_max: Optional[float] = None
    step_ms_p90_calls: list[float] = field(default_factory=list)
    step_ms_p90_min: Optional[float] = None
    step_ms_p90_max: Optional[float] = None
    spread: Optional[float] = None
    busy_fraction: Optional[float] = None
    busy_source: Optional[str] = None
    peak_tflops: Optional[float] = None
    text_tokens: Optional[int] = None


@dataclass
class RunResult:
    """One run: identity, status, the config it ran, the environment, metrics and outputs.

    ``config`` is RunConfig.to_dict() plus resolved values (``height``/``width`` as run,
    ``dtype``/``device`` resolved); ``environment`` maps component -> version string;
    ``notices`` are user-facing warnings raised during the run. ``log_tail``: the last lines
    the run's process printed (stderr of the child), kept when a run fails or is cancelled.
    """

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    status: str = "finished"
    started_at: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    config: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)
    image_path: Optional[str] = None
    error: Optional[str] = None
    notices: list[str] = field(default_factory=list)
    log_tail: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (metrics nested under "metrics")."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunResult":
        """Inverse of :meth:`to_dict`; unknown keys are ignored (forward compatibility).

        Raises:
            ValueError: ``data`` is not a dict or ``status`` is not one of STATUSES.
        """
        if not isinstance(data, dict):
            raise ValueError("run result must be a mapping")
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        metric_names = {f.name for f in dataclasses.fields(Metrics)}
        metrics = kwargs.get("metrics") or {}
        if not isinstance(metrics, dict):
            raise ValueError("metrics must be a mapping")
        kwargs["metrics"] = Metrics(**{k: v for k, v in metrics.items() if k in metric_names})
        result = cls(**kwargs)
        if result.status not in STATUSES:
            raise ValueError(f"unknown run status {result.status!r}")
        return result
