"""Pure functions over RunResult objects: labels, baselines, side-by-side comparison rows."""

from __future__ import annotations

from typing import Iterable, Optional

from diffbench.engine import baseline as baseline_rule
from diffbench.engine.result import RunResult


def size_of(run: RunResult) -> str:
    """"WxH" as run, or "native" when the config has none."""
    w, h = run.config.get("width"), run.config.get("height")
    return f"{w}x{h}" if w and h else "native"


def accel_of(run: RunResult) -> str:
    """The compiler plus stacked accelerators, e.g. "compile+int8wo+deepcache": the
    engine's one label (diffbench.engine.baseline.accel_label), as the CLI shows it."""
    return baseline_rule.accel_label(run.config or {})


def is_baseline_of(candidate: RunResult, run: RunResult) -> bool:
    """True when ``candidate`` is ``run``'s baseline by the engine's one rule
    (diffbench.engine.baseline: finished, eager, the same image-affecting settings); no image
    file is needed for the speed-up shown here."""
    return baseline_rule.is_baseline_of(candidate, run, image=False)


def find_baseline(run: RunResult, runs: Iterable[RunResult]) -> Optional[RunResult]:
    """The newest baseline of ``run`` among ``runs`` (newest first), or None.

    The run's own ``metrics.baseline_run_id`` wins when it is among ``runs``; otherwise
    diffbench.engine.baseline.pick (the rule every finder shares), without requiring an
    image file.
    """
    if baseline_rule.is_eager(run.config or {}):  # an eager run is its own reference
        return None
    runs = list(runs)
    wanted = run.metrics.baseline_run_id
    if wanted:
        for candidate in runs:
            if candidate.run_id == wanted:
                return candidate
    return baseline_rule.pick(run, runs, image=False)


def speedup(run: RunResult, baseline: Optional[RunResult]) -> Optional[float]:
    """baseline inference_s / run inference_s (>1 = faster), or None if either is missing."""
    if baseline is None:
        return None
    new, old = run.metrics.inference_s, baseline.metrics.inference_s
    if not new or not old:
        return None
    return old / new


def order_for_compare(x: RunResult, y: RunResult) -> tuple[RunResult, RunResult]:
    """(A, B): the unaccelerated run is A (the reference) when exactly one is; else the
    older run is A."""
    if (accel_of(x) == "none") != (accel_of(y) == "none"):
        return (x, y) if accel_of(x) == "none" else (y, x)
    return (x, y) if (x.started_at or "") <= (y.started_at or "") else (y, x)


def different_work(a: RunResult, b: RunResult) -> str:
    """What makes two runs different work, so their speed ratio means little: "" when
    model and task agree, else e.g. "model and task" or "model"."""
    keys = [key for key in ("model", "task") if a.config.get(key) != b.config.get(key)]
    return " and ".join(keys)


def setting_rows(a: RunResult, b: RunResult) -> list[tuple[str, str, str, str]]:
    """Rows (label, value a, value b, "differs" or "") of the settings that tell two runs
    apart: model, task, accelerator, size, steps, device, dtype."""
    rows = []
    config_rows = (("model", "model"), ("task", "task"), ("accelerator", None), ("size", None),
                   ("steps", "steps"), ("device", "device"), ("dtype", "dtype"))
    for label, key in config_rows:
        if key is None:
            va, vb = (accel_of(a), accel_of(b)) if label == "accelerator" else (size_of(a),
                                                                                  size_of(b))
        else:
            va, vb = str(a.config.get(key, "-")), str(b.config.get(key, "-"))
        rows.append((label, va, vb, "" if va == vb else "differs"))
    return rows


def compare_rows(a: RunResult, b: RunResult) -> list[tuple[str, str, str, str]]:
    """Rows (label, value a, value b, "how B compares with A") of the compare dialog: the
    settings, then the catalog's compare metrics either run has
    (diffbench.engine.metrics.compare_rows, the rows of `diffbench compare`).

    The comparison is a factor >= 1 with a word: "1.84x faster", "1.20x more" (memory).
    """
    from diffbench.engine.metrics import compare_rows as metric_rows

    return setting_rows(a, b) + [(row.label, row.a_text, row.b_text, row.verdict)
                                 for row in metric_rows(a, b)]


#: Settings that leave what the compiler builds unchanged: runs differing only in these
#: compile the same graphs (prompt text, seed and step count change no tensor shape).
_NOT_COMPILE_KEYS = frozenset(("prompt", "negative_prompt", "seed", "steps", "warmups",
                               "output_image", "profile", "sweep_id", "strength"))


def last_compile(config: dict, runs: Iterable[RunResult]) -> Optional[tuple[float, str]]:
    """(seconds, run id) of the newest finished run in ``runs`` (newest first) that compiled
    the same thing as ``config`` (a RunConfig dict): equal in every setting but
    :data:`_NOT_COMPILE_KEYS`. The seconds are its ``compile_s``, else its ``warmup_s``
    (compilation happens in the warmup). None for an eager config or when none is found."""
    if baseline_rule.is_eager(config):
        return None
    key = {k: v for k, v in config.items() if k not in _NOT_COMPILE_KEYS}
    for run in runs:
        if run.status != "finished":
            continue
        seconds = run.metrics.compile_s or run.metrics.warmup_s
        if seconds and all(run.config.get(k) == v for k, v in key.items()):
            return seconds, run.run_id
    return None
