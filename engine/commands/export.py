"""`diffbench export ID... -o FILE.toml`: write stored runs to a TOML file (atomically)."""

from __future__ import annotations

import argparse

from engine.errors import ConfigError
from engine.result import STATUSES


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `diffbench export`."""
    parser = sub.add_parser("export", help="export runs to a TOML file",
                            description="Write one or many stored runs to a TOML file "
                            "([run], [config], [environment], [metrics], [steps] per run). "
                            "The file is replaced atomically: never half-written.")
    parser.add_argument("ids", nargs="*", metavar="ID", help="run ids (unique prefixes ok)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE.toml",
                        help="the TOML file to write (replaced if it exists)")
    parser.add_argument("--all", action="store_true",
                        help="export every stored run (filters below apply)")
    parser.add_argument("--model", help="with --all: only runs of this model")
    parser.add_argument("--compiler", help="with --all: only runs with this compiler")
    parser.add_argument("--status", choices=STATUSES, help="with --all: only this status")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    """Export; ConfigError (exit 2) for no ids, a bad path; RunNotFoundError for a bad id."""
    from engine.atomic import check_writable_target
    from engine.export import write_toml
    from engine.history import History

    if args.ids and args.all:
        raise ConfigError("give run ids or --all, not both")
    if not args.ids and not args.all:
        raise ConfigError("give the run ids to export (see: diffbench history) or --all")
    if not args.all and (args.model or args.compiler or args.status):
        raise ConfigError("--model/--compiler/--status filter --all; with ids, leave them out")
    check_writable_target(args.output)  # fail before reading the history
    history = History()
    if args.all:
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
    path = write_toml(results, args.output)
    print(f"exported {len(results)} run{'s' if len(results) != 1 else ''} to {path}")
    return 0
