"""Ratios of two runs with the range their measured calls allow (``--repeat``).

A run of several measured calls records each figure's median with its min and max
(diffbench.engine.repeats); the ratio B / A of two such runs is taken from the medians and
ranges from B min / A max to B max / A min. A range that holds 1.0 means the runs' own
spread is larger than their difference: "no clear difference". Used by `diffbench compare`,
the dashboard's compare dialog (diffbench.engine.metrics.compare_rows) and sweeps.
"""

from __future__ import annotations

from typing import Any, Optional

from diffbench.engine.metrics import value_of, verdict

NO_CLEAR_DIFFERENCE = "no clear difference"


def value_range(run: Any, key: str) -> Optional[tuple[float, float]]:
    """(min, max) of ``key`` over the run's measured calls (``<key>_min`` / ``<key>_max``,
    diffbench.engine.repeats); None for one call, an older record or a figure without one."""
    metrics = getattr(run, "metrics", run)
    low = getattr(metrics, f"{key}_min", None) if metrics is not None else None
    high = getattr(metrics, f"{key}_max", None) if metrics is not None else None
    if low is None or high is None:
        return None
    return float(low), float(high)


def ratio_range(a: Any, b: Any, key: str) -> Optional[tuple[float, float]]:
    """The range of B / A that the runs' spreads allow: (B min / A max, B max / A min), a
    run of one call counting as its figure alone; None when neither run has a range or a
    figure is missing or not positive."""
    range_a, range_b = value_range(a, key), value_range(b, key)
    if range_a is None and range_b is None:
        return None
    va, vb = value_of(a, key), value_of(b, key)
    low_a, high_a = range_a or (va, va)
    low_b, high_b = range_b or (vb, vb)
    if None in (low_a, high_a, low_b, high_b) or min(low_a, high_a) <= 0:
        return None
    return low_b / high_a, high_b / low_a


def range_verdict(key: str, a: Any, b: Any, r: Optional[float],
                  span: Optional[tuple[float, float]]) -> Optional[str]:
    """The verdict of a ratio with its range: "no clear difference (0.93-1.08x)" when the
    range holds 1.0, else "1.84x faster (1.70-1.95x)" (the range as factors of the same
    word). None without a range."""
    if span is None or r is None or r <= 0:
        return None
    low, high = span
    if low <= 1.0 <= high:
        return f"{NO_CLEAR_DIFFERENCE} ({low:.2f}-{high:.2f}x)"
    text = verdict(key, value_of(a, key), value_of(b, key))
    factors = (low, high) if r >= 1 else (1 / high, 1 / low)
    return f"{text} ({factors[0]:.2f}-{factors[1]:.2f}x)"


def sweep_ratio(cell: Any, reference: Any, key: str = "it_per_s") -> dict[str, Any]:
    """A sweep cell's ``key`` over its reference cell's (two RunResults): {"ratio",
    "ratio_low", "ratio_high", "clear"}; ``clear`` is False when the range holds 1.0 (None
    without a range). {} when the ratio cannot be formed."""
    a, b = value_of(reference, key), value_of(cell, key)
    if not a or not b:
        return {}
    span = ratio_range(reference, cell, key)
    out: dict[str, Any] = {"ratio": b / a}
    if span is not None:
        out.update(ratio_low=span[0], ratio_high=span[1],
                   clear=not span[0] <= 1.0 <= span[1])
    return out
