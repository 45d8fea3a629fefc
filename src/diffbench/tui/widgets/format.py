"""Number formatting shared by the panels and tables (units in the output)."""

from __future__ import annotations

from typing import Optional


def fmt_s(seconds: Optional[float]) -> str:
    """Seconds for humans: "-" for None, "850 ms" below 1 s, "12.3 s", "4m05s"."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s"


def fmt_num(value: Optional[float], digits: int = 2, unit: str = "") -> str:
    """A float with ``digits`` decimals and an optional unit; "-" for None."""
    if value is None:
        return "-"
    text = f"{value:.{digits}f}"
    return f"{text} {unit}" if unit else text


def fmt_ratio(new: Optional[float], base: Optional[float], higher_is_better: bool,
              words: tuple[str, str] = ("faster", "slower")) -> str:
    """How ``new`` compares with ``base`` as a factor >= 1 and a word, e.g. "1.84x faster".

    ``words`` name the better and worse direction ("faster"/"slower", "less"/"more",
    "higher"/"lower"); "same" within 0.5 %; "" when either value is missing or zero.
    """
    if new is None or base is None or base == 0 or new == 0:
        return ""
    if abs(new / base - 1) < 0.005:
        return "same"
    better = new > base if higher_is_better else new < base
    factor = max(new, base) / min(new, base)
    return f"{factor:.2f}x {words[0] if better else words[1]}"
