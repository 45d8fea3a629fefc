"""Elapsed-time formatting of the live view (phase clocks, compile time so far).

Stored figures of a run are formatted by the metrics catalog
(diffbench.engine.metrics.format_metric), never here.
"""

from __future__ import annotations

from typing import Optional

from diffbench.engine.metrics import MISSING


def fmt_s(seconds: Optional[float]) -> str:
    """Seconds for humans: MISSING for None, "850 ms" below 1 s, "12.3 s", "4m05s"."""
    if seconds is None:
        return MISSING
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s"
