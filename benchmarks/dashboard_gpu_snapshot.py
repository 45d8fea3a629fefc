"""Screenshots of the dashboard's live GPU telemetry and step chart during a real run.

Runs the dashboard headless (Textual's App.run_test, driven like a Pilot test), starts a run
of a built-in model through the real child process (no network: synthetic-* and tiny-*
models are built in code), waits until the measured call is under way and telemetry samples
have arrived, and saves two SVG screenshots: PATH (the GPU tab: utilisation, memory, power,
clock, temperature, host load) and PATH with "-steps" before ".svg" (the Charts tab: step
times of the warmup and measured calls). Nothing is written to your history: the run goes to
a temporary DIFFBENCH_HOME.

    python benchmarks/dashboard_gpu_snapshot.py --out docs/screenshots/dashboard-gpu.svg
    python benchmarks/dashboard_gpu_snapshot.py --model tiny-sd15 --size 64x64 \\
        --out /tmp/cpu.svg            # CPU check: the panel says the run is CPU-only

Exit code 0 when both screenshots were saved and telemetry arrived, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="SVG of the GPU tab (PATH-steps.svg too)")
    parser.add_argument("--model", default="synthetic-sdxl")
    parser.add_argument("--size", default="1024x1024", help="WxH of the run")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmups", type=int, default=1)
    parser.add_argument("--compiler", default="none")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--interval", type=float, default=0.25,
                        help="seconds between telemetry samples (the dashboard's default: 1)")
    parser.add_argument("--cols", type=int, default=140)
    parser.add_argument("--rows", type=int, default=48)
    parser.add_argument("--timeout", type=float, default=540.0, help="seconds for the run")
    return parser.parse_args()


async def _snapshot(args: argparse.Namespace) -> int:
    from diffbench.tui.app import DiffbenchApp

    out = Path(args.out)
    steps_out = out.with_name(out.stem + "-steps" + (out.suffix or ".svg"))
    out.parent.mkdir(parents=True, exist_ok=True)
    width, _, height = args.size.partition("x")
    app = DiffbenchApp()  # the real engine: a child process, which sends the telemetry
    async with app.run_test(size=(args.cols, args.rows)) as pilot:
        await pilot.pause(0.5)
        app.form().load({"model": args.model, "steps": args.steps, "warmups": args.warmups,
                         "compiler": args.compiler, "device": args.device,
                         "width": int(width), "height": int(height or width)})
        await pilot.pause(0.5)
        app.action_run()
        await pilot.pause(0.2)
        if not app.running:
            print(f"the run did not start: {app.query_one('#validation').render()}",
                  file=sys.stderr)
            return 1
        cfg = app.running_cfg
        print(f"running {cfg.model} {cfg.width}x{cfg.height}, {cfg.steps} steps, "
              f"{cfg.warmups} warmup(s), compiler {cfg.compiler}, device {cfg.device}")
        start = time.monotonic()

        def live() -> bool:  # the measured call half done, with telemetry samples
            series = app._live_series
            measured = series.calls.get("measured", []) if series is not None else []
            total = series.totals.get("measured", 0) if series is not None else 0
            log = app._telemetry
            return bool(total) and len(measured) + 1 >= total / 2 and \
                log is not None and len(log.samples) >= 3

        while app.running and not live() and time.monotonic() - start < args.timeout:
            await pilot.pause(0.1)
        mid_run = app.running
        app.action_show_tab("tab_gpu")
        await pilot.pause(0.5)
        app._redraw_telemetry()
        await pilot.pause(0.2)
        out.write_text(app.export_screenshot(title="diffbench: live GPU telemetry"),
                       encoding="utf-8")
        app.action_show_tab("tab_charts")
        await pilot.pause(0.5)
        app._redraw_charts()
        await pilot.pause(0.2)
        steps_out.write_text(app.export_screenshot(title="diffbench: live step chart"),
                             encoding="utf-8")
        while app.running and time.monotonic() - start < args.timeout:
            await pilot.pause(0.2)
        if app.running:
            app.action_cancel()
            while app.running:
                await pilot.pause(0.2)
        log = app._telemetry
        latest = log.latest if log is not None else None
        result = app.last_result
        print(f"saved {out} and {steps_out} ({'during' if mid_run else 'after'} the run)")
        if result is not None:
            print(f"run {result.run_id}: {result.status}, it/s {result.metrics.it_per_s}"
                  f"{', ' + result.error if result.error else ''}")
        if latest is None:
            print("no telemetry arrived", file=sys.stderr)
            return 1
        print(f"telemetry: {len(log.samples)} samples; last: "
              + (f"{latest.gpu_name}, util {latest.gpu_util_pct}%, "
                 f"{latest.mem_used_gib:.2f} GiB used, {latest.power_w} W, "
                 f"{latest.sm_clock_mhz} MHz, {latest.temp_c} C"
                 if latest.gpu_name else latest.gpu_note)
              + f"; host load {latest.load1}, CPU {latest.cpu_pct}%")
        return 0


def main() -> int:
    args = _parse()
    sys.path.insert(0, str(ROOT / "src"))
    os.environ["DIFFBENCH_TELEMETRY"] = str(args.interval)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="diffbench-snapshot-") as home:
        os.environ["DIFFBENCH_HOME"] = home
        return asyncio.run(_snapshot(args))


if __name__ == "__main__":
    raise SystemExit(main())
