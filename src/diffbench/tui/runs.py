"""Pure functions over RunResult objects: labels, baselines, side-by-side comparison rows."""

from __future__ import annotations

from typing import Iterable, Optional

from diffbench.engine import catalog
from diffbench.engine.result import RunResult

#: Config keys that must match for two runs to be "the same settings" (the baseline rule):
#: the catalog's image-affecting settings (prompt, guidance, LoRA, ControlNet included).
SAME_SETTINGS = tuple(catalog.image_keys())


def size_of(run: RunResult) -> str:
    """"WxH" as run, or "native" when the config has none."""
    w, h = run.config.get("width"), run.config.get("height")
    return f"{w}x{h}" if w and h else "native"


def accel_of(run: RunResult) -> str:
    """The compiler plus stacked accelerators, e.g. "compile+int8wo+deepcache"."""
    parts = [str(run.config.get("compiler", "none"))]
    if run.config.get("quantize") not in (None, "none"):
        parts.append(str(run.config["quantize"]))
    if run.config.get("deepcache"):
        parts.append("deepcache")
    return "+".join(parts)


def is_baseline_of(candidate: RunResult, run: RunResult) -> bool:
    """True when ``candidate`` is a finished, unaccelerated run with ``run``'s settings."""
    return (candidate.run_id != run.run_id and candidate.status == "finished"
            and accel_of(candidate) == "none"
            and all(candidate.config.get(k) == run.config.get(k) for k in SAME_SETTINGS))


def find_baseline(run: RunResult, runs: Iterable[RunResult]) -> Optional[RunResult]:
    """The newest baseline of ``run`` among ``runs`` (newest first), or None.

    The run's own ``metrics.baseline_run_id`` wins when it is among ``runs``.
    """
    if accel_of(run) == "none":  # an eager run is its own reference
        return None
    runs = list(runs)
    wanted = run.metrics.baseline_run_id
    if wanted:
        for candidate in runs:
            if candidate.run_id == wanted:
                return candidate
    for candidate in runs:
        if is_baseline_of(candidate, run):
            return candidate
    return None


def speedup(run: RunResult, baseline: Optional[RunResult]) -> Optional[float]:
    """baseline inference_s / run inference_s (>1 = faster), or None if either is missing."""
    if baseline is None:
        return None
    new, old = run.metrics.inference_s, baseline.metrics.inference_s
    if not new or not old:
        return None
    return old / new


_TIME = ("faster", "slower")
_MEMORY = ("less", "more")
#: (label, metric field, digits, unit, higher is better, words) rows of the compare screen.
COMPARE_ROWS = (
    ("load", "load_s", 2, "s", False, _TIME),
    ("warmup", "warmup_s", 2, "s", False, _TIME),
    ("compile", "compile_s", 2, "s", False, _TIME),
    ("inference", "inference_s", 3, "s", False, _TIME),
    ("it/s", "it_per_s", 2, "", True, _TIME),
    ("step p50", "step_ms_p50", 1, "ms", False, _TIME),
    ("step p90", "step_ms_p90", 1, "ms", False, _TIME),
    ("peak alloc", "peak_allocated_gib", 2, "GiB", False, _MEMORY),
    ("peak reserved", "peak_reserved_gib", 2, "GiB", False, _MEMORY),
    ("peak RSS", "peak_rss_gib", 2, "GiB", False, _MEMORY),
    ("recompiles", "recompiles", 0, "", False, _MEMORY),
)


def order_for_compare(x: RunResult, y: RunResult) -> tuple[RunResult, RunResult]:
    """(A, B): the unaccelerated run is A (the reference) when exactly one is; else the
    older run is A."""
    if (accel_of(x) == "none") != (accel_of(y) == "none"):
        return (x, y) if accel_of(x) == "none" else (y, x)
    return (x, y) if (x.started_at or "") <= (y.started_at or "") else (y, x)


def compare_rows(a: RunResult, b: RunResult) -> list[tuple[str, str, str, str]]:
    """Rows (label, value a, value b, "how B compares with A") for metrics either run has.

    The comparison is a factor >= 1 with a word: "1.84x faster", "1.20x more" (memory).
    """
    from diffbench.tui.widgets.format import fmt_num, fmt_ratio

    rows = []
    config_rows = (("model", "model"), ("accelerator", None), ("size", None),
                   ("steps", "steps"), ("device", "device"), ("dtype", "dtype"))
    for label, key in config_rows:
        if key is None:
            va, vb = (accel_of(a), accel_of(b)) if label == "accelerator" else (size_of(a),
                                                                                  size_of(b))
        else:
            va, vb = str(a.config.get(key, "-")), str(b.config.get(key, "-"))
        rows.append((label, va, vb, "" if va == vb else "differs"))
    for label, name, digits, unit, higher, words in COMPARE_ROWS:
        va, vb = getattr(a.metrics, name), getattr(b.metrics, name)
        if va is None and vb is None:
            continue
        rows.append((label, fmt_num(va, digits, unit), fmt_num(vb, digits, unit),
                     fmt_ratio(vb, va, higher, words)))
    return rows
