"""`diffbench history`: list stored runs (filters), delete one, import an export, reset."""

from __future__ import annotations

import argparse
import json
import sys

from diffbench.engine.metrics import MISSING, format_metric, table_columns, value_of
from diffbench.engine.result import STATUSES, RunResult


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `diffbench history`."""
    parser = sub.add_parser("history", help="list stored runs",
                            description="List the runs stored in the history database "
                            "(newest first). DIFFBENCH_HOME sets its folder.")
    parser.add_argument("--model", help="only runs of this model")
    parser.add_argument("--compiler", help="only runs with this compiler or accelerator "
                        "label, as the table shows it (e.g. deepcache or none+deepcache)")
    parser.add_argument("--status", choices=STATUSES, help="only runs with this status")
    parser.add_argument("--limit", type=_positive_int, default=30,
                        help="show at most N runs (default 30; 0 = all)")
    parser.add_argument("--json", action="store_true", help="print the runs as JSON lines")
    parser.add_argument("--delete", metavar="ID", help="delete the run with this id (prefix ok)")
    parser.add_argument("--import", dest="import_file", metavar="FILE.toml",
                        help="add the runs of a diffbench TOML export to the history "
                             "(- reads standard input)")
    parser.add_argument("--reset", action="store_true",
                        help="move the database aside (to <file>.bak-<time>) and start empty")
    parser.add_argument("--path", action="store_true", help="print the database path")
    parser.set_defaults(handler=main)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def main(args: argparse.Namespace) -> int:
    """Run the subcommand. HistoryError propagates (one line, via diffbench.cli.main)."""
    from diffbench.engine.history import History

    history = History()
    if args.path:
        print(history.path)
        return 0
    if args.reset:
        backup = history.reset()
        if backup is None:
            print(f"no history database at {history.path}; nothing to move")
        else:
            print(f"moved {history.path} to {backup}; the next run starts a new history")
        return 0
    if args.delete is not None:  # --delete '' is a mistake, not "no deletion"
        print(f"deleted run {history.delete(args.delete)}")
        return 0
    if args.import_file is not None:
        if not args.import_file:
            from diffbench.engine.errors import ConfigError

            raise ConfigError("--import wants an export file (or - for standard input)")
        from diffbench.engine.export import read_toml

        from diffbench.engine.history import RunNotFoundError

        if args.import_file == "-":  # as `diffbench export -o -` writes
            from diffbench.engine.export import loads

            from diffbench.engine.errors import ConfigError

            if sys.stdin is None or sys.stdin.isatty():
                raise ConfigError("--import - reads an export from standard input; pipe one "
                                  "in: diffbench export ... -o - | diffbench history --import -")
            results = loads(sys.stdin.buffer.read(), "standard input")
        else:
            results = read_toml(args.import_file)
        known = 0
        for result in results:
            try:
                known += history.get(result.run_id).run_id == result.run_id
            except RunNotFoundError:
                pass
        history.add_many(results)
        added = len(results) - known
        source = "standard input" if args.import_file == "-" else args.import_file
        line = f"imported {added} new run{'s' if added != 1 else ''} from {source}"
        if known:
            line += f"; {known} already in the history (updated from the file)"
        print(line)
        return 0
    runs = history.list(model=args.model, accel=args.compiler, status=args.status,
                        limit=args.limit or None)
    if args.json:
        for run in runs:
            print(json.dumps(run.to_dict()))
        return 0
    if not runs and (args.model or args.compiler or args.status):
        print("no stored run matches these filters (diffbench history lists them all)")
        return 0
    print_runs(runs, title=f"History ({history.path})")
    return 0


def print_runs(runs: list[RunResult], title: str = "Runs") -> None:
    """Print ``runs`` as a rich table (id, time, status, model, size, compiler, then the
    metrics catalog's table columns, error)."""
    from rich import box
    from diffbench.cli._console import make_console
    from diffbench.engine.baseline import accel_label
    from rich.table import Table

    console = make_console()
    if not runs:
        console.print("no runs stored yet; run one with: diffbench run")
        return
    colors = {"finished": "green", "failed": "red", "cancelled": "yellow", "running": "cyan",
              "interrupted": "magenta"}
    columns = table_columns()
    rows = []
    for run in runs:
        cfg = run.config or {}
        size = f"{cfg.get('width')}x{cfg.get('height')}" if cfg.get("height") else MISSING
        model = str(cfg.get("model", MISSING))
        if cfg.get("task") not in (None, "t2i"):
            model += f" ({cfg['task']})"
        rows.append([run.run_id, run.started_at.replace("T", " ")[5:16], run.status, model,
                     size, accel_label(cfg),
                     *(format_metric(c.key, value_of(run, c.key), unit=False) for c in columns),
                     run.error or ""])
    headers = ("id", "started UTC", "status", "model", "size", "compiler",
               *(c.column for c in columns), "error")
    numeric = {"size", *(c.column for c in columns)}
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    # On a narrow terminal, leave out the least useful columns rather than squeezing all:
    # the start time, the size, then the metrics from the last (the headline stays).
    keep = list(range(len(headers) - 1))
    drops = [1, 4, *range(len(headers) - 2, 6, -1)]
    for drop in drops:
        if sum(widths[i] + 3 for i in keep) + 15 <= console.width:
            break
        keep.remove(drop)
    room = max(10, console.width - sum(widths[i] + 3 for i in keep) - 2)
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for i in keep:
        table.add_column(headers[i], justify="right" if headers[i] in numeric else "left",
                         no_wrap=True, min_width=widths[i])
    # The reason of a failure takes what width is left, cut to one line.
    table.add_column("error", no_wrap=True, max_width=room)
    for row in rows:
        row[2] = f"[{colors.get(row[2], 'white')}]{row[2]}[/]"
        error = row[-1] if len(row[-1]) <= room else row[-1][:room - 1] + "…"
        table.add_row(*[row[i] for i in keep], error)
    console.print(table)
