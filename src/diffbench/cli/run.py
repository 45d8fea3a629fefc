"""`diffbench run`: one benchmark run from flags and/or a profile, with live progress.

Flags and their names follow OneDiff's benchmark script (onediff/benchmarks/
text_to_image.py) so its commands work with `diffbench run` in place of
`python3 text_to_image.py`. Only flags the user gives override the profile.

Order of work (nothing is half-written on bad input): validate flags -> RunConfig -> start
the child process (default; it imports torch and diffusers while this one checks) ->
preflight (model source, input image, compiler availability) -> check the export target ->
run (in that child, or --in-process in this one) -> export -> history -> print the table.
When a check fails the waiting child is killed before the one-line error (exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional

from diffbench.engine import catalog


def _flag_type(setting: catalog.Setting) -> Any:
    """argparse ``type`` of a value flag: the catalog's coercion, named after the kind so a
    bad value reads "invalid int value: 'x'"; JSON flags stay text (RunConfig parses them and
    names the setting)."""
    if setting.kind in (str, dict):
        return str

    def convert(text: str) -> Any:
        return catalog.coerce(setting.name, text, none_words=False)

    convert.__name__ = setting.kind_name
    return convert


def add_setting_flags(parser: Any, skip: tuple = ()) -> None:
    """Add one flag per catalog setting that has one (``diffbench run``'s flags; sweep,
    throughput and check-params share them). Every flag but --profile defaults to "not
    given" (argparse.SUPPRESS), so only flags the user gives override a profile.

    ``parser``: an ArgumentParser or argument group. ``skip``: setting names whose flag the
    command replaces with its own.
    """
    for setting in catalog.cli_settings():
        if setting.name in skip:
            continue
        cli = setting.cli
        # argparse tests "not given" by identity: hand it its own SUPPRESS object
        default = argparse.SUPPRESS if cli.default == argparse.SUPPRESS else cli.default
        kwargs: dict[str, Any] = {"dest": setting.name, "help": setting.help,
                                  "default": default}
        if cli.action:
            kwargs["action"] = cli.action
        else:
            kwargs["type"] = _flag_type(setting)
            if cli.nargs:
                kwargs.update(nargs=cli.nargs, const=cli.const)
        if cli.metavar:
            kwargs["metavar"] = cli.metavar
        parser.add_argument(cli.flag, **kwargs)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register `diffbench run` on the subparsers object."""
    parser = sub.add_parser(
        "run", help="run one benchmark (load, accelerate, warmup, measure) and print metrics",
        description="Run one benchmark: load the pipeline, apply the compiler, run the warmup "
                    "call(s), time the measured calls (--repeat), print Warmup time, "
                    "Inference time and Iterations per second (medians over the measured "
                    "calls) and Max used memory.",
        argument_default=argparse.SUPPRESS)
    add_setting_flags(parser)
    parser.add_argument("--export", default=None, metavar="PATH.toml",
                        help="write the run summary as TOML ('-': to standard output, "
                             "the table then goes to standard error)")
    parser.add_argument("--print-output", action="store_true", default=False,
                        help="also print the full result as JSON on stdout")
    parser.add_argument("--in-process", action="store_true", default=False,
                        help="run in this process instead of a child process")
    parser.add_argument("--no-history", action="store_true", default=False,
                        help="do not record the run in the history")
    parser.add_argument("--stall-timeout", type=_stall_seconds, default=None, metavar="SECONDS",
                        help="fail a run whose child sends nothing for this long between "
                             "denoising steps (6x that while loading, compiling, decoding; "
                             "default 600; 0 = never)")
    parser.set_defaults(handler=main)
    return parser


def _stall_seconds(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (off) or a positive, finite number of "
                                         f"seconds, got {text!r}")
    return value


def config_overrides(args: argparse.Namespace) -> dict:
    """RunConfig keyword arguments for the setting flags the user actually gave (--profile
    is not one: it names the preset the overrides go on)."""
    given = vars(args)
    overrides = {s.name: given[s.name] for s in catalog.cli_settings()
                 if s.name in given and s.cli.default == argparse.SUPPRESS}
    if "quantize" in overrides and overrides["quantize"] == "auto":
        overrides["quantize"] = _mode_from_quantize_config(overrides.get("quantize_config"))
    return overrides


