"""`diffbench doctor`: the environment and, per backend, whether it can run here and why not."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `diffbench doctor`."""
    parser = sub.add_parser("doctor", help="check the environment and every backend",
                            description="Print the environment (python, torch, CUDA, GPU, "
                            "Hugging Face cache) and whether each compiler and accelerator "
                            "can run here; if not, why and what to install.")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="check the backends for this device (default: cuda if usable)")
    parser.add_argument("--python", metavar="PATH", default=None,
                        help="check another interpreter instead (as `diffbench run --python` "
                        "would use it), e.g. a venv with torch 2.4 + nexfort")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Print the report. Exit code 0 (doctor informs; it does not fail on missing extras)."""
    from diffbench.engine.doctor import collect, collect_in

    report = collect_in(args.python, args.device) if args.python else collect(args.device)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    from diffbench.cli._console import make_console
    from rich.markup import escape
    from rich.table import Table

    console = make_console()
    env = Table(title="Environment", show_header=False, title_justify="left")
    env.add_column("what", style="bold")
    env.add_column("value", overflow="fold")
    for key, value in report.environment.items():
        env.add_row(key, "[dim]not installed[/dim]" if value is None else str(value))
    console.print(env)
    table = Table(title=f"Backends on {report.device}", title_justify="left")
    table.add_column("backend", style="bold")
    table.add_column("kind")
    table.add_column("status")
    table.add_column("why not / what to install", overflow="fold")
    for check in report.checks:
        status = "[green]ok[/green]" if check.ok else "[red]unavailable[/red]"
        # escaped: a reason may hold brackets ("pip install 'diffbench[quantize]'")
        table.add_row(check.name, check.kind, status, escape(check.reason) if not check.ok
                      else f"[dim]{escape(check.description)}[/dim]")
    console.print(table)
    missing = report.unavailable()
    console.print(f"{len(report.checks) - len(missing)} of {len(report.checks)} backends can "
                  f"run here.")
    return 0
