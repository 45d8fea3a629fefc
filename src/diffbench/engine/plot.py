"""Small plots without a plotting library: a text scatter with a fitted line (terminal and
dashboard) and a PNG (matplotlib when installed, else drawn with Pillow).

The text plot is a list of plain strings, so the CLI prints it and a Textual widget can show
it unchanged.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

POINT = "●"
LINE = "·"


def _ticks(low: float, high: float) -> tuple[float, float]:
    """Pad a degenerate range so a single value still plots."""
    if math.isclose(low, high):
        pad = abs(low) * 0.1 or 1.0
        return low - pad, high + pad
    return low, high


def text_scatter(xs: Sequence[float], ys: Sequence[float], slope: Optional[float] = None,
                 intercept: Optional[float] = None, width: int = 60, height: int = 15,
                 x_label: str = "x", y_label: str = "y") -> list[str]:
    """Points ``(xs[i], ys[i])`` as ``●`` and the line ``y = intercept + slope * x`` as ``·``
    on a ``width`` x ``height`` character grid, with y-axis values on the left and the x range
    underneath. The y range includes 0 when the data start near it, so a base cost shows.

    Returns:
        The plot as lines of text (no trailing newline, no colour codes).

    Raises:
        ValueError: no points, or xs and ys of different length.
    """
    if not xs or len(xs) != len(ys):
        raise ValueError("text_scatter needs as many y values as x values (at least one)")
    width, height = max(width, 10), max(height, 4)
    x_lo, x_hi = _ticks(min(xs), max(xs))
    line_ys = []
    if slope is not None and intercept is not None:
        line_ys = [intercept + slope * x for x in (x_lo, x_hi)]
    y_lo, y_hi = _ticks(min([*ys, *line_ys]), max([*ys, *line_ys]))
    if y_lo > 0 and y_lo < 0.5 * y_hi:
        y_lo = 0.0
    grid = [[" "] * width for _ in range(height)]

    def col(x: float) -> int:
        return min(width - 1, max(0, round((x - x_lo) / (x_hi - x_lo) * (width - 1))))

    def row(y: float) -> int:
        return min(height - 1, max(0, round((y_hi - y) / (y_hi - y_lo) * (height - 1))))

    if line_ys:
        for c in range(width):
            x = x_lo + (x_hi - x_lo) * c / (width - 1)
            grid[row(intercept + slope * x)][c] = LINE  # type: ignore[operator]
    for x, y in zip(xs, ys):
        grid[row(y)][col(x)] = POINT
    labels = [f"{y_hi - (y_hi - y_lo) * r / (height - 1):.3g}" for r in range(height)]
    pad = max(len(label) for label in labels)
    lines = [f"{y_label}"]
    for r in range(height):
        label = labels[r] if r in (0, height // 2, height - 1) else ""
        lines.append(f"{label:>{pad}} ┤{''.join(grid[r])}")
    lines.append(" " * pad + " └" + "─" * width)
    left, right = f"{x_lo:.3g}", f"{x_hi:.3g}"
    lines.append(" " * (pad + 2) + left + right.rjust(width - len(left)))
    lines.append(" " * (pad + 2) + x_label.center(width))
    return lines


def save_png(path: str, xs: Sequence[float], ys: Sequence[float], slope: float,
             intercept: float, title: str = "", x_label: str = "x", y_label: str = "y") -> str:
    """Write a scatter + fitted line PNG to ``path`` (atomically); return the path.

    Uses matplotlib when it is installed (optional extra ``plot``), else Pillow line drawing
    (axes, points, the line, labels in the default bitmap font).

    Raises:
        ConfigError: the folder is missing or not writable.
    """
    import io

    from diffbench.engine.atomic import check_writable_target, write_bytes

    check_writable_target(path)
    buffer = io.BytesIO()
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display over SSH
        import matplotlib.pyplot as plt
    except ImportError:
        _pil_png(buffer, xs, ys, slope, intercept, title, x_label, y_label)
    else:
        fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
        ax.scatter(xs, ys, label="measured")
        x_line = [min(xs), max(xs)]
        ax.plot(x_line, [intercept + slope * x for x in x_line], label="fit")
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.set_title(title)
        ax.legend()
        fig.tight_layout()
        fig.savefig(buffer, format="png")
        plt.close(fig)
    return write_bytes(path, buffer.getvalue())


def _pil_png(buffer, xs, ys, slope, intercept, title, x_label, y_label) -> None:
    from PIL import Image, ImageDraw

    w, h, margin = 640, 420, 60
    image = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(image)
    x_lo, x_hi = _ticks(min(xs), max(xs))
    fit = [intercept + slope * x for x in (x_lo, x_hi)]
    y_lo, y_hi = _ticks(min(0.0, *ys, *fit), max(*ys, *fit))

    def px(x: float, y: float) -> tuple[float, float]:
        return (margin + (x - x_lo) / (x_hi - x_lo) * (w - 2 * margin),
                h - margin - (y - y_lo) / (y_hi - y_lo) * (h - 2 * margin))

    draw.line([(margin, margin), (margin, h - margin), (w - margin, h - margin)], fill="black")
    draw.line([px(x_lo, fit[0]), px(x_hi, fit[1])], fill=(200, 60, 40), width=2)
    for x, y in zip(xs, ys):
        cx, cy = px(x, y)
        draw.ellipse([cx - 4, cy - 4, cx + 4, cy + 4], fill=(40, 90, 200))
    draw.text((margin, 20), title, fill="black")
    draw.text((w // 2 - 40, h - margin + 25), x_label, fill="black")
    draw.text((5, margin - 20), y_label, fill="black")
    draw.text((margin - 5, h - margin + 5), f"{x_lo:.3g}", fill="black")
    draw.text((w - margin - 20, h - margin + 5), f"{x_hi:.3g}", fill="black")
    draw.text((5, margin), f"{y_hi:.3g}", fill="black")
    draw.text((5, h - margin - 10), f"{y_lo:.3g}", fill="black")
    image.save(buffer, format="PNG")