def _mode_from_quantize_config(raw: Optional[str]) -> str:
    try:
        quant_type = json.loads(raw).get("quant_type") if raw else None
    except (ValueError, AttributeError):
        quant_type = None  # RunConfig reports the bad JSON
    if quant_type:
        from diffbench.engine.accelerators.quantize import QUANT_TYPES

        return QUANT_TYPES.get(quant_type, quant_type)
    return "int8dq"


#: Exit code of a run that ended but whose history row could not be written (its results are
#: still printed and exported); a failed run exits 1 regardless.
HISTORY_NOT_WRITTEN = 3


def main(args: argparse.Namespace) -> int:
    """Run `diffbench run`. Returns 0 finished, 1 failed, 3 finished but not recorded in the
    history, 130 cancelled (Ctrl-C), 128 + N stopped by signal N (SIGHUP 129, SIGTERM 143:
    the run is recorded as "interrupted"); raises DiffbenchError (exit 2) for bad input
    before anything runs."""
    from diffbench.cli._signals import Termination
    from diffbench.engine.profiles import build_config
    from diffbench.engine.session import Session

    cfg = build_config(args.profile, config_overrides(args))
    session = Session(record=not args.no_history, in_process=args.in_process,
                      stall_timeout_s=args.stall_timeout)
    with Termination() as term:
        begun = None
        child = session.start_child(cfg)
        try:
            session.preflight(cfg)
            from diffbench.engine.atomic import check_writable_target

            if args.export == "-" and args.print_output:
                from diffbench.engine.errors import ConfigError

                raise ConfigError("--export - and --print-output both write to standard "
                                  "output; give one of them")
            for target in (args.export, cfg.output_image):
                if target and target != "-":
                    check_writable_target(target)  # before the run: never compute, then fail

            from diffbench.cli._run_view import RunView

            from diffbench.cli._console import make_console

            # With --print-output (or --export -) stdout carries only the JSON (the TOML);
            # the table goes to stderr.
            to_stderr = args.print_output or args.export == "-"
            view = RunView(cfg, out=make_console(stderr=True) if to_stderr else None)
            begun = session.begin(cfg)  # a row now: a killed diffbench still leaves a trace
            with view:
                result = session.launch(cfg, view.on_event, child=child, begun=begun)
        except KeyboardInterrupt:
            if term.reason is None:
                session.interrupted(begun, "cancelled before the run started")
                raise
            session.interrupted(begun, term.reason)
            print(f"diffbench: interrupted: {term.reason}", file=sys.stderr)
            return term.exit_code or 1
        finally:
            if child is not None:
                child.discard()  # a failed check: stop the waiting child (no-op after a run)
        term.defer()  # from here a signal waits: the result is saved first
        if term.reason is not None and result.status != "finished":
            result.status, result.error = "interrupted", term.reason
        session.on_warning = view.warn
        # Store first, print last: a reader of stdout that left early (| head) must not cost
        # the run its history row or its export.
        if result.status == "finished" and session.record_runs and \
                not getattr(result, "baseline_checked", False):  # else the child compared
            session.attach_baseline(result)
        _export(result, args.export, view)
        not_recorded = None
        if session.record_runs:
            not_recorded = session.record(result)  # warns "history not updated: ..."
        elif not args.no_history:  # the history could not be opened when the run began
            not_recorded = session.history_error or "history not available"
            view.warn(f"history not available: {not_recorded}")
        view.print_summary(result)
        if args.print_output:
            print(json.dumps(result.to_dict(), default=str))
    if term.exit_code is not None:
        return term.exit_code
    code = {"finished": 0, "cancelled": 130}.get(result.status, 1)
    return HISTORY_NOT_WRITTEN if code == 0 and not_recorded else code


def _export(result: Any, path: Optional[str], view: Any) -> None:
    """Write the TOML summary of a finished run; a failure is a warning, never lost output."""
    if not path:
        return
    if result.status != "finished":
        view.warn(f"not exported: the run was {result.status}")
        return
    from diffbench.engine.errors import DiffbenchError
    from diffbench.engine.session import Session

    try:
        if path == "-":
            from diffbench.engine.export import dumps

            sys.stdout.write(dumps([result]))
            sys.stdout.flush()
            view.note("exported to standard output")
            return
        view.note(f"exported to {Session.export([result], path)}")
    except DiffbenchError as exc:
        view.warn(f"export failed: {exc}")
