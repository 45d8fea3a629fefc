"""Eager vs every accelerator, side by side in one run, on the synthetic full-size models.

    python benchmarks/accelerators.py --out OUTDIR [--suites sdxl-1024,sdxl-512,pix2pix-512]
        [--only eager,cudagraph,...] [--budget-s 540] [--steps 30] [--no-warm]

Each variant runs in its own child process (a fresh interpreter: cold compile caches, no
state shared with the previous variant, a hard time cap, and a crash costs one row, not the
table). Per variant: load and accelerate the pipeline, one warmup call (compilation happens
here: warmup_s), one measured 30-step call timed with CUDA events at step ends (it/s as
OneDiff's IterationProfiler, inference_s wall time, device synchronised), peak GiB, the UNet
output's relative error against eager on the same fixed inputs (one denoising step), the final
latents' relative error after the whole call, and % of the FLOP floor (FLOPs of one UNet step
counted by torch's FlopCounterMode / 790 TFLOP/s, the bf16 dense matmul rate measured on the
H200). Compiled variants are then re-run in a second child with the same compile cache
directory: warm-cache warmup. Results are flushed after every variant to OUTDIR/results.toml,
results.jsonl and table.md, so a run cut short still leaves its table.

The eager variant of a suite must run first: it writes the reference outputs and FLOP count.
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

#: bf16 dense matmul rate measured on the H200 (8192^3 products, random data).
PEAK_TFLOPS = 790.0

#: Suites: (model, height/width, task).
SUITES = {
    "sdxl-1024": ("synthetic-sdxl", 1024),
    "sdxl-512": ("synthetic-sdxl", 512),
    "pix2pix-512": ("synthetic-pix2pix", 512),
    # CPU smoke test of this script itself (tiny models, seconds).
    "tiny-cpu": ("tiny-sdxl", 128),
    "tiny-pix2pix-cpu": ("tiny-pix2pix", 128),
}

#: Variants, cheapest first: name -> (RunConfig overrides, time cap in s, lossy?).
VARIANTS: dict[str, tuple[dict, float, bool]] = {
    "eager": ({}, 120, False),
    "cudagraph": ({"compiler": "cudagraph"}, 120, False),
    "deepcache": ({"deepcache": True}, 120, True),
    "fast-start": ({"compiler": "cudagraph", "compiler_config": {"regional": True}}, 150, False),
    "cudagraph+deepcache": ({"compiler": "cudagraph", "deepcache": True}, 120, True),
    "fast-start+deepcache": ({"compiler": "cudagraph", "deepcache": True,
                              "compiler_config": {"regional": True}}, 150, True),
    "fast-start-fused": ({"compiler": "cudagraph",
                          "compiler_config": {"regional": True, "fuse_qkv": True}}, 150, False),
    "fast-start-static": ({"compiler": "cudagraph",
                           "compiler_config": {"regional": True, "dynamic": False}}, 150, False),
    "fast-start-resnets": ({"compiler": "cudagraph", "compiler_config": {
        "regional_blocks": ["BasicTransformerBlock", "ResnetBlock2D"], "dynamic": False}},
        200, False),
    "fast-start-resnets+deepcache": ({"compiler": "cudagraph", "deepcache": True,
                                      "compiler_config": {
                                          "regional_blocks": ["BasicTransformerBlock",
                                                              "ResnetBlock2D"],
                                          "dynamic": False}}, 200, True),
    "fast-start+int8dq": ({"compiler": "cudagraph", "quantize": "int8dq",
                           "compiler_config": {"regional": True}}, 200, True),
    "regional": ({"compiler": "compile",
                  "compiler_config": {"regional": True, "compile_vae": False}}, 150, False),
    "regional+deepcache": ({"compiler": "compile", "deepcache": True,
                            "compiler_config": {"regional": True, "compile_vae": False}},
                           180, True),
    "compile": ({"compiler": "compile", "compiler_config": {"fullgraph": True}}, 300, False),
    "compile-fused": ({"compiler": "compile",
                       "compiler_config": {"fullgraph": True, "fuse_qkv": True,
                                           "memory_format": "channels_last",
                                           "mode": "reduce-overhead"}}, 330, False),
    "compile+int8dq": ({"compiler": "compile", "quantize": "int8dq",
                        "compiler_config": {"fullgraph": True}}, 330, True),
    "compile+fp8dq": ({"compiler": "compile", "quantize": "fp8dq",
                       "compiler_config": {"fullgraph": True}}, 330, True),
    "compile+deepcache": ({"compiler": "compile", "deepcache": True,
                           "compiler_config": {"fullgraph": True}}, 330, True),
    "compile-max-autotune": ({"compiler": "compile-max-autotune"}, 560, False),
    "regional+fp8dq": ({"compiler": "compile", "quantize": "fp8dq",
                        "compiler_config": {"regional": True, "compile_vae": False}}, 150, True),
    "regional+fp8dq+deepcache": ({"compiler": "compile", "quantize": "fp8dq", "deepcache": True,
                                  "compiler_config": {"regional": True, "compile_vae": False}},
                                 150, True),
}
COMPILED = ("fast-start", "fast-start+deepcache", "fast-start-fused", "fast-start-static",
            "fast-start-resnets", "fast-start-resnets+deepcache", "fast-start+int8dq", "regional",
            "regional+deepcache", "regional+fp8dq", "regional+fp8dq+deepcache", "compile",
            "compile-fused", "compile+int8dq", "compile+fp8dq", "compile+deepcache",
            "compile-max-autotune")


# =========================================================================== child side
def _rel_err(out: Any, ref: Any) -> Optional[float]:
    import torch

    if out is None or ref is None or out.shape != ref.shape:
        return None
    out, ref = out.float().cpu(), ref.float().cpu()
    denom = torch.linalg.vector_norm(ref).item()
    if not torch.isfinite(out).all():
        return float("inf")
    return torch.linalg.vector_norm(out - ref).item() / denom if denom else None


def _unet_inputs(spec: Any, unet: Any, size: int, device: str, dtype: Any) -> tuple:
    """Fixed inputs of one CFG denoising step of one image (the family's spec builds them
    from a seeded CPU generator: the same in every process): (sample, timestep, kwargs)."""
    (sample, timestep), kwargs = spec.example_inputs(unet, size, size, batch=1, device=device,
                                                     dtype=dtype)
    return sample, timestep, kwargs


def _sync(device: str) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _reset_peak(device: str) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: str) -> Optional[float]:
    import torch

    if str(device).startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**30
    return None


def _unet_step(prepared: Any, inputs: tuple) -> Any:
    import torch

    sample, timestep, kwargs = inputs
    cache = prepared.state.step_cache
    if cache is not None:
        cache.reset()  # a lone call is a full step
    with torch.inference_mode():
        out = prepared.spec.denoiser(prepared.pipe)(sample, timestep, return_dict=False,
                                                    **kwargs)[0]
    _sync(str(sample.device))
    return out.detach().float().cpu()


def _count_flops(prepared: Any, inputs: tuple) -> Optional[float]:
    """FLOPs of one UNet call (torch.utils.flop_counter; matmuls and convolutions)."""
    import torch

    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return None
    sample, timestep, kwargs = inputs
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        prepared.spec.denoiser(prepared.pipe)(sample, timestep, return_dict=False, **kwargs)
    return float(counter.get_total_flops())


def profile_call(call: Any, path: str, label: str) -> float:
    """Profile one ``call()`` (after two warm ones) with torch.profiler; append its top CUDA
    kernels to ``path`` and return its GPU kernel time in ms (nan without CUDA events)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    for _ in range(2):
        call()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        call()
        torch.cuda.synchronize()
    events = prof.key_averages()
    key = "device_time_total" if hasattr(events[0], "device_time_total") else "cuda_time_total"
    table = events.table(sort_by=key, row_limit=18, max_name_column_width=60)
    try:
        from torch.autograd import DeviceType

        total_cuda = sum(getattr(e, "self_device_time_total", 0) for e in events
                         if getattr(e, "device_type", None) == DeviceType.CUDA) / 1000.0
    except ImportError:
        total_cuda = float("nan")
    cpu_total = max((e.cpu_time_total for e in events), default=0) / 1000.0
    with open(path, "a") as handle:
        handle.write(f"\n=== {label}: GPU kernel time {total_cuda:.1f} ms, "
                     f"host time {cpu_total:.1f} ms ===\n{table}\n")
    return total_cuda


