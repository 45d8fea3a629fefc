"""Diffusion-transformer accelerators side by side in one call: FLUX.1-dev / SD3.5-large
architectures at 1024x1024, 28 steps, batch 1, bf16, one GPU.

    python benchmarks/transformer_accelerators.py --out OUTDIR [--suites flux-dev-1024,sd35-large-1024]
        [--only eager,regional+cudagraph,...] [--budget-s 1500] [--steps 28] [--no-warm]
        [--peak-tflops 790] [--warm VARIANTS]
    python benchmarks/transformer_accelerators.py --out OUTDIR --suites tiny-cpu     # CPU smoke test

Each variant runs in its own child process (a fresh interpreter: cold compile caches, a hard
time cap, a crash costs one row). Per variant, through diffbench's own runner (load ->
accelerate -> warmup -> measured call): one warmup call (compilation happens there:
warmup_s; compile cache cold), one measured call end to end (text encoders + denoising + VAE
decode: s/image, device synchronised), denoising ms/step from the step-end timer (steps 2..N,
CUDA events on GPU), peak GiB allocated in the measured call, PSNR / SSIM of the image against
the eager variant's (engine.quality.compare_images), steps computed / skipped by a step cache,
and the FLOP floor: FLOPs of one denoiser call (the family's formula, else counted by
torch.utils.flop_counter in the eager variant) / ``--peak-tflops`` (bf16 dense, measured on
the H100/H200), with the fraction of it the measured ms/step reaches. Compiled variants are
re-run in a second child on the same compile cache folder: warmup warm. Rows are flushed
after every variant to OUTDIR/results.toml and OUTDIR/table.md.

The eager variant of a suite runs first: its image is every other row's reference.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# This file's name would shadow the `transformers` package that diffusers imports.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
for path in (os.path.join(ROOT, "src"), os.path.join(ROOT, "tests")):
    if path not in sys.path:
        sys.path.insert(0, path)

#: bf16 dense matmul rate (TFLOP/s), 8192^3 products on random data, H100 and H200 alike.
PEAK_TFLOPS = 790.0
#: CPU stand-in until the FLUX family's tiny-flux exists (tests/dit_models.py registers it).
TINY = "tiny-flux"

#: suite -> (model, size px, device, dtype, overlay, variants). The overlay changes the
#: settings a variant sets: compiler_config keys are merged into a compiling variant's, other
#: keys replace the variant's own value.
SUITES: dict[str, tuple] = {
    "flux-dev-1024": ("synthetic-flux-dev", 1024, "cuda", "bfloat16", {}, None),
    "sd35-large-1024": ("synthetic-sd35-large", 1024, "cuda", "bfloat16", {}, None),
    # a smoke test of this script on the CPU, seconds per variant: no code generation, and a
    # threshold at which the random tiny model skips steps
    "tiny-cpu": (TINY, 128, "cpu", "float32",
                 {"compiler_config": {"backend": "aot_eager"}, "cache_threshold": 0.3},
                 ("eager", "first-block", "regional", "regional+cudagraph")),
}
_REGIONAL = {"regional": True, "fullgraph": True}
#: variant -> (RunConfig overrides, time cap in s, lossy?). Cheapest first.
VARIANTS: dict[str, tuple[dict, float, bool]] = {
    "eager": ({}, 300, False),
    # memory options: what they save (peak GiB) and cost (s/image)
    "cpu-offload": ({"cpu_offload": True}, 300, False),
    "t5-int8": ({"text_encoder_quant": "int8"}, 300, True),
    "cudagraph": ({"compiler": "cudagraph"}, 300, False),
    "regional+cudagraph": ({"compiler": "cudagraph", "compiler_config": _REGIONAL}, 420, False),
    "regional": ({"compiler": "compile", "compiler_config": {"regional": True}}, 420, False),
    "compile": ({"compiler": "compile", "compiler_config": {"fullgraph": True}}, 560, False),
    "fused+regional+cudagraph": ({"compiler": "cudagraph", "fuse_qkv": True,
                                  "compiler_config": _REGIONAL}, 420, False),
    "cudnn+regional+cudagraph": ({"compiler": "cudagraph", "attention_backend": "cudnn",
                                  "compiler_config": _REGIONAL}, 420, False),
    "cudnn+fused+regional+cudagraph": ({"compiler": "cudagraph", "attention_backend": "cudnn",
                                        "fuse_qkv": True, "compiler_config": _REGIONAL},
                                       420, False),
    "fp8+regional+cudagraph": ({"compiler": "cudagraph", "quantize": "fp8dq",
                                "compiler_config": _REGIONAL}, 480, True),
    "fp8+cudnn+fused+regional+cudagraph": ({"compiler": "cudagraph", "quantize": "fp8dq",
                                            "attention_backend": "cudnn", "fuse_qkv": True,
                                            "compiler_config": _REGIONAL}, 480, True),
    "fp8+compile": ({"compiler": "compile", "quantize": "fp8dq",
                     "compiler_config": {"fullgraph": True}}, 560, True),
    "int8wo+compile": ({"compiler": "compile", "quantize": "int8wo",
                        "compiler_config": {"fullgraph": True}}, 560, True),
    "first-block": ({"cache": "first-block", "cache_threshold": 0.08}, 300, True),
    "first-block+regional": ({"cache": "first-block", "cache_threshold": 0.08,
                              "compiler": "compile", "compiler_config": {"regional": True}},
                             420, True),
    "taylorseer+regional": ({"cache": "taylorseer", "compiler": "compile",
                             "compiler_config": {"regional": True}}, 420, True),
    "fp8+first-block+regional": ({"cache": "first-block", "cache_threshold": 0.08,
                                  "quantize": "fp8dq", "compiler": "compile",
                                  "compiler_config": {"regional": True}}, 480, True),
    # random weights change the first block's residual more than a trained model does: a
    # threshold at which such a model skips steps at all
    "fp8+first-block-0.25+regional": ({"cache": "first-block", "cache_threshold": 0.25,
                                       "quantize": "fp8dq", "compiler": "compile",
                                       "compiler_config": {"regional": True}}, 480, True),
    "fp8+taylorseer-2+regional": ({"cache": "taylorseer", "cache_interval": 2,
                                   "quantize": "fp8dq", "compiler": "compile",
                                   "compiler_config": {"regional": True}}, 480, True),
    "fp8+taylorseer-3+regional": ({"cache": "taylorseer", "cache_interval": 3,
                                   "quantize": "fp8dq", "compiler": "compile",
                                   "compiler_config": {"regional": True}}, 480, True),
}
COMPILED = tuple(name for name, (o, _c, _l) in VARIANTS.items()
                 if o.get("compiler") == "compile" or o.get("compiler_config", {}).get("regional"))


# =========================================================================== child side
def _model_name(model: str) -> str:
    """``model``, or the tests' tiny FLUX stand-in when no built-in of that name exists."""
    from diffbench.engine.models import get_builtin

    if model == TINY and get_builtin(model) is None:
        import dit_models

        return dit_models.register_stand_in()
    return model


