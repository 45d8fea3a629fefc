"""`diffbench compare A B`: the figures of two stored runs side by side, with B/A ratios."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any, Optional

from diffbench.engine.result import RunResult

#: (Metrics field, label, better when "higher"/"lower"/None) in the order printed.
ROWS = (
    ("it_per_s", "iterations/s", "higher"),
    ("inference_s", "inference s", "lower"),
    ("warmup_s", "warmup s (incl. compile)", "lower"),
    ("compile_s", "compile s", "lower"),
    ("load_s", "load s", "lower"),
    ("step_ms_p50", "step ms p50", "lower"),
    ("step_ms_p90", "step ms p90", "lower"),
    ("peak_allocated_gib", "peak allocated GiB", "lower"),
    ("peak_reserved_gib", "peak reserved GiB", "lower"),
    ("peak_rss_gib", "peak RSS GiB", "lower"),
    ("recompiles", "recompiles (measured call)", "lower"),
    ("steps_run", "steps run", None),
    ("psnr_db", "PSNR dB vs baseline", "higher"),
    ("ssim", "SSIM vs baseline", "higher"),
)
#: Config keys that never explain a difference in speed (hidden from the settings diff).
_QUIET_KEYS = {"output_image", "profile", "sweep_id", "sweep_cell"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `diffbench compare`."""
    parser = sub.add_parser("compare", help="compare two stored runs (B over A)",
                            description="Print two runs' figures side by side with the ratio "
                            "B/A, the settings that differ, and the image similarity of B "
                            "to A when both images exist.")
    parser.add_argument("a", metavar="A", help="run id of the reference (prefix ok)")
    parser.add_argument("b", metavar="B", help="run id to compare with it (prefix ok)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.set_defaults(handler=main)


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    """b / a, or None when either is missing or a is 0."""
    if a is None or b is None or isinstance(a, bool) or isinstance(b, bool) or a == 0:
        return None
    return b / a


def comparison(a: RunResult, b: RunResult) -> dict[str, Any]:
    """Rows {metric, label, a, b, ratio, better} for metrics measured in either run, the
    differing settings {key: [a, b]}, and image similarity of B to A (or None)."""
    rows = []
    for name, label, better in ROWS:
        va, vb = getattr(a.metrics, name, None), getattr(b.metrics, name, None)
        if va is None and vb is None:
            continue
        rows.append({"metric": name, "label": label, "a": va, "b": vb, "ratio": ratio(va, vb),
                     "better": better})
    keys = sorted((set(a.config) | set(b.config)) - _QUIET_KEYS)
    settings = {k: [a.config.get(k), b.config.get(k)] for k in keys
                if a.config.get(k) != b.config.get(k)}
    return {"a": a.run_id, "b": b.run_id, "rows": rows, "settings": settings,
            "image": image_similarity(a, b)}


def image_similarity(a: RunResult, b: RunResult) -> Optional[dict[str, Any]]:
    """PSNR/SSIM of B's image against A's when both files exist; a note when not comparable."""
    if not (a.image_path and b.image_path):
        return None
    if not (os.path.isfile(a.image_path) and os.path.isfile(b.image_path)):
        return {"note": "an image file is missing"}
    try:
        from diffbench.engine.quality import compare_images

        psnr, ssim = compare_images(b.image_path, a.image_path)
    except (ValueError, OSError) as exc:
        return {"note": " ".join(str(exc).split())}
    return {"psnr_db": psnr, "ssim": ssim}


def main(args: argparse.Namespace) -> int:
    """Print the comparison. RunNotFoundError (exit 2) for an unknown id."""
    from diffbench.engine.history import History

    history = History()
    a, b = history.get(args.a), history.get(args.b)
    data = comparison(a, b)
    if args.json:
        print(json.dumps(data, indent=2, default=str))
        return 0
    from diffbench.cli._console import make_console
    from rich.markup import escape
    from rich.table import Table

    console = make_console()
    table = Table(title=f"B / A   (A = {a.run_id} {a.status}, B = {b.run_id} {b.status})",
                  title_justify="left")
    table.add_column("metric")
    table.add_column(f"A {a.config.get('compiler', '')}", justify="right")
    table.add_column(f"B {b.config.get('compiler', '')}", justify="right")
    table.add_column("B/A", justify="right")
    for row in data["rows"]:
        table.add_row(row["label"], _num(row["a"]), _num(row["b"]), _ratio_text(row))
    console.print(table)
    if data["settings"]:
        diff = Table(title="Settings that differ", title_justify="left")
        diff.add_column("setting")
        diff.add_column("A")
        diff.add_column("B")
        for key, (va, vb) in data["settings"].items():
            diff.add_row(key, _plain(va), _plain(vb))
        console.print(diff)
    image = data["image"]
    if image and "psnr_db" in image:
        console.print(f"image B vs A: PSNR {image['psnr_db']:.2f} dB, SSIM {image['ssim']:.4f}")
    elif image:
        console.print(f"image B vs A: not compared ({image['note']})")
    for run in (a, b):
        if run.status != "finished":
            console.print(f"[yellow]note: run {run.run_id} {run.status}: "
                          f"{escape(str(run.error))}[/]", soft_wrap=True)
    return 0


#: Shown for a value one run lacks, and for a ratio that cannot be formed (missing or 0 / 0).
MISSING = "–"


def _num(value: Any) -> str:
    if value is None:
        return MISSING
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"


def _ratio_text(row: dict) -> str:
    value = row["ratio"]
    if value is None:
        return MISSING
    text = f"{value:.2f}x"
    better = row["better"]
    if better is None or abs(value - 1.0) < 0.02:
        return text
    good = value > 1.0 if better == "higher" else value < 1.0
    return f"[green]{text}[/]" if good else f"[red]{text}[/]"


def _plain(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)