def _profile(prepared: Any, inputs: tuple, path: str, label: str) -> None:
    """Append the top CUDA kernels of one UNet step (torch.profiler) to ``path``."""
    import torch

    sample, timestep, kwargs = inputs
    with torch.inference_mode():
        denoiser = prepared.spec.denoiser(prepared.pipe)
        profile_call(lambda: denoiser(sample, timestep, return_dict=False, **kwargs),
                     path, f"{label}: one UNet step")


def _overhead(pipe: Any, cfg: Any, prepared: Any) -> dict:
    """Wall time of a bare pipeline call vs the same call with diffbench's StepTimer."""
    import torch

    from diffbench.engine import measure
    from diffbench.engine.prepare import call_kwargs

    times: dict[str, list] = {"bare": [], "timed": []}
    with torch.inference_mode():
        for _ in range(2):
            for mode in ("bare", "timed"):
                extra = {}
                if mode == "timed":
                    timer = measure.StepTimer(prepared.device)
                    timer.start()
                    extra["callback_on_step_end"] = timer
                kwargs = call_kwargs(cfg, pipe, prepared.device, prepared.height,
                                     prepared.width, prepared.image, **extra)
                _sync(prepared.device)
                t0 = time.perf_counter()
                pipe(**kwargs)
                _sync(prepared.device)
                times[mode].append(time.perf_counter() - t0)
    bare, timed = min(times["bare"]), min(times["timed"])
    return {"bare_call_s": bare, "timed_call_s": timed,
            "timing_overhead_pct": 100.0 * (timed - bare) / bare}


