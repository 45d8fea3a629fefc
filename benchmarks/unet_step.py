"""One SDXL UNet step (and one VAE decode) under candidate accelerations, side by side.

    python benchmarks/unet_step.py --out OUTDIR [--size 1024] [--only graph,regional,...]
        [--profile regional-int8dq,...] [--cap-s 150]

Where ``benchmarks/accelerators.py`` measures whole pipeline calls, this script isolates what
decides the step time once the host is out of the way: every candidate's UNet call is replayed
as a CUDA graph (diffbench's :class:`~diffbench.engine.accelerators.cudagraph.GraphedForward`), so the
figure is GPU time per step. Per candidate, in its own child process (fresh compile state, a
hard time cap; a stalled child dumps its Python stacks to the log before it is killed):

- ``first_call_s``: the first call (compile, capture) — the warmup cost; quantized candidates
  are quantized before it (as ``--quantize`` does: layers inside the compiled blocks only) and
  also report ``eager_quant_rel_err``, the error of one eager step after quantizing;
- ``ms_per_step``: median of 20 CUDA-event-timed graph replays after 3 warm ones;
- ``rel_err``: ||out - eager|| / ||eager|| of the step's output (noise prediction) on fixed
  inputs (SDXL base 1.0 UNet, random weights from the same seed in every child, CFG batch 2);
- ``gpu_ms`` (with ``--profile``): kernel time of one step from torch.profiler, plus the top
  kernels in OUTDIR/profile.txt.

VAE candidates (``vae-*``) time one decode of a (1, 4, size/8, size/8) latent instead.
Results go to OUTDIR/unet_step.jsonl (one line per candidate, flushed as they finish).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)

#: name -> what the child does (see _prepare_unet / _prepare_vae).
CANDIDATES = {
    "eager": "eager UNet, no graph (host-bound reference; writes the reference output)",
    "graph": "CUDA graph of the eager UNet (--compiler cudagraph)",
    "regional": "compile BasicTransformerBlock (compile_repeated_blocks) + graph (fast-start)",
    "regional-cl": "regional + channels_last",
    "regional-resnets": "compile BasicTransformerBlock and ResnetBlock2D + graph",
    "regional-resnets-cl": "regional-resnets + channels_last",
    "regional-autotune": "regional with max-autotune-no-cudagraphs + graph",
    "regional-int8dq": "torchao int8 dynamic quantization of the UNet linears + regional + graph",
    "regional-fp8dq": "torchao float8 rowwise dynamic quantization + regional + graph",
    "regional-resnets-int8dq": "int8dq + regional-resnets + graph",
    "full": "torch.compile of the whole UNet (default mode, fullgraph) + graph",
    "vae-eager": "VAE decode, eager",
    "vae-cl": "VAE decode, channels_last",
    "vae-compile": "VAE decode, torch.compile of the decoder (default mode)",
    "vae-compile-cl": "VAE decode, channels_last + torch.compile of the decoder",
}


def _sync() -> None:
    import torch

    torch.cuda.synchronize()


def _time_ms(call: Any, warm: int = 3, runs: int = 20) -> float:
    """Median CUDA-event time of ``call()`` in ms."""
    import torch

    for _ in range(warm):
        call()
    _sync()
    times = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        call()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def _block_classes(name: str) -> tuple[str, ...]:
    return ("BasicTransformerBlock", "ResnetBlock2D") if "resnets" in name.split("-") else \
        ("BasicTransformerBlock",)


def _quantize(name: str, unet: Any, emit: Any) -> bool:
    """torchao quantization if ``name`` asks for it, as ``--compiler cudagraph --quantize``
    does it: the linear layers inside the compiled blocks only (torchao's eager kernels cannot
    be captured), inductor's coordinate-descent tuning kept off."""
    import types

    from diffbench.engine import families
    from diffbench.engine.accelerators import quantize
    from diffbench.engine.config import RunConfig

    parts = name.split("-")
    if "int8dq" not in parts and "fp8dq" not in parts:
        return False
    cfg = RunConfig(model="synthetic-sdxl", device="cuda", compiler="cudagraph",
                    quantize="int8dq" if "int8dq" in parts else "fp8dq",
                    compiler_config={"regional_blocks": list(_block_classes(name))})
    quantize.apply(types.SimpleNamespace(unet=unet), families.get("sdxl"), cfg,
                   lambda event: emit(getattr(event, "text", event)))
    return True