def _step_flops(prepared: Any, cfg: Any) -> Optional[float]:
    """FLOPs of one denoiser call at the run's size: the family's formula, else counted."""
    import torch

    spec, denoiser = prepared.spec, prepared.spec.denoiser(prepared.pipe)
    cfg_on = cfg.guidance_scale is None or cfg.guidance_scale > 1
    try:
        return spec.flops_per_step(denoiser.config, prepared.height, prepared.width, 1, cfg_on)
    except NotImplementedError:
        pass
    from torch.utils.flop_counter import FlopCounterMode

    try:
        args, kwargs = spec.example_inputs(denoiser, prepared.height, prepared.width, 1,
                                           cfg_on, prepared.device, prepared.dtype)
    except NotImplementedError:
        return None
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        denoiser(*args, return_dict=False, **kwargs)
    return float(counter.get_total_flops())


def run_child(spec: dict) -> dict:
    """One variant in this process; returns its row (raises on failure)."""
    import torch

    from diffbench.engine import accelerators, measure
    from diffbench.engine.config import RunConfig
    from diffbench.engine.prepare import prepare

    model, size, device, dtype, overlay, _ = SUITES[spec["suite"]]
    overrides = json.loads(json.dumps(VARIANTS[spec["variant"]][0]))  # a deep copy
    for key, value in overlay.items():
        if key == "compiler_config" and overrides.get("compiler", "none") != "none":
            overrides[key] = {**overrides.get(key, {}), **value}
        elif key in overrides and key != "compiler_config":
            overrides[key] = value
    cfg = RunConfig(model=_model_name(model), height=size, width=size, steps=spec["steps"],
                    dtype=dtype, device=device, warmups=1, scheduler="none",
                    compile_cache_dir=spec["cache_dir"], **overrides)
    log = lambda text: print(f"[{spec['suite']}/{spec['variant']}] {text}",  # noqa: E731
                             file=sys.stderr, flush=True)
    row: dict[str, Any] = {}
    prepared = prepare(cfg, lambda e: getattr(e, "text", None) and log(e.text))
    pipe = prepared.pipe
    row["load_s"], row["accelerate_s"] = prepared.load_s, prepared.accelerate_s

    def call(timer: Any = None) -> Any:
        extra = {"callback_on_step_end": timer} if timer is not None else {}
        with torch.inference_mode():
            return pipe(**prepared.call_kwargs(cfg, **extra)).images[0]

    t0 = time.perf_counter()
    call()
    measure.synchronize(device)
    row["warmup_s"] = time.perf_counter() - t0
    accelerators.after_warmup(prepared.state, lambda e: None)
    row["warmup_cache"] = prepared.state.warmup_cache()
    measure.reset_peak_memory(device)
    timer = measure.StepTimer(device)
    measure.synchronize(device)
    t1 = time.perf_counter()
    timer.start()
    image = call(timer)
    measure.synchronize(device)
    row["s_per_image"] = time.perf_counter() - t1
    row["ms_per_step"] = 1000.0 / timer.it_per_s() if timer.it_per_s() else None
    row["peak_gib"] = measure.cuda_peak_gib(device)[0] or measure.peak_rss_gib()
    stats = prepared.state.cache_stats
    if stats is not None:
        row["steps_computed"], row["steps_skipped"] = stats.computed(), stats.skipped()
    image.save(spec["image_path"])
    if spec["variant"] == "eager":
        row["psnr_db"], flops = None, _step_flops(prepared, cfg)
        with open(spec["ref_path"], "w") as handle:
            json.dump({"image": spec["image_path"], "flops": flops}, handle)
    else:
        from diffbench.engine.quality import compare_images

        ref = json.load(open(spec["ref_path"])) if os.path.exists(spec["ref_path"]) else {}
        flops = ref.get("flops")
        if ref.get("image"):
            row["psnr_db"], row["ssim"] = compare_images(spec["image_path"], ref["image"])
    if flops:
        row["tflop_per_step"] = flops / 1e12
        row["floor_ms"] = flops / (spec["peak_tflops"] * 1e12) * 1000.0
        if row["ms_per_step"]:
            row["floor_fraction"] = row["floor_ms"] / row["ms_per_step"]
    return row


