"""`diffbench sweep`: run a grid of configurations, each cell a run in the history.

    diffbench sweep --model tiny-sd15 --set steps=4 \\
        --grid compiler=none,compile --grid size=256,512 --rows compiler --cols size -o out.toml
    diffbench sweep my-sweep.toml            # [base], [grid], [sweep] tables

Ctrl-C stops after the running cell (twice: cancels it); the same command resumes, skipping
finished cells.
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any, Optional

from diffbench.engine.errors import ConfigError
from diffbench.engine.metrics import MISSING, format_metric

METRICS = ("all", "it_per_s", "ratio", "warmup_s", "peak_gib", "inference_s", "psnr_db")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register `diffbench sweep`."""
    parser = sub.add_parser(
        "sweep", help="run a grid over run settings (resumable)",
        description="Run every combination of --grid values as a separate run (own load, "
                    "warmups and seed), recorded in the history. Rerunning the same sweep "
                    "skips finished cells. Ctrl-C stops after the current cell.")
    parser.add_argument("sweep_file", nargs="?", help="TOML file with [base], [grid], [sweep]")
    parser.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2",
                        help="a run setting and its values (repeatable); size=N|WxH sets "
                             "width and height")
    add_config_flags(parser)
    parser.add_argument("--rows", default="", help="grid fields down the table (comma list)")
    parser.add_argument("--cols", default="", help="grid fields across the table (comma list)")
    parser.add_argument("--baseline", default="", metavar="FIELD=VALUE",
                        help="reference cell for the ratio column (default compiler=none)")
    parser.add_argument("--metric", choices=METRICS, default="all",
                        help="what each table cell shows (default: it/s, ratio, warmup, peak)")
    parser.add_argument("--id", dest="sweep_id", default="",
                        help="sweep id (default: derived from the settings, so a rerun resumes)")
    parser.add_argument("-o", "--output", help="write the sweep summary as TOML here")
    parser.add_argument("--in-process", action="store_true",
                        help="run cells in this process (default: one child process per cell)")
    parser.add_argument("--gpus", default="",
                        help="spread cells over devices: 'all' or a list like 0,1 (one child "
                             "process per device)")
    parser.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                        help="send each cell to Ray as one task (a local instance, or a "
                             "cluster ADDRESS such as auto or ray://host:10001); needs the "
                             "ray extra")
    parser.add_argument("--dry-run", action="store_true", help="list the cells and exit")
    parser.set_defaults(handler=main)
    return parser


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def build_sweep(args: argparse.Namespace):
    """The Sweep described by the flags and/or sweep file (raises ConfigError)."""
    from diffbench.engine.sweep.grid import coerce_value, load_sweep_file, parse_grid
    from diffbench.engine.sweep.plan import Sweep
    from diffbench.engine.sweep.report import split_axes

    base: dict[str, Any] = {}
    grid: dict[str, list] = {}
    options: dict[str, Any] = {}
    if args.sweep_file:
        base, grid, options = load_sweep_file(args.sweep_file)
    for name, values in parse_grid(args.grid).items():
        grid[name] = values  # flags replace a file's values for the same field
    base_cfg = config_from_flags(args, base)
    baseline: dict[str, Any] = {}
    spec = args.baseline or options.get("baseline") or ""
    if isinstance(spec, dict):
        baseline = dict(spec)
    elif spec:
        name, sep, value = spec.partition("=")
        if not sep:
            raise ConfigError(f"--baseline wants FIELD=VALUE, got {spec!r}")
        baseline = {name.strip(): coerce_value(name.strip(), value)}
    sweep = Sweep(base=base_cfg, grid=grid, sweep_id=args.sweep_id or options.get("id", ""),
                  baseline=baseline)
    rows = _split(args.rows) if args.rows else list(options.get("rows", []))
    cols = _split(args.cols) if args.cols else list(options.get("cols", []))
    rows, cols = split_axes(sweep, rows, cols)
    return sweep, rows, cols


