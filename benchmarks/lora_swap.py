"""What swapping a LoRA costs on a torch.compile'd pipeline: swap time, recompiles, first call.

    OMP_NUM_THREADS=1 python benchmarks/lora_swap.py                  # CPU: tiny-sd15, aot_eager
    python benchmarks/lora_swap.py --model synthetic-sdxl --size 1024 --steps 30 \\
        --backend inductor [--regional]                               # GPU

Two random LoRAs of the same shape (diffbench.engine.models.lora, seeds 1 and 2, rank 4, every
attention projection) stand in for trained ones. Per strategy, on a freshly loaded pipeline
(``torch._dynamo.reset()`` in between): LoRA A goes in, the UNet is compiled by diffbench's
``compile`` accelerator, one warmup call compiles, two calls give the steady state; then the
swap to LoRA B is timed, the first call after it is timed and its Dynamo frames traced are
counted (diffbench.engine.compile_progress: > 0 means the swap forced a recompile), and two more calls
give the steady state after the swap. "changed" checks the swap took effect (output differs).

Strategies (diffusers' LoRA API, docs "Load LoRAs for inference" and "hotswapping"):

- ``eager load``: no compiler; ``load_lora_weights(B)`` + ``set_adapters(B)`` — the reference.
- ``load + set_adapters``: compiled with A loaded; load B as a second adapter, activate it.
- ``preloaded set_adapters``: A and B both loaded before compiling; the swap only activates B.
- ``fuse / unfuse``: A fused into the base weights before compiling; swap = unfuse, delete A,
  load and fuse B.
- ``hotswap``: ``enable_lora_hotswap(target_rank=4)`` before loading A and compiling; the swap
  is ``load_lora_weights(B, hotswap=True)`` into A's adapter slot (weights copied in place).

On CPU the default backend is "aot_eager" (Dynamo + AOT autograd without code generation:
recompiles show the same way, minutes cheaper than inductor); times are for the tiny model.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time
from typing import Any, Callable, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

RANK = 4
STRATEGIES = ("eager load", "load + set_adapters", "preloaded set_adapters", "fuse / unfuse",
              "hotswap")


def _timed_call(pipe: Any, kwargs_fn: Callable[[], dict], device: str) -> tuple[float, Any]:
    """(seconds, first image as a numpy int16 array) of one pipeline call."""
    import numpy as np
    import torch

    from diffbench.engine import measure

    with torch.inference_mode():
        measure.synchronize(device)
        t0 = time.perf_counter()
        out = pipe(**kwargs_fn())
        measure.synchronize(device)
    return time.perf_counter() - t0, np.asarray(out.images[0], dtype=np.int16)


def _steady(pipe: Any, kwargs_fn: Callable[[], dict], device: str, calls: int) -> tuple:
    times, image = [], None
    for _ in range(calls):
        seconds, image = _timed_call(pipe, kwargs_fn, device)
        times.append(seconds)
    return statistics.median(times), image


def run_strategy(name: str, args: argparse.Namespace, loras: tuple[str, str]) -> dict:
    """Measure one strategy on a fresh pipeline; returns the row (times in s)."""
    import torch

    from diffbench.engine import accelerators, families
    from diffbench.engine.compile_progress import CompileWatcher
    from diffbench.engine.config import RunConfig
    from diffbench.engine.environment import detect_device
    from diffbench.engine.models.loading import load_pipeline, resolve_dtype
    from diffbench.engine.prepare import call_kwargs

    torch._dynamo.reset()
    compiled = name != "eager load"
    cfg = RunConfig(model=args.model, steps=args.steps, height=args.size, width=args.size,
                    device=args.device, seed=1,
                    compiler="compile" if compiled else "none",
                    compiler_config={"backend": args.backend, "compile_vae": False,
                                     "regional": args.regional},
                    compile_cache_dir=args.cache_dir)
    device = detect_device(cfg.device)
    pipe = load_pipeline(cfg, device, resolve_dtype(cfg.dtype, device))
    lora_a, lora_b = loras

    if name == "hotswap":
        pipe.enable_lora_hotswap(target_rank=RANK)
    pipe.load_lora_weights(lora_a, adapter_name="a")
    if name == "preloaded set_adapters":
        pipe.load_lora_weights(lora_b, adapter_name="b")
        pipe.set_adapters("a")
    if name == "fuse / unfuse":
        pipe.fuse_lora(components=["unet"], adapter_names=["a"])
    if compiled:
        pipe = accelerators.apply_all(pipe, families.for_pipeline(pipe), cfg,
                                      lambda event: None)

    def kwargs() -> dict:
        return call_kwargs(cfg, pipe, device, args.size, args.size)

    warmup_s, _ = _timed_call(pipe, kwargs, device)
    before_s, before_image = _steady(pipe, kwargs, device, args.calls)

    def swap() -> None:
        if name in ("eager load", "load + set_adapters"):
            pipe.load_lora_weights(lora_b, adapter_name="b")
            pipe.set_adapters("b")
        elif name == "preloaded set_adapters":
            pipe.set_adapters("b")
        elif name == "fuse / unfuse":
            pipe.unfuse_lora(components=["unet"])
            pipe.delete_adapters("a")
            pipe.load_lora_weights(lora_b, adapter_name="b")
            pipe.fuse_lora(components=["unet"], adapter_names=["b"])
        elif name == "hotswap":
            pipe.load_lora_weights(lora_b, adapter_name="a", hotswap=True)

    t0 = time.perf_counter()
    swap()
    swap_s = time.perf_counter() - t0
    mark = CompileWatcher.mark()
    first_s, first_image = _timed_call(pipe, kwargs, device)
    recompiles = CompileWatcher.recompiles_since(mark) if compiled else None
    after_s, after_image = _steady(pipe, kwargs, device, args.calls)
    return dict(strategy=name, warmup_s=warmup_s, steady_before_s=before_s, swap_s=swap_s,
                first_call_s=first_s, recompiles=recompiles, steady_after_s=after_s,
                changed=bool(abs(before_image - after_image).max() > 0),
                stable=bool(abs(first_image - after_image).max() == 0))


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def table(rows: list[dict]) -> str:
    """The side-by-side Markdown table (times in s; ratio = first call / steady after)."""
    head = ("| strategy | swap s | first call after s | steady after s | first/steady | "
            "recompiles | warmup s | steady before s | changed |")
    lines = [head, "|" + "---|" * 9]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['strategy']} | failed: {row['error']} |" + " |" * 7)
            continue
        ratio = row["first_call_s"] / row["steady_after_s"] if row["steady_after_s"] else 0
        lines.append("| " + " | ".join([
            row["strategy"], _fmt(row["swap_s"]), _fmt(row["first_call_s"]),
            _fmt(row["steady_after_s"]), f"{ratio:.1f}x", _fmt(row["recompiles"]),
            _fmt(row["warmup_s"]), _fmt(row["steady_before_s"]), _fmt(row["changed"])]) + " |")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    """Run every strategy (or --only ones), print the table, optionally append it to a file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny-sd15")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--calls", type=int, default=2, help="calls per steady-state median")
    parser.add_argument("--backend", default=None,
                        help="torch.compile backend (default: aot_eager on CPU, inductor on GPU)")
    parser.add_argument("--only", default=None, help="comma-separated strategies")
    parser.add_argument("--regional", action="store_true",
                        help="compile only the UNet's repeated blocks (seconds on a GPU, not "
                             "minutes: each strategy's compile and recompile stay cheap)")
    parser.add_argument("--append", default=None, metavar="RESULTS.md",
                        help="append the table with the command and date to this file")
    args = parser.parse_args(argv)

    from diffbench.engine.environment import detect_device
    from diffbench.engine.models.lora import write_random_lora

    device = detect_device(args.device)
    args.backend = args.backend or ("inductor" if device.startswith("cuda") else "aot_eager")
    strategies = args.only.split(",") if args.only else list(STRATEGIES)
    unknown = sorted(set(strategies) - set(STRATEGIES))
    if unknown:
        parser.error(f"unknown strategies {unknown}; choose from {', '.join(STRATEGIES)}")

    import warnings

    import torch

    from diffbench.engine.config import RunConfig
    from diffbench.engine.models.loading import load_pipeline, resolve_dtype

    # peft warns on every second adapter: that is what these strategies do on purpose.
    warnings.filterwarnings("ignore", message="Already found a `peft_config`")
    rows = []
    with tempfile.TemporaryDirectory(prefix="diffbench-lora-swap-") as tmp:
        args.cache_dir = os.path.join(tmp, "compile-cache")
        unet = load_pipeline(RunConfig(model=args.model, device=args.device), device,
                             resolve_dtype("auto", device)).unet
        loras = tuple(write_random_lora(unet, os.path.join(tmp, f"lora{seed}.safetensors"),
                                        rank=RANK, seed=seed) for seed in (1, 2))
        del unet
        for name in strategies:
            print(f"... {name}", file=sys.stderr, flush=True)
            try:
                rows.append(run_strategy(name, args, loras))  # type: ignore[arg-type]
            except Exception as exc:  # one failing strategy must not lose the table
                message = " ".join(str(exc).split())[:120]
                rows.append(dict(strategy=name, error=f"{type(exc).__name__}: {message}"))
    header = (f"{args.model}, {args.size}x{args.size}, {args.steps} steps, device {device}, "
              f"backend {args.backend}{' (regional)' if args.regional else ''}, "
              f"torch {torch.__version__}, LoRA rank {RANK}")
    text = table(rows)
    print(header)
    print(text)
    if args.append:
        date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        command = "python benchmarks/lora_swap.py " + " ".join(argv or sys.argv[1:])
        with open(args.append, "a", encoding="utf-8") as handle:
            handle.write(f"\n### Run {date}\n`{command.strip()}`\n\n{header}\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
