"""`diffbench check-params`: does the accelerated pipeline still respond to an argument?

    diffbench check-params --model tiny-sd15 --compiler compile --param guidance_scale
    diffbench check-params --compiler compile --input-image in.png --param strength --values 0.4,0.9
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register `diffbench check-params`."""
    from diffbench.engine.check_params import DEFAULT_VALUES
    from diffbench.cli.sweep import add_config_flags

    parser = sub.add_parser(
        "check-params", help="check that an accelerated pipeline does not ignore a call "
                             "argument (guidance scale, strength, ...)",
        description="Run the eager baseline and the accelerated pipeline at two values of a "
                    "call argument and compare how much each output changes. An accelerated "
                    "output that moves less than a tenth of the baseline's means the argument "
                    "was baked in (exit code 1).")
    parser.add_argument("--param", action="append", default=[], metavar="NAME",
                        help=f"call argument to check (repeatable; default guidance_scale); "
                             f"defaults known for: {', '.join(DEFAULT_VALUES)}")
    parser.add_argument("--values", default=None, metavar="A,B",
                        help="the two values (default per argument)")
    parser.add_argument("--size", default=None, help="N or WIDTHxHEIGHT in pixels")
    parser.add_argument("-o", "--output", help="write the results as TOML here")
    add_config_flags(parser)
    parser.set_defaults(handler=main)
    return parser


def main(args: argparse.Namespace) -> int:
    """Print one verdict line per argument; exit 1 when any argument is ignored."""
    from diffbench.cli._console import make_console
    from rich.table import Table

    from diffbench.engine.check_params import parse_value
    from diffbench.engine.session import Session
    from diffbench.cli.sweep import config_from_flags
    from diffbench.engine.errors import ConfigError
    from diffbench.engine.sweep.grid import parse_size
    from diffbench.engine.sweep.report import check_output_path, write_toml

    extra: dict = {}
    if args.size:
        width, height = (int(p) for p in parse_size(args.size).split("x"))
        extra.update(width=width, height=height)
    cfg = config_from_flags(args, extra)
    values = None
    if args.values:
        values = [parse_value(v.strip()) for v in args.values.split(",") if v.strip()]
        if len(values) != 2:
            raise ConfigError(f"--values wants two values A,B, got {args.values!r}")
    check_output_path(args.output)
    err, out = make_console(stderr=True), make_console()
    checks = []
    with err.status("loading") as status:
        def on_event(event: Any) -> None:
            if type(event).__name__ == "CompileProgress":
                status.update(f"compiling ({event.graphs} graphs, {event.kernels} kernels, "
                              f"{event.elapsed_s:.0f} s)")

        session = Session(record=False, in_process=True)  # in this process, as always
        for name in args.param or ["guidance_scale"]:
            checks.append(session.check_params(cfg, name, values, on_event=on_event,
                                               on_stage=status.update))
    table = Table(title=f"{cfg.model}: {cfg.compiler} against eager")
    for column in ("argument", "values", "baseline moves", "accelerated moves",
                   "accel vs base (v1, v2)", "verdict"):
        table.add_column(column)
    colours = {"ok": "green", "ignored": "red", "inconclusive": "yellow"}
    for c in checks:
        table.add_row(c.argument, f"{c.values[0]} -> {c.values[1]}", f"{c.base_delta:.2f}",
                      f"{c.accel_delta:.2f}",
                      f"{c.accel_vs_base[0]:.2f}, {c.accel_vs_base[1]:.2f}",
                      f"[{colours[c.verdict]}]{c.verdict}[/]")
    out.print(table)
    for c in checks:
        out.print(f"{c.argument}: {c.verdict} — {c.message}", highlight=False, markup=False)
    out.print("(distances: RMSE of pixel values, 0..255)", style="dim")
    if args.output:
        path = write_toml(args.output, {"check": [c.to_dict() for c in checks]})
        err.print(f"wrote {path}", highlight=False)
    return 1 if any(c.verdict == "ignored" for c in checks) else 0