# =========================================================================== parent side
def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if value == value else "nan"
    return str(value)


def table(rows: list[dict]) -> str:
    """A markdown table of the rows, each suite's ratio against its eager row."""
    head = ("| suite | variant | s/image | denoise ms/step | x eager | warmup cold s | "
            "warmup warm s | peak GiB | PSNR dB | SSIM | computed/skipped | floor ms | "
            "% of floor | note |")
    lines = [head, "|" + "---|" * 14]
    eager = {r["suite"]: r.get("ms_per_step") for r in rows if r["variant"] == "eager"}
    for r in rows:
        base, ms = eager.get(r["suite"]), r.get("ms_per_step")
        steps = (f"{r['steps_computed']}/{r['steps_skipped']}"
                 if r.get("steps_skipped") is not None else
                 "n/a" if r.get("variant", "").startswith(("pab", "fastercache")) else "–")
        fraction = r.get("floor_fraction")
        lines.append("| " + " | ".join([
            r["suite"], r["variant"], _fmt(r.get("s_per_image"), 3), _fmt(ms, 1),
            _fmt(base / ms if base and ms else None), _fmt(r.get("warmup_s"), 1),
            _fmt(r.get("warm_warmup_s"), 1), _fmt(r.get("peak_gib"), 1),
            _fmt(r.get("psnr_db"), 1), _fmt(r.get("ssim"), 3), steps,
            _fmt(r.get("floor_ms"), 1), _fmt(100 * fraction if fraction else None, 0),
            (r.get("error") or r.get("note") or "")[:100].replace("|", "/")]) + " |")
    return "\n".join(lines)


def _flush(out_dir: str, rows: list[dict], meta: dict) -> None:
    import tomli_w

    clean = [{k: v for k, v in r.items() if v is not None} for r in rows]
    tmp = os.path.join(out_dir, "results.toml.tmp")
    with open(tmp, "wb") as handle:
        tomli_w.dump({"meta": meta, "variants": clean}, handle)
    os.replace(tmp, os.path.join(out_dir, "results.toml"))
    with open(os.path.join(out_dir, "table.md"), "w") as handle:
        handle.write(table(rows) + "\n")


