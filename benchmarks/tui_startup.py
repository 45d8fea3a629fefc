"""Dashboard start-up time from a cold process, and whether torch was imported.

Starts a fresh interpreter N times; each opens the dashboard (headless driver, 100x30, an
empty history in a temporary DIFFBENCH_HOME), reports when the first screen has been composed
and painted, then exits. Printed next to the same measurement for a bare Textual app (Header +
Footer), so the ratio shows what diffbench itself adds. Target: first screen under 1 s, with
no torch import.

Bytecode: an installed package has its .pyc files, so the children write and reuse theirs in a
temporary cache folder (PYTHONPYCACHEPREFIX) even where PYTHONDONTWRITEBYTECODE is set; the
first, unmeasured start of each app fills it. ``--no-bytecode`` measures a source-only start.

    python3 benchmarks/tui_startup.py [--runs 5] [--no-bytecode]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD_DASHBOARD = r"""
import sys, time
from diffbench.tui.app import DiffbenchApp

class Probe(DiffbenchApp):
    def on_mount(self):
        # Textual calls the base class's on_mount after this one by itself (no super()
        # call: that would mount the dashboard twice). Scheduled first, this runs right after
        # the first refresh, before the dashboard's after-first-paint work (focus, probes).
        self.call_after_refresh(self._done)
    def _done(self):
        print("FIRST_SCREEN", time.time(), time.process_time(), "torch" in sys.modules, flush=True)
        self.exit()

Probe().run(headless=True, size=(100, 30))
"""

CHILD_BARE = r"""
import sys, time
from textual.app import App
from textual.widgets import Footer, Header

class Probe(App):
    def compose(self):
        yield Header()
        yield Footer()
    def on_mount(self):
        self.call_after_refresh(self._done)
    def _done(self):
        print("FIRST_SCREEN", time.time(), time.process_time(), "torch" in sys.modules, flush=True)
        self.exit()

Probe().run(headless=True, size=(100, 30))
"""


def measure(code: str, home: str, pycache: str | None = None) -> tuple[float, float, bool]:
    """(wall s from spawning the interpreter to its first painted screen, CPU s the child used
    until then, torch imported?). CPU time is printed too because wall time on a shared
    machine swings with the other processes' load."""
    env = dict(os.environ, DIFFBENCH_HOME=home, PYTHONPATH=str(ROOT / "src"))
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    start = time.time()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=60)
    for line in out.stdout.splitlines():
        if line.startswith("FIRST_SCREEN"):
            _, stamp, cpu, torch = line.split()
            return float(stamp) - start, float(cpu), torch == "True"
    raise RuntimeError(f"probe failed: {out.stderr.strip()[-400:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-bytecode", action="store_true",
                        help="compile the project's modules from source at every start")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home, tempfile.TemporaryDirectory() as cache:
        pycache = None if args.no_bytecode else cache
        # warm the OS file cache (and the bytecode cache) once, as a real second start would
        measure(CHILD_BARE, home, pycache)
        measure(CHILD_DASHBOARD, home, pycache)
        bare, bare_cpu = [], []
        for _ in range(args.runs):
            seconds, cpu, _ = measure(CHILD_BARE, home, pycache)
            bare.append(seconds)
            bare_cpu.append(cpu)
        dash, dash_cpu, torch_seen = [], [], False
        for _ in range(args.runs):
            seconds, cpu, torch = measure(CHILD_DASHBOARD, home, pycache)
            dash.append(seconds)
            dash_cpu.append(cpu)
            torch_seen |= torch
    b, d = statistics.median(bare), statistics.median(dash)
    bc, dc = statistics.median(bare_cpu), statistics.median(dash_cpu)
    print(f"cold start to first screen, median of {args.runs} (min-max), "
          f"{'source only' if args.no_bytecode else 'bytecode cached'}, "
          f"load average {os.getloadavg()[0]:.2f}:")
    print(f"  bare Textual app   {b:6.3f} s  ({min(bare):.3f}-{max(bare):.3f})")
    print(f"  diffbench dashboard {d:5.3f} s  ({min(dash):.3f}-{max(dash):.3f})  "
          f"= {d / b:.2f}x the bare app")
    print(f"  CPU time in the child: bare {bc:.3f} s, dashboard {dc:.3f} s = {dc / bc:.2f}x")
    print(f"  torch imported at start: {'YES (bug)' if torch_seen else 'no'}")
    print(f"  target < 1.0 s: {'met' if d < 1.0 else 'MISSED'} ({d / 1.0:.2f}x of target)")
    return 0 if (d < 1.0 and not torch_seen) else 1


if __name__ == "__main__":
    raise SystemExit(main())
