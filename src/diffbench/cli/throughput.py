"""`diffbench throughput`: time the pipeline over a range of step counts and fit
time = base + steps x per_step.

    diffbench throughput --model tiny-sd15 --size 64 --steps 2:20:2 --png fit.png -o fit.toml
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register `diffbench throughput`."""
    from diffbench.cli.sweep import add_config_flags

    parser = sub.add_parser(
        "throughput", help="fit pipeline time against denoising steps (base + per-step cost)",
        description="Load the pipeline once (with its accelerator), warm it up, time one call "
                    "per step count (fastest of --repeats, interleaved) and fit "
                    "time = base + steps x per_step by least squares. Reports the base cost "
                    "(prompt encoding, VAE decode), the per-step cost and it/s without the "
                    "base cost, with R^2.")
    parser.add_argument("--steps", dest="step_counts", default="2:20:2",
                        help="step counts: a list 2,4,8 or start:stop[:stride] "
                             "(default 2:20:2)")
    parser.add_argument("--size", default=None, help="N or WIDTHxHEIGHT in pixels")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed calls per step count; the fastest is kept (default 3)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU runs: torch threads while timing (1 is steadiest on a "
                             "busy machine)")
    parser.add_argument("--png", help="also draw the points and the fit to this PNG")
    parser.add_argument("-o", "--output", help="write points and fit as TOML here")
    parser.add_argument("--no-plot", action="store_true", help="skip the terminal plot")
    add_config_flags(parser, skip=("steps",))
    parser.set_defaults(handler=main)
    return parser


def report_lines(result: Any) -> list[str]:
    """Plain-text summary lines of a ThroughputResult (CLI and dashboard)."""
    from diffbench.engine.metrics import MISSING, format_metric

    fit = result.fit
    ips = fit.it_per_s_no_base
    base, per_step = format_metric("base_s", fit.base_s), format_metric("per_step_ms",
                                                                          fit.per_step_ms)
    lines = [
        f"base cost      {base}   (prompt encoding, VAE decode, overhead)",
        f"per-step cost  {per_step}",
        f"throughput     {format_metric('it_per_s_no_base', ips, unit=True)} without the "
        f"base cost" if ips else f"throughput     {MISSING} (time does not grow with steps)",
        f"fit            time = {base} + steps x {per_step}, "
        f"R^2 = {format_metric('r2', fit.r2)}",
    ]
    if fit.r2 < 0.9:
        lines.append("warning: R^2 below 0.9 — timings are noisy (a busy machine?); try more "
                     "--repeats, --threads 1 on CPU, or a wider --steps range")
    return lines


def main(args: argparse.Namespace) -> int:
    """Measure, print the fit and a text plot; write PNG/TOML when asked."""
    from diffbench.cli._console import make_console

    from diffbench.engine import plot, throughput
    from diffbench.engine.session import Session
    from diffbench.cli.sweep import config_from_flags
    from diffbench.engine.sweep.grid import parse_size
    from diffbench.engine.sweep.report import check_output_path

    steps = throughput.parse_steps(args.step_counts)
    extra: dict = {}
    if args.size:
        width, height = (int(p) for p in parse_size(args.size).split("x"))
        extra.update(width=width, height=height)
    cfg = config_from_flags(args, extra)
    cfg = cfg.replace(steps=max(steps))
    check_output_path(args.output)
    check_output_path(args.png)
    err = make_console(stderr=True)
    out = make_console()

    with err.status("loading") as status:
        def on_event(event: Any) -> None:
            kind = type(event).__name__
            if kind == "PhaseStarted":
                status.update(f"{event.phase} {event.detail}".strip())
            elif kind == "CompileProgress":
                status.update(f"warmup: compiling ({event.graphs} graphs, {event.kernels} "
                              f"kernels, {event.elapsed_s:.0f} s)")
            elif kind == "LogMessage":
                err.print(f"{event.level}: {event.text}", highlight=False, markup=False,
                          soft_wrap=True)

        def on_point(done: int, total: int, seconds: float) -> None:
            status.update(f"timing call {done}/{total} ({seconds * 1000:.0f} ms)")

        # measured in this process, as always (the dashboard's goes to a child)
        result = Session(record=False, in_process=True).throughput(
            cfg, steps, args.repeats, on_point=on_point, on_event=on_event,
            threads=args.threads)
    title = (f"{cfg.model} {cfg.compiler} {cfg.width or 'native'}x{cfg.height or 'native'}: "
             f"time against steps")
    out.print(title, highlight=False)
    for n, t in zip(result.steps, result.times_s):
        out.print(f"  {n:>5} steps  {t * 1000:9.1f} ms", highlight=False)
    if not args.no_plot:
        for line in plot.text_scatter(result.steps, result.times_s, result.fit.per_step_s,
                                      result.fit.base_s, x_label="denoising steps",
                                      y_label="time (s)"):
            out.print(line, highlight=False, markup=False)
    for line in report_lines(result):
        out.print(line, highlight=False, markup=False)
    if args.png:
        path = plot.save_png(args.png, result.steps, result.times_s, result.fit.per_step_s,
                             result.fit.base_s, title=title, x_label="denoising steps",
                             y_label="time (s)")
        err.print(f"wrote {path}", highlight=False)
    if args.output:
        from diffbench.engine.sweep.report import write_toml

        path = write_toml(args.output, {"throughput": result.to_dict()})
        err.print(f"wrote {path}", highlight=False)
    return 0