def _prepare_unet(name: str, unet: Any, emit: Any) -> Any:
    """Apply candidate ``name`` (all but quantization) to ``unet``; return the callable the
    step goes through."""
    import torch

    from diffbench.engine.accelerators.compile import compile_regional
    from diffbench.engine.accelerators.cudagraph import GraphedForward

    parts = name.split("-")
    if "cl" in parts:
        unet.to(memory_format=torch.channels_last)
    kwargs: dict = {"fullgraph": True}
    if "autotune" in parts:
        kwargs["mode"] = "max-autotune-no-cudagraphs"
    if parts[0] == "regional":
        classes = _block_classes(name)
        if "resnets" in parts:
            kwargs["dynamic"] = False  # each ResnetBlock2D shape compiles once, static
        # As --compiler cudagraph with regional_blocks does (also raises the recompile cap).
        emit(f"compiled {compile_regional(unet, kwargs, classes)} blocks of {classes}")
    elif parts[0] == "full":
        unet.compile(**kwargs)  # compiles the module's __call__, not .forward
    if parts[0] == "eager":
        return unet
    return GraphedForward(unet, lambda event: emit(getattr(event, "text", event)))


def _unet_child(spec: dict, emit: Any) -> dict:
    import torch

    from benchmarks.accelerators import _rel_err
    from diffbench.engine import families
    from diffbench.engine.models.synthetic import SDXL_UNET, RandomPool, _unet, materialise

    size, name = spec["size"], spec["candidate"]
    unet = materialise(lambda: _unet(SDXL_UNET), "cuda", torch.bfloat16, RandomPool("cuda"))
    # One CFG step of SDXL (denoiser batch 2), as the family's spec builds it.
    (sample, timestep), kwargs = families.get("sdxl").example_inputs(
        unet, size, size, batch=1, device="cuda", dtype=torch.bfloat16)
    out: dict = {}
    ref_path = spec["ref_path"]
    ref = torch.load(ref_path) if name != "eager" and os.path.exists(ref_path) else None
    with torch.inference_mode():
        if _quantize(name, unet, emit):
            # The quantization error alone, before any compiler (a stalled compile still
            # leaves this figure in the log). Not part of first_call_s.
            plain = unet(sample, timestep, return_dict=False, **kwargs)[0].float().cpu()
            out["eager_quant_rel_err"] = _rel_err(plain, ref)
            emit(f"quantized; eager step rel err {out['eager_quant_rel_err']}")
            del plain
        t0 = time.perf_counter()
        forward = _prepare_unet(name, unet, emit)
        step = lambda: forward(sample, timestep, return_dict=False, **kwargs)[0]  # noqa: E731
        first = step()
        _sync()
        out["first_call_s"] = time.perf_counter() - t0
        out["ms_per_step"] = _time_ms(step)
        result = step().float().cpu()
        if spec.get("profile"):
            from benchmarks.accelerators import profile_call

            out["gpu_ms"] = profile_call(step, spec["profile_path"], f"{name} @{size}")
    del first
    if name == "eager":
        torch.save(result, ref_path)
        out["rel_err"] = 0.0
    else:
        out["rel_err"] = _rel_err(result, ref)
    out["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def _vae_child(spec: dict, emit: Any) -> dict:
    import torch

    from benchmarks.accelerators import _rel_err
    from diffbench.engine.models.synthetic import SDXL_VAE, RandomPool, _vae, materialise

    size, name = spec["size"], spec["candidate"]
    vae = materialise(lambda: _vae(SDXL_VAE), "cuda", torch.bfloat16, RandomPool("cuda"))
    gen = torch.Generator().manual_seed(99)
    latent = torch.randn(1, 4, size // 8, size // 8, generator=gen).to("cuda", torch.bfloat16)
    if "cl" in name.split("-"):
        vae.to(memory_format=torch.channels_last)
    if "compile" in name.split("-"):
        vae.decoder.compile(fullgraph=True)
    out: dict = {}
    with torch.inference_mode():
        decode = lambda: vae.decode(latent, return_dict=False)[0]  # noqa: E731
        t0 = time.perf_counter()
        decode()
        _sync()
        out["first_call_s"] = time.perf_counter() - t0
        out["ms_per_step"] = _time_ms(decode, warm=2, runs=10)
        result = decode().float().cpu()
    ref_path = spec["ref_path"] + ".vae"
    if name == "vae-eager":
        torch.save(result, ref_path)
        out["rel_err"] = 0.0
    elif os.path.exists(ref_path):
        out["rel_err"] = _rel_err(result, torch.load(ref_path))
    return out


def run_child(spec: dict) -> dict:
    """One candidate in this process (a stall dumps stacks to stderr before the cap)."""
    import faulthandler

    faulthandler.dump_traceback_later(max(5.0, spec["cap_s"] - 8.0), repeat=False,
                                      file=sys.stderr)
    emit = lambda text: print(f"[{spec['candidate']}] {text}", file=sys.stderr,  # noqa: E731
                              flush=True)
    child = _vae_child if spec["candidate"].startswith("vae-") else _unet_child
    out = child(spec, emit)
    faulthandler.cancel_dump_traceback_later()
    return out


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="unet-step-out")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--only", default=None, help="comma-separated candidates, in order")
    parser.add_argument("--profile", default="", help="candidates whose step is profiled")
    parser.add_argument("--cap-s", type=float, default=150.0, help="time cap per candidate")
    parser.add_argument("--caps", default="", help="per-candidate caps: 'full=300,...'")
    parser.add_argument("--budget-s", type=float, default=560.0)
    args = parser.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(run_child(json.loads(args.child))), flush=True)
        return 0
    names = args.only.split(",") if args.only else list(CANDIDATES)
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        parser.error(f"unknown candidates: {', '.join(unknown)}")
    try:
        caps = {k: float(v) for k, _, v in (p.partition("=") for p in args.caps.split(",") if p)}
    except ValueError:
        parser.error(f"--caps must look like 'full=300,regional=120', got {args.caps!r}")
    os.makedirs(args.out, exist_ok=True)
    deadline = time.perf_counter() + args.budget_s
    log_path = os.path.join(args.out, "unet_step.log")
    results = os.path.join(args.out, "unet_step.jsonl")
    for name in names:
        cap = min(caps.get(name, args.cap_s), deadline - time.perf_counter())
        row: dict[str, Any] = {"candidate": name, "size": args.size}
        if cap < 20:
            row["error"] = "not run: budget spent"
        else:
            spec = {"candidate": name, "size": args.size, "cap_s": cap,
                    "profile": name in args.profile.split(","),
                    "profile_path": os.path.join(args.out, "profile.txt"),
                    "ref_path": os.path.join(args.out, f"ref-{args.size}.pt")}
            started = time.perf_counter()
            with open(log_path, "a") as log:
                try:
                    proc = subprocess.run(
                        [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)],
                        stdout=subprocess.PIPE, stderr=log, text=True, timeout=cap, cwd=ROOT)
                    found = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
                    row.update(json.loads(found[-1][7:]) if found else
                               {"error": f"exit {proc.returncode}"})
                except subprocess.TimeoutExpired:
                    row["error"] = f"time cap {cap:.0f} s reached (stacks in the log)"
            row["child_s"] = round(time.perf_counter() - started, 1)
        with open(results, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
