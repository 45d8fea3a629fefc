"""Every metric once: its words, unit, format, which way is better, and where it is shown.

The CLI (run summary, `diffbench history`, `diffbench compare`, sweep tables) and the dashboard
(result panels, history table, compare dialog, sweep matrix, image compare) format figures
through this module only, so a value reads the same everywhere and a figure that was not
measured shows the one glyph :data:`MISSING`.

Cheap to import: no torch, no rich, no textual. Keys are the fields of
:class:`diffbench.engine.result.Metrics` (units in their names: ``_s`` seconds, ``_ms``
milliseconds, ``_gib`` GiB) plus derived figures computed by :attr:`Metric.get`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, NamedTuple, Optional

#: The one glyph for a figure that was not measured, and for a ratio that cannot be formed.
MISSING = "-"

_TIME = ("faster", "slower")
_MEMORY = ("less", "more")
_QUALITY = ("higher", "lower")


@dataclass(frozen=True)
class Metric:
    """One figure of a run and how every view shows it.

    Attributes:
        key: the Metrics field (or a derived key computed by ``get``).
        label: the full words of the run summary, e.g. "Iterations per second".
        short: the words of panels and compare rows, e.g. "it/s".
        unit: "s", "ms", "GiB", "dB", "it/s" or "" (a count, a ratio, a word).
        spec: format spec of the number, e.g. ".2f" (a value that does not take it is
            shown with ``str``).
        show_unit: whether the value's text carries the unit (it/s: the label says it).
        better: "higher", "lower" or None (neither: a count that only describes the run).
        words: the better and the worse word of a comparison ("faster"/"slower").
        column: header in history tables (None: not a column).
        panel: the dashboard result panel ("warmup", "speed", "memory") or None.
        when: where it is relevant, in panels and the summary: "always" (panels show
            MISSING when not measured), "set" (only when measured), "gpu" / "cpu" (only when
            the run did / did not measure CUDA memory).
        summary: the run summary's row it joins (metrics sharing a row are joined with
            " / "), None: not in the summary.
        compare: a row of `diffbench compare` and of the dashboard's compare dialog.
        get: computes a derived figure from a Metrics object.
        summary_missing: the summary row shows MISSING when not measured, once the run
            measured it/s (GPU busy on CPU: "-"), instead of leaving the row out.
    """

    key: str
    label: str
    short: str
    unit: str = ""
    spec: str = ""
    show_unit: bool = True
    better: Optional[str] = None
    words: tuple[str, str] = _TIME
    column: Optional[str] = None
    panel: Optional[str] = None
    when: str = "always"
    summary: Optional[str] = None
    compare: bool = False
    get: Optional[Callable[[Any], Any]] = None
    summary_missing: bool = False


def achieved_tflops(metrics: Any) -> Optional[float]:
    """Denoising compute rate in TFLOP/s: tflop_per_step x it_per_s (``metrics``: a Metrics);
    divide by the GPU's dense peak for the fraction of the FLOP floor. None when either is
    missing."""
    per_step = getattr(metrics, "tflop_per_step", None)
    if per_step is None or metrics.it_per_s is None:
        return None
    return per_step * metrics.it_per_s


def peak_fraction(metrics: Any) -> Optional[float]:
    """Fraction of the GPU's dense bf16 peak the measured steps reach: achieved TFLOP/s over
    ``peak_tflops`` (diffbench.engine.busy.DENSE_BF16_TFLOPS); None when either is missing."""
    rate = achieved_tflops(metrics)
    peak = getattr(metrics, "peak_tflops", None)
    if rate is None or not peak:
        return None
    return rate / peak


def peak_gib(metrics: Any) -> Optional[float]:
    """Peak memory of the measured call in GiB: torch max allocated on GPU, process peak RSS
    on CPU (``metrics``: a Metrics). None when neither was measured."""
    if metrics.peak_allocated_gib is not None:
        return metrics.peak_allocated_gib
    return metrics.peak_rss_gib


#: The catalog, in the order views list metrics (compare rows, panels, summary rows).
CATALOG: list[Metric] = [
    Metric("load_s", "Load time", "load", "s", ".2f", better="lower", panel="warmup",
           summary="Load time", compare=True),
    Metric("accelerate_s", "Accelerate time", "accelerate", "s", ".2f", better="lower"),
    Metric("warmup_s", "Warmup time", "warmup", "s", ".2f", better="lower",
           column="warmup s", panel="warmup", summary="Warmup time", compare=True),
    Metric("compile_s", "Compiling, within the warmup (≤)", "compile", "s", ".2f",
           better="lower", panel="warmup", summary="  of which compiling (≤)", compare=True),
    Metric("warmup_cache", "Compile cache at warmup", "cache", panel="warmup",
           when="set"),
    Metric("inference_s", "Inference time", "inference", "s", ".3f", better="lower",
           column="infer s", panel="speed", summary="Inference time", compare=True),
    Metric("inference_s_min", "Inference time, fastest measured call", "infer min", "s",
           ".3f", better="lower", when="set", summary="  inference min / max"),
    Metric("inference_s_max", "Inference time, slowest measured call", "infer max", "s",
           ".3f", better="lower", when="set", summary="  inference min / max"),
    Metric("it_per_s", "Iterations per second", "it/s", "it/s", ".2f", show_unit=False,
           better="higher", column="it/s", panel="speed", summary="Iterations per second",
           compare=True),
    Metric("it_per_s_min", "Iterations per second, slowest measured call", "it/s min",
           "it/s", ".2f", show_unit=False, better="higher", when="set",
           summary="  it/s min / max"),
    Metric("it_per_s_max", "Iterations per second, fastest measured call", "it/s max",
           "it/s", ".2f", show_unit=False, better="higher", when="set",
           summary="  it/s min / max"),
    # (max - min) / median over the measured calls; above 5 % a notice says why
    Metric("spread", "Spread over the measured calls ((max - min) / median)", "spread",
           spec=".1%", better="lower", panel="speed", when="set",
           summary="  spread over the calls"),
    Metric("busy_fraction", "GPU busy (kernel time / step time)", "GPU busy", spec=".0%",
           better="higher", words=_QUALITY, panel="speed", when="set",
           summary="GPU busy / of bf16 peak", summary_missing=True),
    Metric("peak_fraction", "Fraction of the GPU's dense bf16 peak", "of peak", spec=".1%",
           better="higher", words=_QUALITY, panel="speed", when="set",
           summary="GPU busy / of bf16 peak", get=peak_fraction),
    Metric("peak_allocated_gib", "Max used CUDA memory", "peak alloc", "GiB", ".2f",
           better="lower", words=_MEMORY, panel="memory", when="gpu",
           summary="Max used CUDA memory (allocated / reserved)", compare=True),
    Metric("peak_reserved_gib", "Max reserved CUDA memory", "peak resv", "GiB", ".2f",
           better="lower", words=_MEMORY, panel="memory", when="gpu",
           summary="Max used CUDA memory (allocated / reserved)", compare=True),
    Metric("warmup_peak_allocated_gib", "Max used CUDA memory in warmup", "warm peak",
           "GiB", ".2f", better="lower", words=_MEMORY, panel="memory", when="gpu"),
    Metric("peak_rss_gib", "Max used memory (peak RSS)", "peak RSS", "GiB", ".2f",
           better="lower", words=_MEMORY, panel="memory", when="cpu",
           summary="Max used memory (peak RSS)", compare=True),
    Metric("nvml_used_gib", "Device memory used (NVML)", "NVML used", "GiB", ".2f",
           better="lower", words=_MEMORY, panel="memory", when="set"),
    Metric("peak_gib", "Peak memory", "peak", "GiB", ".2f", better="lower", words=_MEMORY,
           column="peak GiB", get=peak_gib),
    Metric("text_encoder_peak_gib", "Max used CUDA memory: text encoders", "text enc peak",
           "GiB", ".2f", better="lower", words=_MEMORY, panel="memory", when="set",
           summary="Max used CUDA memory: text encoders / denoiser / VAE"),
    Metric("denoiser_peak_gib", "Max used CUDA memory: denoiser", "denoiser peak", "GiB",
           ".2f", better="lower", words=_MEMORY, panel="memory", when="set",
           summary="Max used CUDA memory: text encoders / denoiser / VAE"),
    Metric("vae_peak_gib", "Max used CUDA memory: VAE", "VAE peak", "GiB", ".2f",
           better="lower", words=_MEMORY, panel="memory", when="set",
           summary="Max used CUDA memory: text encoders / denoiser / VAE"),
    Metric("step_ms_p50", "Step time p50", "step p50", "ms", ".1f", better="lower",
           column="p50 ms", panel="speed", summary="Step time p50 / p90 / max", compare=True),
    Metric("step_ms_p90", "Step time p90", "step p90", "ms", ".1f", better="lower",
           panel="speed", summary="Step time p50 / p90 / max", compare=True),
    Metric("step_ms_max", "Step time max", "step max", "ms", ".1f", better="lower",
           summary="Step time p50 / p90 / max"),
    Metric("step_ms_p50_min", "Step time p50, fastest measured call", "p50 min", "ms",
           ".1f", better="lower", when="set", summary="  step p50 min / max"),
    Metric("step_ms_p50_max", "Step time p50, slowest measured call", "p50 max", "ms",
           ".1f", better="lower", when="set", summary="  step p50 min / max"),
    Metric("first_step_ms", "First step (with prompt encoding)", "first step", "ms", ".1f",
           better="lower"),
    Metric("steps_run", "Steps run", "steps run", spec="d", summary="Steps run",
           compare=True),
    Metric("denoiser_batch", "Denoiser rows per step (CFG copies x batch)", "denoiser rows",
           spec="d", when="set", summary="Denoiser batch / guidance"),
    Metric("guidance_used", "Guidance scale used", "guidance", spec="g", when="set",
           summary="Denoiser batch / guidance"),
    Metric("text_tokens", "Text tokens (prompt sequence length)", "text tokens", spec="d",
           when="set", summary="Text tokens"),
    # 3 significant digits: 74.4 TFLOP for FLUX.1-dev, 0.000235 for tiny-flux
    Metric("tflop_per_step", "FLOPs per denoising step", "TFLOP/step", "TFLOP", ".3g",
           panel="speed", when="set", summary="FLOPs per step / rate"),
    Metric("achieved_tflops", "Denoising compute rate (FLOPs per step x it/s)", "TFLOP/s",
           "TFLOP/s", ".3g", better="higher", panel="speed", when="set",
           summary="FLOPs per step / rate", get=achieved_tflops),
    Metric("steps_computed", "Steps computed (step cache)", "computed", spec="d",
           when="set", summary="Steps computed / skipped (step cache)"),
    Metric("steps_skipped", "Steps skipped (step cache)", "skipped", spec="d", when="set",
           summary="Steps computed / skipped (step cache)"),
    Metric("recompiles", "Recompiles in measured call", "recompiles", spec="d",
           better="lower", words=_MEMORY, panel="warmup", when="set",
           summary="Recompiles in measured call", compare=True),
    Metric("graph_breaks", "Graph breaks", "graph breaks", spec="d", better="lower",
           words=_MEMORY),
    Metric("psnr_db", "PSNR vs baseline", "PSNR", "dB", ".2f", better="higher",
           words=_QUALITY, summary="vs baseline PSNR / SSIM", compare=True),
    Metric("ssim", "SSIM vs baseline", "SSIM", "", ".4f", better="higher", words=_QUALITY,
           summary="vs baseline PSNR / SSIM", compare=True),
    # the throughput fit (diffbench.engine.throughput.LineFit): time = base + steps x per-step
    Metric("base_s", "Base cost (prompt encoding, VAE decode, overhead)", "base cost", "s",
           ".3f", better="lower"),
    Metric("per_step_ms", "Per-step cost", "per-step cost", "ms", ".1f", better="lower"),
    Metric("it_per_s_no_base", "Iterations per second without the base cost",
           "it/s without base", "it/s", ".2f", show_unit=False, better="higher"),
    Metric("r2", "R^2 of the fit", "R^2", spec=".4f", better="higher", words=_QUALITY),
]

#: The order of the history tables' metric columns, the headline first; a catalog metric
#: with a ``column`` header that is not listed here follows them.
TABLE_ORDER = ("it_per_s", "inference_s", "warmup_s", "peak_gib", "step_ms_p50")


def metric(key: str) -> Metric:
    """The catalog entry of ``key``. Raises KeyError for a key the catalog lacks."""
    for entry in CATALOG:
        if entry.key == key:
            return entry
    raise KeyError(f"no metric {key!r} in the catalog")


def value_of(run: Any, key: str) -> Any:
    """The figure ``key`` of ``run`` (a RunResult or a Metrics), derived ones computed;
    None when not measured or unknown to this Metrics (an older record)."""
    metrics = getattr(run, "metrics", run)
    if metrics is None:
        return None
    entry = metric(key)
    if entry.get is not None:
        return entry.get(metrics)
    return getattr(metrics, key, None)


def format_number(value: Any, spec: str) -> str:
    """``value`` formatted with ``spec`` (``str`` when the spec does not apply); MISSING for
    None."""
    if value is None:
        return MISSING
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def format_metric(key: str, value: Any, unit: Optional[bool] = None) -> str:
    """The text of one figure, e.g. ``format_metric("inference_s", 0.4) == "0.400 s"``;
    MISSING for None.

    Args:
        unit: True / False to force the unit on / off (tables whose header names it); None
            follows the catalog (:attr:`Metric.show_unit`).
    """
    entry = metric(key)
    text = format_number(value, entry.spec)
    shown = entry.show_unit if unit is None else unit
    if value is None or not shown or not entry.unit:
        return text
    return f"{text} {entry.unit}"


def format_joined(keys: Iterable[str], values: Iterable[Any]) -> str:
    """Several figures as one text joined by " / ": "1.0 / 2.0 / 3.0 ms" when they share a
    unit, else each with its own ("31.20 dB / 0.9871")."""
    keys, values = list(keys), list(values)
    units = {metric(k).unit for k in keys}
    if len(keys) > 1 and len(units) == 1 and metric(keys[0]).unit:
        text = " / ".join(format_metric(k, v, unit=False) for k, v in zip(keys, values))
        if all(v is None for v in values):
            return text
        return f"{text} {metric(keys[0]).unit}"
    return " / ".join(format_metric(k, v) for k, v in zip(keys, values))


# ------------------------------------------------------------------ comparison
def ratio(a: Any, b: Any) -> Optional[float]:
    """b / a, or None when either is missing (or a bool) or a is 0."""
    if a is None or b is None or isinstance(a, bool) or isinstance(b, bool) or a == 0:
        return None
    return b / a


#: Within this relative difference two figures are "the same" (0.5 %).
SAME_WITHIN = 0.005


def direction(key: str, a: Any, b: Any) -> Optional[str]:
    """How B compares with A on ``key``: "better", "worse", "same", or None (no ratio, or a
    metric with no better direction that differs)."""
    r = ratio(a, b)
    if r is None or b == 0:
        return None
    if abs(r - 1) < SAME_WITHIN:
        return "same"
    better = metric(key).better
    if better is None:
        return None
    return "better" if (r > 1) == (better == "higher") else "worse"


def verdict(key: str, a: Any, b: Any) -> str:
    """B against A as a factor >= 1 and the metric's word: "1.84x faster", "1.20x more"
    (memory), "same" within 0.5 %, "2.00x" for a metric with no better direction; MISSING
    when either is missing or zero."""
    r = ratio(a, b)
    if r is None or b == 0:
        return MISSING
    way = direction(key, a, b)
    if way == "same":
        return "same"
    factor = max(r, 1 / r)
    if way is None:
        return f"{r:.2f}x"
    good, bad = metric(key).words
    return f"{factor:.2f}x {good if way == 'better' else bad}"


class CompareRow(NamedTuple):
    """One metric of two runs: raw values, their text, B / A and the verdict text.

    ``ratio_low`` / ``ratio_high``: the range of B / A the runs' measured calls allow
    (diffbench.engine.ratio_range.ratio_range; None without one). A range holding 1.0 makes the verdict
    "no clear difference (...)" and the direction "same"."""

    key: str
    label: str
    a: Any
    b: Any
    a_text: str
    b_text: str
    ratio: Optional[float]
    better: Optional[str]
    verdict: str
    direction: Optional[str]
    ratio_low: Optional[float] = None
    ratio_high: Optional[float] = None


def compare_rows(a: Any, b: Any) -> list[CompareRow]:
    from diffbench.engine.ratio_range import range_verdict, ratio_range

    """The compare rows of two runs (RunResults or Metrics): every catalog metric marked
    ``compare`` that either run measured, in catalog order; ratios from the medians of the
    measured calls, with their range where the runs have one."""
    rows = []
    for entry in CATALOG:
        if not entry.compare:
            continue
        va, vb = value_of(a, entry.key), value_of(b, entry.key)
        if va is None and vb is None:
            continue
        r = ratio(va, vb)
        span = ratio_range(a, b, entry.key) if r is not None else None  # from the spreads
        text = range_verdict(entry.key, a, b, r, span) or verdict(entry.key, va, vb)
        way = direction(entry.key, va, vb)
        if span is not None and span[0] <= 1.0 <= span[1]:
            way = "same"
        rows.append(CompareRow(entry.key, entry.short, va, vb, format_metric(entry.key, va),
                               format_metric(entry.key, vb), r, entry.better, text, way,
                               *(span or (None, None))))
    return rows


# ------------------------------------------------------------------ views
def table_columns() -> list[Metric]:
    """The metric columns of history tables (those with a ``column`` header): in
    :data:`TABLE_ORDER`, then the others in catalog order."""
    columns = [m for m in CATALOG if m.column]
    rank = {key: i for i, key in enumerate(TABLE_ORDER)}
    return sorted(columns, key=lambda m: rank.get(m.key, len(rank)))


def _relevant(entry: Metric, run: Any, value: Any) -> bool:
    """Whether ``entry`` is shown for ``run`` by its ``when`` rule."""
    gpu = value_of(run, "peak_allocated_gib") is not None
    return {"always": True, "set": value is not None, "gpu": gpu,
            "cpu": not gpu}.get(entry.when, True)


def panel_rows(run: Any, panel: str) -> list[tuple[str, str]]:
    """(short label, text) rows of one dashboard result panel for ``run`` (a RunResult, a
    Metrics or None for the empty panels), following each metric's ``when``."""
    rows = []
    for entry in CATALOG:
        if entry.panel != panel:
            continue
        value = value_of(run, entry.key)
        if not _relevant(entry, run, value):
            continue
        rows.append((entry.short, format_metric(entry.key, value)))
    return rows


def summary_rows(run: Any) -> list[tuple[str, str]]:
    """(label, text) rows of the CLI run summary: one per ``summary`` row of the catalog,
    shown when its first metric was measured and is relevant (``when``); metrics sharing a
    row are joined."""
    groups: dict[str, list[str]] = {}
    for entry in CATALOG:
        if entry.summary:
            groups.setdefault(entry.summary, []).append(entry.key)
    rows = []
    for label, keys in groups.items():
        values = [value_of(run, k) for k in keys]
        first = metric(keys[0])
        if values[0] is None and first.summary_missing and \
                value_of(run, "it_per_s") is not None:
            pass  # measured calls ran: say "not available" rather than drop the row
        elif values[0] is None or not _relevant(first, run, values[0]):
            continue
        rows.append((label, format_joined(keys, values)))
    return rows