def run_child(spec: dict) -> dict:
    """One variant in this process; returns the row (raises on failure)."""
    import torch

    from diffbench.engine import accelerators, measure
    from diffbench.engine.compile_progress import CompileWatcher
    from diffbench.engine.config import RunConfig
    from diffbench.engine.models import resolve_source
    from diffbench.engine.prepare import call_kwargs, prepare

    out: dict[str, Any] = {"variant": spec["variant"], "suite": spec["suite"]}
    overrides = dict(VARIANTS[spec["variant"]][0])
    model, size = SUITES[spec["suite"]]
    device = spec.get("device", "cuda")
    fields = dict(model=model, height=size, width=size, steps=spec["steps"],
                  dtype="bfloat16" if device == "cuda" else "float32",
                  device=device, warmups=1, compile_cache_dir=spec["cache_dir"])
    if resolve_source(model).family == "pix2pix":
        fields["input_image"] = spec["input_image"]
    fields.update(overrides)
    cfg = RunConfig(**fields)
    log = lambda text: print(f"[{spec['suite']}/{spec['variant']}] {text}",  # noqa: E731
                             file=sys.stderr, flush=True)

    def emit(event: Any) -> None:
        text = getattr(event, "text", None) or getattr(event, "message", None)
        if text:
            log(f"{type(event).__name__}: {text} ({getattr(event, 'elapsed_s', 0):.1f} s)"
                if type(event).__name__ == "CompileProgress" else text)

    t0 = time.perf_counter()
    prepared = prepare(cfg, emit)
    pipe = prepared.pipe
    out["load_s"], out["accelerate_s"] = prepared.load_s, prepared.accelerate_s
    inputs = _unet_inputs(prepared.spec, prepared.spec.denoiser(pipe), size, device,
                          prepared.dtype)
    watcher = CompileWatcher(emit, poll_s=2.0).start()
    _reset_peak(device)
    t1 = time.perf_counter()
    with torch.inference_mode():
        pipe(**call_kwargs(cfg, pipe, device, size, size, prepared.image))
    _sync(device)
    out["warmup_s"] = time.perf_counter() - t1
    counts = watcher.stop()
    out["graphs"], out["graph_breaks"] = counts.graphs, counts.graph_breaks
    accelerators.after_warmup(prepared.state, emit)
    out["warmup_cache"] = prepared.state.warmup_cache()
    log(f"warmup {out['warmup_s']:.1f} s ({out['warmup_cache']})")

    _reset_peak(device)
    mark = watcher.mark()
    timer = measure.StepTimer(device)
    with torch.inference_mode():
        _sync(device)
        t2 = time.perf_counter()
        timer.start()
        result = pipe(**call_kwargs(cfg, pipe, device, size, size, prepared.image,
                                    callback_on_step_end=timer, output_type="latent"))
        _sync(device)
        out["unet_loop_s"] = time.perf_counter() - t2
    out["recompiles"] = watcher.recompiles_since(mark)
    out["it_per_s"] = timer.it_per_s()
    latents = result.images.detach().float().cpu()
    # inference_s: the seed's definition (whole call, image decoded), a second measured call.
    with torch.inference_mode():
        _sync(device)
        t3 = time.perf_counter()
        pipe(**call_kwargs(cfg, pipe, device, size, size, prepared.image))
        _sync(device)
        out["inference_s"] = time.perf_counter() - t3
    out["peak_gib"] = _peak_gib(device)

    step_out = _unet_step(prepared, inputs)
    ref_path = spec["ref_path"]
    if spec["variant"] == "eager":
        flops = _count_flops(prepared, inputs)
        torch.save({"step": step_out, "latents": latents, "flops": flops}, ref_path)
        out["unet_rel_err"], out["latents_rel_err"] = 0.0, 0.0
    else:
        ref = torch.load(ref_path) if os.path.exists(ref_path) else {}
        out["unet_rel_err"] = _rel_err(step_out, ref.get("step"))
        out["latents_rel_err"] = _rel_err(latents, ref.get("latents"))
        flops = ref.get("flops")
    out["tflop_per_step"] = flops / 1e12 if flops else None
    if flops and out["it_per_s"]:
        out["floor_pct"] = 100.0 * (flops / (PEAK_TFLOPS * 1e12)) * out["it_per_s"]
    if spec.get("overhead"):
        out.update(_overhead(pipe, cfg, prepared))
    if spec.get("profile_path"):
        try:
            _profile(prepared, inputs, spec["profile_path"],
                     f"{spec['suite']}/{spec['variant']}")
        except Exception as exc:  # the profile is extra; never lose the row for it
            log(f"profile failed: {type(exc).__name__}: {exc}")
    out["child_s"] = time.perf_counter() - t0
    return out