def add_config_flags(parser: argparse.ArgumentParser, skip: tuple = ()) -> None:
    """The run-setting flags of `diffbench run` (same names, same meaning), plus --profile and
    --set FIELD=VALUE; shared by sweep, throughput and check-params. Only flags the user
    gives override the profile. ``skip``: RunConfig fields whose flag the command replaces.
    """
    from diffbench.cli import run as run_command

    group = parser.add_argument_group("run settings (as `diffbench run`)")
    run_command.add_setting_flags(group, skip=skip)
    group.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                       dest="settings", help="any run setting by its config name (repeatable)")


def config_from_flags(args: argparse.Namespace, base: Optional[dict] = None):
    """RunConfig from a profile, then ``base`` (a sweep file's [base]), then the flags.

    Raises:
        ConfigError: a bad profile, unknown field or bad value, in one line.
    """
    from diffbench.cli import run as run_command
    from diffbench.engine.profiles import build_config
    from diffbench.engine.sweep.grid import coerce_value

    data = dict(base or {})
    profile = getattr(args, "profile", None) or data.pop("profile", None)
    data.update(run_command.config_overrides(args))
    for spec in getattr(args, "settings", []):
        name, sep, value = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise ConfigError(f"--set wants FIELD=VALUE, got {spec!r}")
        data[name] = coerce_value(name, value)
    return build_config(profile, data)


def _preflight():
    from diffbench.engine.session import Session

    return Session(record=False).preflight


class _Interrupts:
    """First Ctrl-C: stop after the running cell. Second: cancel the running cell too."""

    def __init__(self, console) -> None:
        self.stop = threading.Event()
        self.cancel = threading.Event()
        self.console = console
        self._previous = None

    def __enter__(self) -> "_Interrupts":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: Any) -> None:  # noqa: ARG002
        if not self.stop.is_set():
            self.stop.set()
            self.console.print("[yellow]stopping after the current cell "
                               "(Ctrl-C again cancels it)[/]")
        else:
            self.cancel.set()
            self.console.print("[yellow]cancelling the current cell[/]")