def _spawn(spec: dict, cap_s: float, log_path: str) -> dict:
    """One variant in a child interpreter: its row, or a row with ``error``."""
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
                     f"{tail[-200:]}"}


def _meta(args: argparse.Namespace) -> dict:
    import importlib.metadata

    import torch

    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
            "torch": torch.__version__, "python": sys.version.split()[0],
            "steps": args.steps or "28 (tiny-cpu: 4)", "peak_tflops": args.peak_tflops}
    for dist in ("diffusers", "torchao", "transformers"):
        try:
            meta[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            meta[dist] = "not installed"
    return meta


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="bench-transformers")
    parser.add_argument("--work", default=None, help="scratch folder (caches, images)")
    parser.add_argument("--suites", default="flux-dev-1024,sd35-large-1024")
    parser.add_argument("--only", default=None, help="comma-separated variants")
    parser.add_argument("--budget-s", type=float, default=1500.0)
    parser.add_argument("--steps", type=int, default=None,
                        help="denoising steps (default 28; 4 for tiny-cpu)")
    parser.add_argument("--peak-tflops", type=float, default=PEAK_TFLOPS)
    parser.add_argument("--no-warm", action="store_true", help="skip warm-cache re-runs")
    parser.add_argument("--warm", default=None,
                        help="comma-separated compiled variants to re-run warm (default: all)")
    args = parser.parse_args(argv)
    if args.child:
        from diffbench.engine.errors import DiffbenchError

        try:
            row = run_child(json.loads(args.child))
        except DiffbenchError as exc:  # a refusal is a row, in diffbench's one line
            row = {"error": str(exc).splitlines()[0]}
        print("RESULT " + json.dumps(row), flush=True)
        return 0
    deadline = time.perf_counter() + args.budget_s
    os.makedirs(args.out, exist_ok=True)
    import tempfile

    work = args.work or tempfile.mkdtemp(prefix="diffbench-dit-bench-")
    os.makedirs(work, exist_ok=True)
    log_path = os.path.join(args.out, "bench.log")
    meta, rows = _meta(args), []
    for suite in args.suites.split(","):
        if suite not in SUITES:
            print(f"unknown suite {suite} (known: {', '.join(SUITES)})", file=sys.stderr)
            return 2
        names = args.only.split(",") if args.only else list(SUITES[suite][5] or VARIANTS)
        steps = args.steps or (4 if suite == "tiny-cpu" else 28)
        for variant in ["eager"] + [v for v in names if v != "eager"]:
            if variant not in VARIANTS:
                print(f"unknown variant {variant}", file=sys.stderr)
                continue
            cap = VARIANTS[variant][1]
            row: dict[str, Any] = {"suite": suite, "variant": variant, "steps": steps,
                                   "lossy": VARIANTS[variant][2]}
            left = deadline - time.perf_counter()
            if left < min(cap, 30):
                row["error"] = f"not run: {left:.0f} s of budget left"
            else:
                spec = {"suite": suite, "variant": variant, "steps": steps,
                        "peak_tflops": args.peak_tflops,
                        "cache_dir": os.path.join(work, "cache", f"{suite}-{variant}"),
                        "ref_path": os.path.join(work, f"ref-{suite}.json"),
                        "image_path": os.path.join(work, f"{suite}-{variant}.png")}
                print(f"--- {suite} / {variant} (cap {min(cap, left):.0f} s)", flush=True)
                row.update(_spawn(spec, min(cap, left), log_path))
                left = deadline - time.perf_counter()
                wanted = args.warm.split(",") if args.warm else COMPILED
                if (variant in COMPILED and variant in wanted and not args.no_warm
                        and "error" not in row and left > 30):
                    warm = _spawn(dict(spec, image_path=spec["image_path"] + ".warm.png"),
                                  min(cap, left), log_path)
                    row["warm_warmup_s"] = warm.get("warmup_s")
                    row["warm_cache_state"] = warm.get("warmup_cache")
                    if "error" in warm:
                        row["note"] = f"warm re-run: {warm['error']}"
            rows.append(row)
            _flush(args.out, rows, meta)
            print(table(rows).splitlines()[-1], flush=True)
    print(f"\n{meta['gpu']}, torch {meta['torch']}, diffusers {meta['diffusers']}, "
          f"torchao {meta['torchao']}, {meta['date']}\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