# =========================================================================== parent side
def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != value or value in (float("inf"),):
            return str(value)
        if abs(value) < 0.01 and value != 0:
            return f"{value:.1e}"
        return f"{value:.{digits}f}"
    return str(value)


def table(rows: list[dict]) -> str:
    """A markdown table of the rows, grouped by suite, ratio against that suite's eager."""
    head = ("| suite | variant | it/s | x eager | inference_s | warmup_s cold | warmup_s warm "
            "| peak GiB | % FLOP floor | UNet rel err | latents rel err | recompiles | note |")
    lines = [head, "|" + "---|" * 13]
    eager = {r["suite"]: r.get("it_per_s") for r in rows if r["variant"] == "eager"}
    for r in rows:
        base = eager.get(r["suite"])
        ratio = r.get("it_per_s") / base if base and r.get("it_per_s") else None
        lines.append("| " + " | ".join([
            r["suite"], r["variant"], _fmt(r.get("it_per_s"), 1), _fmt(ratio),
            _fmt(r.get("inference_s"), 3), _fmt(r.get("warmup_s"), 1),
            _fmt(r.get("warm_warmup_s"), 1), _fmt(r.get("peak_gib"), 1),
            _fmt(r.get("floor_pct"), 0), _fmt(r.get("unet_rel_err"), 4),
            _fmt(r.get("latents_rel_err"), 3), _fmt(r.get("recompiles"), 0),
            (r.get("error") or r.get("note") or "")[:90].replace("|", "/")]) + " |")
    return "\n".join(lines)


def _flush(out_dir: str, rows: list[dict], meta: dict) -> None:
    import tomli_w

    clean = [{k: v for k, v in r.items() if v is not None} for r in rows]
    with open(os.path.join(out_dir, "results.toml.tmp"), "wb") as handle:
        tomli_w.dump({"meta": meta, "variants": clean}, handle)
    os.replace(os.path.join(out_dir, "results.toml.tmp"), os.path.join(out_dir, "results.toml"))
    with open(os.path.join(out_dir, "table.md"), "w") as handle:
        handle.write(table(rows) + "\n")