def main(args: argparse.Namespace) -> int:
    """Run the sweep; print the table (stdout) and progress (stderr). Exit 0 when every cell
    finished, 1 when some failed, 130 when stopped early."""
    from diffbench.cli._console import make_console
    from rich.markup import escape

    from diffbench.engine.sweep import report
    from diffbench.engine.sweep.grid import cell_key
    from diffbench.engine.sweep.plan import prepare
    from diffbench.engine.sweep.run import run_sweep

    sweep, rows, cols = build_sweep(args)
    report.check_output_path(args.output)
    out = make_console()
    err = make_console(stderr=True)
    cells = sweep.cells()
    if args.gpus and args.ray:
        raise ConfigError("choose --gpus or --ray, not both")
    if args.gpus:  # a dry run checks the devices too: GPU 7 must exist before a real run
        from diffbench.engine.multi_device import parse_devices

        parse_devices(args.gpus)
    if args.dry_run:
        # the same checks as a real sweep: a bad cell is refused here too (exit 2)
        prepared = prepare(sweep, _preflight())
        for i, (cell, _cfg, reason) in enumerate(prepared, 1):
            note = f"  (would fail: {reason})" if reason else ""
            out.print(f"{i:>3}  {cell_key(cell)}{note}", highlight=False)
        out.print(f"{len(cells)} cells, sweep id {sweep.sweep_id}", highlight=False)
        return 0
    from diffbench.engine.history import History
    from diffbench.engine.session import Session

    history = History()
    session = Session(history, in_process=args.in_process)
    workers = None
    if args.gpus and args.ray:
        raise ConfigError("choose --gpus or --ray, not both")
    if args.gpus or args.ray:
        from diffbench.engine import multi_device

        multi_device.check_device_setting(sweep.base)
        if args.gpus:
            workers = multi_device.device_workers(args.gpus, python=sweep.base.python,
                                                  timeout_s=sweep.base.timeout_s)
        else:
            workers = multi_device.ray_workers(None if args.ray == "local" else args.ray,
                                               python=sweep.base.python,
                                               timeout_s=sweep.base.timeout_s)
    progress = SweepProgress(err, len(cells), sweep.sweep_id)
    with _Interrupts(err) as interrupts, progress:
        outcomes = run_sweep(
            sweep, history, preflight=session.preflight, on_event=progress.on_event,
            on_cell_start=progress.on_cell_start, on_cell_done=progress.on_cell_done,
            stop=interrupts.stop, cancel=interrupts.cancel, workers=workers,
            on_notice=lambda text: err.print(f"[yellow]{escape(text)}[/]", soft_wrap=True),
            session=session)
    if args.ray:
        from diffbench.engine.multi_device import shutdown_ray

        shutdown_ray()
    # The file first: a reader of stdout that left early (| head) must not cost the results.
    # A file that cannot be written is reported after the table (the runs are in the history).
    from diffbench.engine.errors import DiffbenchError

    path, write_error = None, None
    if args.output:
        try:
            path = report.write_toml(args.output,
                                     report.to_toml_dict(sweep, outcomes, rows, cols))
        except DiffbenchError as exc:
            write_error = exc
    out.print(render_table(sweep, outcomes, rows, cols, args.metric))
    for row in report.summarise(sweep, outcomes):
        if row["status"] in ("failed", "cancelled"):
            out.print(f"[red]{row['status']}[/] {escape(row['key'])}: "
                      f"{escape(row.get('error') or '')}", highlight=False, soft_wrap=True)
    if write_error is not None:
        raise write_error
    if path:
        err.print(f"wrote {path}", highlight=False)
    pending = [o for o in outcomes if o.result is None]
    if pending or interrupts.stop.is_set() and any(o.status == "cancelled" for o in outcomes):
        cancelled = sum(o.status == "cancelled" for o in outcomes)
        left = f"{len(pending)} of {len(outcomes)} cells not run" + \
            (f", {cancelled} cancelled" if cancelled else "")
        err.print(f"stopped: {left}; run the same command again to resume (sweep id "
                  f"{sweep.sweep_id})", highlight=False, soft_wrap=True)
        return 130
    if any(o.status != "finished" for o in outcomes):
        return 1
    return 0



# ------------------------------------------------------------------ rendering
def _fmt(value: Optional[float], spec: str, unit: str = "") -> str:
    return MISSING if value is None else f"{value:{spec}}{unit}"


def _cell_text(row: dict, metric: str):
    """Rich Text for one table cell: status or the chosen figure(s), coloured by ratio."""
    from rich.text import Text

    if row["status"] == "pending":
        return Text("not run", style="dim")
    if row["status"] != "finished":
        return Text(row["status"], style="red")
    ratio = row.get("ratio")
    style = "" if ratio is None else "green" if ratio >= 1.05 else "red" if ratio <= 0.95 else ""
    ratio_text = _fmt(ratio, ".2f", "x")
    if row.get("clear") is False:  # the calls' spreads allow a ratio of 1.0
        style, ratio_text = "", f"{ratio_text} (no clear difference)"
    lines = {
        # figures in the metrics catalog's format, each with its unit (no header names it)
        **{key: format_metric(key, row.get(key), unit=True)
           for key in ("it_per_s", "warmup_s", "peak_gib", "inference_s", "psnr_db")},
        "ratio": ratio_text,
    }
    lines["warmup_s"] = "warmup " + lines["warmup_s"]
    if metric == "all":
        text = "\n".join(lines[k] for k in ("it_per_s", "ratio", "warmup_s", "peak_gib"))
    else:
        text = lines[metric]
    if row.get("image_flag"):
        text += f"\n{row['image_flag']} image"
    if row.get("device"):
        text += f"\n[{row['device']}]"
    return Text(text, style=style)


