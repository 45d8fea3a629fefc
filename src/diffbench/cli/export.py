"""`diffbench export ID... -o FILE.toml`: write stored runs to a TOML file (atomically)."""

from __future__ import annotations

import argparse

from diffbench.engine.errors import ConfigError
from diffbench.engine.result import STATUSES


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `diffbench export`."""
    parser = sub.add_parser("export", help="export runs to a TOML file",
                            description="Write one or many stored runs to a TOML file "
                            "([run], [config], [environment], [metrics], [steps] per run). "
                            "The file is replaced atomically: never half-written.")
    parser.add_argument("ids", nargs="*", metavar="ID", help="run ids (unique prefixes ok)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE.toml",
                        help="the TOML file to write (replaced if it exists); - writes to "
                             "standard output")
    parser.add_argument("--all", action="store_true",
                        help="export every stored run (filters below apply)")
    parser.add_argument("--model", help="only runs of this model (implies --all)")
    parser.add_argument("--compiler", help="only runs with this compiler (implies --all)")
    parser.add_argument("--status", choices=STATUSES,
                        help="only runs of this status (implies --all)")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Export the runs to ``-o`` (``-`` = standard output, the count then goes to stderr).

    Filters (--model/--compiler/--status) select from every stored run, as --all does.

    Raises:
        ConfigError (exit 2): no ids and no --all/filter, ids with --all or with filters, no
            stored run matching, an unwritable path.
        RunNotFoundError: an unknown or ambiguous id.
    """
    import sys

    from diffbench.engine.atomic import check_writable_target
    from diffbench.engine.export import dumps, write_toml
    from diffbench.engine.history import History

    filters = bool(args.model or args.compiler or args.status)
    if args.ids and args.all:
        raise ConfigError("give run ids or --all, not both")
    if args.ids and filters:
        raise ConfigError("--model/--compiler/--status select stored runs; with ids, leave "
                          "them out")
    if not args.ids and not args.all and not filters:
        raise ConfigError("give the run ids to export (see: diffbench history) or --all")
    to_stdout = args.output == "-"
    if not to_stdout:
        check_writable_target(args.output)  # fail before reading the history
    history = History()
    if not args.ids:
        results = list(reversed(history.list(model=args.model, compiler=args.compiler,
                                             status=args.status)))
        if not results:
            raise ConfigError("no stored runs match; nothing to export")
    else:
        found = {}
        for run_id in args.ids:
            result = history.get(run_id)
            found.setdefault(result.run_id, result)  # "abc" and "abc123" may be one run
        results = list(found.values())
    count = f"{len(results)} run{'s' if len(results) != 1 else ''}"
    if to_stdout:
        sys.stdout.write(dumps(results))
        print(f"exported {count} to standard output", file=sys.stderr)
        return 0
    path = write_toml(results, args.output)
    print(f"exported {count} to {path}")
    return 0
