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
from typing import Any, Optional

from diffbench.engine.config import DEVICES, DTYPES, QUANTIZE_MODES, TASKS

#: flag -> (RunConfig field, type). Every one defaults to "not given" (argparse.SUPPRESS).
_CONFIG_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--model", "model", str, "built-in name (tiny-sd15, tiny-sdxl, tiny-pix2pix, "
     "synthetic-*), local diffusers folder, or a hub id in the local HF cache"),
    ("--variant", "variant", str, "weights variant, e.g. fp16"),
    ("--custom-pipeline", "custom_pipeline", str, "diffusers custom pipeline (needs "
     "--trust-remote-code)"),
    ("--scheduler", "scheduler", str, "scheduler class name, or 'none' to keep the model's "
     "(default EulerAncestralDiscreteScheduler)"),
    ("--lora", "lora", str, "local LoRA .safetensors file or folder"),
    ("--controlnet", "controlnet", str, "ControlNet: 'random' (built from the model's UNet "
     "config, random weights), a local ControlNet folder, or a hub id in the local HF cache"),
    ("--steps", "steps", int, "denoising steps (num_inference_steps; default 30)"),
    ("--prompt", "prompt", str, "prompt"),
    ("--negative-prompt", "negative_prompt", str, "negative prompt"),
    ("--seed", "seed", int, "torch.Generator seed, re-applied before every call (default 333)"),
    ("--warmups", "warmups", int, "warmup calls before the measured one (default 1)"),
    ("--batch", "batch", int, "images per prompt (default 1)"),
    ("--height", "height", int, "pixels, multiple of 8 (default: the model's native size)"),
    ("--width", "width", int, "pixels, multiple of 8 (default: the model's native size)"),
    ("--input-image", "input_image", str, "input image: img2img, or instruct-pix2pix"),
    ("--control-image", "control_image", str, "ControlNet conditioning image (default: edges "
     "of --input-image, else a synthetic line pattern)"),
    ("--output-image", "output_image", str, "write the measured call's first image (format "
     "from the extension, e.g. .png, .jpg; PNG otherwise)"),
    ("--extra-call-kwargs", "extra_call_kwargs", str, "JSON object passed to the pipeline call"),
    ("--compiler", "compiler", str, "none | compile | compile-max-autotune | cudagraph | "
     "nexfort | oneflow (default none)"),
    ("--compiler-config", "compiler_config", str, "JSON object of compiler options, e.g. "
     "'{\"mode\": \"max-autotune\", \"memory_format\": \"channels_last\"}'"),
    ("--quantize-config", "quantize_config", str, "JSON object of quantization options"),
    ("--cache-interval", "cache_interval", int, "DeepCache: full UNet every N steps "
     "(default 3)"),
    ("--cache-layer-id", "cache_layer_id", int, "DeepCache layer id (default 0)"),
    ("--cache-block-id", "cache_block_id", int, "DeepCache block id (default 0)"),
    ("--task", "task", str, f"{' | '.join(TASKS)} (default: inferred from model and input)"),
    ("--strength", "strength", float, "img2img strength in (0, 1]; runs int(steps*strength) "
     "steps (default 0.8)"),
    ("--guidance-scale", "guidance_scale", float, "CFG scale (default: the pipeline's)"),
    ("--dtype", "dtype", str, f"{' | '.join(DTYPES)} (auto: float16 on CUDA, float32 on CPU)"),
    ("--device", "device", str, f"{' | '.join(DEVICES)} or cuda:N (default auto)"),
    ("--python", "python", str, "interpreter for the child process (e.g. a separate venv "
     "with nexfort)"),
    ("--timeout", "timeout_s", float, "stop the run after this many seconds"),
    ("--compile-cache-dir", "compile_cache_dir", str, "compile cache folder for this run "
     "(default: $DIFFBENCH_CACHE_DIR/compile/[<profile>__]<model>__<compiler>, else the "
     "user cache dir)"),
]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register `diffbench run` on the subparsers object."""
    parser = sub.add_parser(
        "run", help="run one benchmark (load, accelerate, warmup, measure) and print metrics",
        description="Run one benchmark: load the pipeline, apply the compiler, run the warmup "
                    "call(s), time one measured call, print Warmup time, Inference time, "
                    "Iterations per second and Max used memory.",
        argument_default=argparse.SUPPRESS)
    for flag, dest, kind, text in _CONFIG_FLAGS:
        parser.add_argument(flag, dest=dest, type=kind, help=text)
    parser.add_argument("--quantize", dest="quantize", nargs="?", const="auto",
                        help=f"torchao quantization of the UNet: {' | '.join(QUANTIZE_MODES)} "
                             "(bare --quantize: quant_type from --quantize-config, else "
                             "int8dq)")
    parser.add_argument("--deepcache", dest="deepcache", action="store_true",
                        help="DeepCache-style step caching")
    parser.add_argument("--trust-remote-code", dest="trust_remote_code", action="store_true",
                        help="allow custom pipelines and non-safetensors weights")
    parser.add_argument("--profile", default=None, help="profile name (see profiles/) or a "
                        "path to a .toml file; flags override it")
    parser.add_argument("--export", default=None, metavar="PATH.toml",
                        help="write the run summary as TOML")
    parser.add_argument("--print-output", action="store_true", default=False,
                        help="also print the full result as JSON on stdout")
    parser.add_argument("--in-process", action="store_true", default=False,
                        help="run in this process instead of a child process")
    parser.add_argument("--no-history", action="store_true", default=False,
                        help="do not record the run in the history")
    parser.set_defaults(handler=main)
    return parser


def config_overrides(args: argparse.Namespace) -> dict:
    """RunConfig keyword arguments for the flags the user actually gave."""
    given = vars(args)
    overrides = {dest: given[dest] for _, dest, _, _ in _CONFIG_FLAGS if dest in given}
    for dest in ("deepcache", "trust_remote_code"):
        if dest in given:
            overrides[dest] = True
    if "quantize" in given:
        mode = given["quantize"]
        if mode == "auto":
            mode = _mode_from_quantize_config(overrides.get("quantize_config"))
        overrides["quantize"] = mode
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


def main(args: argparse.Namespace) -> int:
    """Run `diffbench run`. Returns 0 finished, 1 failed, 130 cancelled; raises
    DiffbenchError (exit 2) for bad input before anything runs."""
    from diffbench.engine.profiles import build_config
    from diffbench.engine.session import Session

    cfg = build_config(args.profile, config_overrides(args))
    session = Session(record=not args.no_history, in_process=args.in_process)
    child = session.start_child(cfg)
    try:
        session.preflight(cfg)
        from diffbench.engine.atomic import check_writable_target

        for target in (args.export, cfg.output_image):
            if target:
                check_writable_target(target)  # before the run: never compute, then fail to save

        from diffbench.cli._run_view import RunView

        from diffbench.cli._console import make_console

        # With --print-output stdout carries only the JSON; the table goes to stderr.
        view = RunView(cfg, out=make_console(stderr=True) if args.print_output else None)
        with view:
            result = session.launch(cfg, view.on_event, child=child)
    finally:
        if child is not None:
            child.discard()  # a failed check: stop the waiting child (no-op after a run)
    session.on_warning = view.warn
    # Store first, print last: a reader of stdout that left early (| head) must not cost the
    # run its history row or its export.
    if result.status == "finished" and session.record_runs and \
            not getattr(result, "baseline_checked", False):  # else the child compared already
        session.attach_baseline(result)
    _export(result, args.export, view)
    if session.record_runs:
        session.record(result)
    view.print_summary(result)
    if args.print_output:
        print(json.dumps(result.to_dict(), default=str))
    return {"finished": 0, "cancelled": 130}.get(result.status, 1)


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
        view.note(f"exported to {Session.export([result], path)}")
    except DiffbenchError as exc:
        view.warn(f"export failed: {exc}")