def render_table(sweep, outcomes, rows: list[str], cols: list[str], metric: str = "all"):
    """A rich Table: one row per combination of the ``rows`` fields, one column per
    combination of the ``cols`` fields (grid order); each cell shows ``metric``."""
    import itertools

    from rich.table import Table

    from diffbench.engine.sweep.grid import cell_key, format_value
    from diffbench.engine.sweep.report import summarise

    by_key = {row["key"]: row for row in summarise(sweep, outcomes)}
    names = list(sweep.grid)
    row_combos = list(itertools.product(*(sweep.grid[r] for r in rows)))
    col_combos = list(itertools.product(*(sweep.grid[c] for c in cols))) or [()]
    baseline = ", ".join(f"{k}={format_value(v)}" for k, v in sweep.baseline.items())
    table = Table(title=f"sweep {sweep.sweep_id} (ratio: it/s over {baseline})",
                  show_lines=True)
    table.add_column(" / ".join(rows) or "cell", style="bold")
    for combo in col_combos:
        table.add_column(" ".join(f"{c}={format_value(v)}" for c, v in zip(cols, combo))
                         or metric, justify="right")
    for row_combo in row_combos:
        label = ", ".join(format_value(v) for v in row_combo)  # header names the fields
        cells = []
        for col_combo in col_combos:
            values = {**dict(zip(rows, row_combo)), **dict(zip(cols, col_combo))}
            key = cell_key({n: values[n] for n in names})
            cells.append(_cell_text(by_key[key], metric))
        table.add_row(label, *cells)
    return table


class SweepProgress:
    """Progress on stderr: a bar over cells and the running cell's phase / step."""

    def __init__(self, console, total: int, sweep_id: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.console = console
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), console=console, transient=True)
        self.task = self.progress.add_task(f"sweep {sweep_id}", total=total)
        self.running: dict[str, str] = {}
        self.done = 0  # cells finished (or found finished) so far
        self._lock = threading.Lock()

    def __enter__(self) -> "SweepProgress":
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def _refresh(self) -> None:
        text = "; ".join(f"{k}: {v}" for k, v in self.running.items())
        self.progress.update(self.task, description=text or "sweep")

    def on_cell_start(self, outcome, total: int) -> None:
        with self._lock:
            where = f" on {outcome.device}" if outcome.device else ""
            self.running[outcome.key] = f"starting{where}"
            self._refresh()

    def on_event(self, outcome, event) -> None:
        name = type(event).__name__
        with self._lock:
            if name == "PhaseStarted":
                self.running[outcome.key] = f"{event.phase} {event.detail}".strip()
            elif name == "StepFinished":
                call = "warmup" if event.call == "warmup" else "measure"
                self.running[outcome.key] = f"{call} step {event.index}/{event.total}"
            elif name == "CompileProgress":
                self.running[outcome.key] = (f"compiling ({event.graphs} graphs, "
                                             f"{event.elapsed_s:.0f} s)")
            else:
                return
            self._refresh()

    def on_cell_done(self, outcome, total: int) -> None:
        from rich.markup import escape

        with self._lock:
            self.running.pop(outcome.key, None)
            self.progress.advance(self.task)
            self._refresh()
            result = outcome.result
            m = result.metrics
            key, error = escape(outcome.key), escape(result.error or "")
            where = escape(f" [{outcome.device}]") if outcome.device else ""
            self.done += 1
            if outcome.resumed:
                line = (f"[dim]{key}: finished earlier "
                        f"({format_metric('it_per_s', m.it_per_s, unit=True)})[/]")
            elif result.status == "finished":
                line = (f"[green]done[/] {key}{where}: "
                        f"{format_metric('it_per_s', m.it_per_s, unit=True)}, "
                        f"warmup {format_metric('warmup_s', m.warmup_s)}")
            else:
                line = f"[red]{result.status}[/] {key}{where}: {error}"
            self.console.print(escape(f"[{self.done}/{total}] ") + line, highlight=False)