def _spawn(spec: dict, cap_s: float, log_path: str) -> dict:
    """Run one variant in a child interpreter; the row, or a row with ``error``."""
    started = time.perf_counter()
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)]
    with open(log_path, "a") as log:
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, timeout=cap_s,
                                  text=True, cwd=ROOT)
        except subprocess.TimeoutExpired:
            return {"error": f"time cap {cap_s:.0f} s reached"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = ""
    try:
        with open(log_path) as handle:
            tail = [ln for ln in handle.read().splitlines() if ln.strip()][-1]
    except (OSError, IndexError):
        pass
    return {"error": f"exit {proc.returncode} after {time.perf_counter() - started:.0f} s: "
                     f"{tail[-160:]}"}


def _input_image(path: str, size: int) -> str:
    from PIL import Image

    if not os.path.exists(path):
        import numpy as np

        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
    return path


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="bench-out")
    parser.add_argument("--work", default=None, help="scratch dir (caches, references)")
    parser.add_argument("--suites", default=",".join(SUITES))
    parser.add_argument("--only", default=None, help="comma-separated variants")
    parser.add_argument("--plan", default=None,
                        help="per-suite variants: 'sdxl-1024=eager,cudagraph;sdxl-512=eager'")
    parser.add_argument("--budget-s", type=float, default=540.0)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--no-warm", action="store_true", help="skip warm-cache re-runs")
    parser.add_argument("--warm", default=",".join(COMPILED),
                        help="compiled variants re-run with a warm compile cache")
    parser.add_argument("--profile", default="eager,compile,cudagraph",
                        help="variants (1024 suite) whose UNet step is profiled")
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        row = run_child(spec)
        print("RESULT " + json.dumps(row), flush=True)
        return 0

    deadline = time.perf_counter() + args.budget_s
    os.makedirs(args.out, exist_ok=True)
    import tempfile

    work = args.work or os.path.join(tempfile.gettempdir(), "diffbench-accel-bench")
    os.makedirs(work, exist_ok=True)
    log_path = os.path.join(args.out, "bench.log")
    profile_path = os.path.join(args.out, "profile.txt")
    import torch

    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
            "torch": torch.__version__, "python": sys.version.split()[0],
            "steps": args.steps, "dtype": "bfloat16", "peak_tflops": PEAK_TFLOPS}
    try:
        import diffusers

        meta["diffusers"] = diffusers.__version__
    except ImportError:
        pass
    rows: list[dict] = []
    only = args.only.split(",") if args.only else list(VARIANTS)
    # Eager first, always: it writes the references the other rows are compared with.
    only = ["eager"] + [v for v in only if v != "eager"]
    profiled = set(args.profile.split(",")) if args.profile else set()
    plan = {suite: only for suite in args.suites.split(",")}
    if args.plan:
        plan = {}
        for part in args.plan.split(";"):
            suite, _, names = part.partition("=")
            plan[suite] = ["eager"] + [v for v in names.split(",") if v and v != "eager"]
    for suite, variants in plan.items():
        model, size = SUITES[suite]
        for variant in variants:
            if variant not in VARIANTS:
                print(f"unknown variant {variant}", file=sys.stderr)
                continue
            if suite != "sdxl-1024" and variant in ("compile-fused", "compile+int8dq",
                                                    "compile+fp8dq", "compile+deepcache",
                                                    "compile-max-autotune",
                                                    "regional+deepcache", "regional+fp8dq",
                                                    "regional+fp8dq+deepcache"):
                continue  # the long compiles run at 1024 only
            cap = VARIANTS[variant][1]
            left = deadline - time.perf_counter()
            row: dict[str, Any] = {"suite": suite, "variant": variant,
                                   "lossy": VARIANTS[variant][2]}
            if left < min(cap, 45):
                row["error"] = f"not run: {left:.0f} s of budget left"
                rows.append(row)
                _flush(args.out, rows, meta)
                continue
            spec = {"suite": suite, "variant": variant, "steps": args.steps,
                    "device": args.device,
                    "cache_dir": os.path.join(work, "cache", f"{suite}-{variant}"),
                    "ref_path": os.path.join(work, f"ref-{suite}.pt"),
                    "input_image": _input_image(os.path.join(work, f"input-{size}.png"), size),
                    "overhead": variant in ("cudagraph",) and suite == "sdxl-1024",
                    "profile_path": profile_path if suite == "sdxl-1024" and
                    variant in profiled else None}
            print(f"--- {suite} / {variant} (cap {min(cap, left):.0f} s)", flush=True)
            row.update(_spawn(spec, min(cap, left), log_path))
            row["lossy"] = VARIANTS[variant][2]
            if variant in COMPILED and variant in args.warm.split(",") and \
                    not args.no_warm and "error" not in row:
                left = deadline - time.perf_counter()
                if left > 40:
                    warm = _spawn(dict(spec, profile_path=None, overhead=False),
                                  min(cap, left), log_path)
                    row["warm_warmup_s"] = warm.get("warmup_s")
                    row["warm_cache_state"] = warm.get("warmup_cache")
                    if "error" in warm:
                        row["note"] = f"warm re-run: {warm['error']}"
            rows.append(row)
            _flush(args.out, rows, meta)
            print(table([r for r in rows if r["suite"] == suite]).splitlines()[-1], flush=True)
    _flush(args.out, rows, meta)
    print(f"\n{meta['gpu']}, torch {meta['torch']}, {meta['date']}\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
