"""`diffbench compare A B`: the figures of two stored runs side by side, with how B compares
with A ("1.84x faster"); rows and their text come from the metrics catalog, as in the
dashboard's compare dialog."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any, Optional

from diffbench.engine.metrics import compare_rows, format_metric
from diffbench.engine.result import RunResult

#: Config keys that never explain a difference in speed (hidden from the settings diff).
_QUIET_KEYS = {"output_image", "profile", "sweep_id", "sweep_cell"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `diffbench compare`."""
    parser = sub.add_parser("compare", help="compare two stored runs (B over A)",
                            description="Print two runs' figures side by side with how B "
                            "compares with A (B/A in --json), the settings that differ, and the image similarity of B "
                            "to A when both images exist.")
    parser.add_argument("a", metavar="A", help="run id of the reference (prefix ok)")
    parser.add_argument("b", metavar="B", help="run id to compare with it (prefix ok)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.set_defaults(handler=main)


def comparison(a: RunResult, b: RunResult) -> dict[str, Any]:
    """Rows {metric, label, a, b, ratio (B / A), better, verdict; ratio_low / ratio_high
    when the runs' measured calls give a range} for the catalog's compare metrics measured
    in either run (diffbench.engine.metrics.compare_rows), the differing settings
    {key: [a, b]}, image similarity of B to A (or None), and different_hosts: the host keys
    (diffbench.engine.environment.HOST_KEYS) whose values differ ([] for one host)."""
    rows = [{"metric": row.key, "label": row.label, "a": row.a, "b": row.b,
             "ratio": row.ratio, "better": row.better, "verdict": row.verdict}
            for row in compare_rows(a, b)]
    keys = sorted((set(a.config) | set(b.config)) - _QUIET_KEYS)
    settings = {k: [a.config.get(k), b.config.get(k)] for k in keys
                if a.config.get(k) != b.config.get(k)}
    from diffbench.engine.environment import different_hosts

    for row, full in zip(rows, compare_rows(a, b)):
        if full.ratio_low is not None:
            row.update(ratio_low=full.ratio_low, ratio_high=full.ratio_high)
    return {"a": a.run_id, "b": b.run_id, "rows": rows, "settings": settings,
            "image": image_similarity(a, b),
            "different_hosts": different_hosts(a.environment or {}, b.environment or {})}


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
    table = Table(title=f"B vs A   (A = {a.run_id} {a.status}, B = {b.run_id} {b.status})",
                  title_justify="left")
    table.add_column("metric")
    table.add_column(f"A {a.config.get('compiler', '')}", justify="right")
    table.add_column(f"B {b.config.get('compiler', '')}", justify="right")
    table.add_column("B vs A", justify="right")
    for row in compare_rows(a, b):
        style = {"better": "green", "worse": "red"}.get(row.direction or "")
        verdict = f"[{style}]{row.verdict}[/]" if style else row.verdict
        table.add_row(row.label, row.a_text, row.b_text, verdict)
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
        console.print(f"image B vs A: PSNR {format_metric('psnr_db', image['psnr_db'])}, "
                      f"SSIM {format_metric('ssim', image['ssim'])}")
    elif image:
        console.print(f"image B vs A: not compared ({escape(image['note'])})")
    if data["different_hosts"]:
        what = ", ".join(f"{key} {a.environment[key]} vs {b.environment[key]}"
                         for key in data["different_hosts"])
        console.print(f"[yellow]warning: A and B ran on different hosts ({escape(what)}): "
                      f"their figures are not like for like[/]", soft_wrap=True)
    for run in (a, b):
        if run.status != "finished":
            console.print(f"[yellow]note: run {run.run_id} {run.status}: "
                          f"{escape(str(run.error))}[/]", soft_wrap=True)
    return 0


def _plain(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)
