"""Eager vs CUDA graph with several measured calls: spread, GPU busy fraction, fraction of
the dense bf16 peak, side by side (issue: numbers a user can trust on a noisy host).

    python benchmarks/repeat_spread.py [--out OUTDIR] [--model synthetic-sdxl] [--size 1024]
        [--steps 30] [--repeat 5] [--dtype bfloat16] [--variants none,cudagraph]

Each variant is one ``diffbench run --in-process --repeat N --no-history --export`` in its
own fresh interpreter (no compile or CUDA-graph state shared, a crash costs one row). From
each export it prints it/s as the median with min and max over the N measured calls, the
spread ((max - min) / median), inference time, GPU busy fraction (kernel time per step over
the measured step time; "-" off CUDA), FLOPs per step and the fraction of the GPU's dense
bf16 peak, and the run's notices (the spread and host-bound lines). The table goes to stdout
and, with ``--out``, to OUTDIR/table.md with the exports beside it; figures belong in
benchmarks/RESULTS.md.

On a CPU box, ``--model tiny-sd15 --size 64 --steps 3 --repeat 2 --variants none`` checks
the plumbing (cudagraph needs CUDA: its row says why it could not run).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent


def run_variant(compiler: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One ``diffbench run`` in a fresh interpreter; its figures as a row dict (``error``
    set when the run did not finish)."""
    export = out / f"{compiler}.toml"
    command = [sys.executable, "-m", "diffbench.cli.main", "run", "--model", args.model,
               "--height", str(args.size), "--width", str(args.size), "--steps",
               str(args.steps), "--repeat", str(args.repeat), "--warmups", str(args.warmups),
               "--compiler", compiler, "--in-process", "--no-history", "--export",
               str(export)]
    if args.dtype:
        command += ["--dtype", args.dtype]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run(command, capture_output=True, text=True, env=env,
                          timeout=args.timeout_s)
    if proc.returncode != 0 or not export.is_file():
        lines = [x for x in proc.stderr.splitlines() if x.strip()]
        return {"variant": compiler, "error": lines[-1] if lines else f"exit {proc.returncode}"}
    from diffbench.engine.export import read_toml

    [result] = read_toml(export)
    return row_of(compiler, result)


def row_of(variant: str, result: Any) -> dict[str, Any]:
    """The table row of one RunResult (figures None where not measured)."""
    from diffbench.engine.metrics import value_of

    m = result.metrics
    return {"variant": variant, "calls": len(m.it_per_s_calls), "it_per_s": m.it_per_s,
            "it_per_s_min": m.it_per_s_min, "it_per_s_max": m.it_per_s_max,
            "spread": m.spread, "inference_s": m.inference_s, "step_ms_p50": m.step_ms_p50,
            "busy": m.busy_fraction, "busy_source": m.busy_source,
            "tflop_per_step": m.tflop_per_step, "tflops": value_of(m, "achieved_tflops"),
            "peak_fraction": value_of(m, "peak_fraction"), "gpu": result.environment.get("gpu"),
            "load": result.environment.get("load_average"), "notices": list(result.notices)}


def _fmt(value: Optional[float], spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(rows: list[dict[str, Any]]) -> str:
    """A markdown table of the rows, then each row's notices and errors."""
    lines = ["| variant | calls | it/s median (min-max) | spread | inference s | step p50 ms "
             "| GPU busy | TFLOP/step | TFLOP/s | of dense bf16 peak |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['variant']} | - | - | - | - | - | - | - | - | - |")
            notes.append(f"- {row['variant']}: {row['error']}")
            continue
        ips = (f"{_fmt(row['it_per_s'], '.2f')} ({_fmt(row['it_per_s_min'], '.2f')}-"
               f"{_fmt(row['it_per_s_max'], '.2f')})")
        busy = _fmt(row["busy"], ".0%") + (f" ({row['busy_source']})" if row["busy_source"]
                                           else "")
        lines.append(f"| {row['variant']} | {row['calls']} | {ips} | "
                     f"{_fmt(row['spread'], '.1%')} | {_fmt(row['inference_s'], '.3f')} | "
                     f"{_fmt(row['step_ms_p50'], '.1f')} | {busy} | "
                     f"{_fmt(row['tflop_per_step'], '.3g')} | {_fmt(row['tflops'], '.3g')} | "
                     f"{_fmt(row['peak_fraction'], '.1%')} |")
        notes += [f"- {row['variant']}: {n}" for n in row["notices"]]
    first = next((r for r in rows if "error" not in r), {})
    head = f"GPU: {first.get('gpu') or '-'}; load average at start: {first.get('load') or '-'}"
    return "\n".join([head, "", *lines, "", *notes]) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    """Run every variant, print the table (and write it under --out). Returns 0 when every
    variant finished, 1 otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="folder for table.md and the exports")
    parser.add_argument("--model", default="synthetic-sdxl")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--warmups", type=int, default=1)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--variants", default="none,cudagraph",
                        help="compilers to run, comma-separated (default none,cudagraph)")
    parser.add_argument("--timeout-s", type=float, default=280.0,
                        help="wall-clock cap per variant (seconds)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="repeat-spread-"))
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for compiler in [v.strip() for v in args.variants.split(",") if v.strip()]:
        try:
            rows.append(run_variant(compiler, args, out))
        except subprocess.TimeoutExpired:
            rows.append({"variant": compiler, "error": f"over {args.timeout_s:g} s"})
        print(f"{compiler}: done", file=sys.stderr, flush=True)
    text = table(rows)
    (out / "table.md").write_text(text)
    print(text)
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
