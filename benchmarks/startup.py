"""Cold-start timings: `diffbench run --model tiny-sd15 --steps 10` and the dashboard's first
screen, each in a fresh process (interpreter start and imports included), side by side with
the targets (issue: run < 10 s wall, first screen < 1.5 s on a 2-core CPU machine).

Usage: python benchmarks/startup.py [--repeat 3]
Prints one row per measurement with min / median wall seconds and the ratio to the target.
The history and caches go to a temporary DIFFBENCH_HOME, never the user's. Python's bytecode
goes to a temporary PYTHONPYCACHEPREFIX even where PYTHONDONTWRITEBYTECODE is set, as on an
installed package's second start; each case runs once unmeasured first to fill it and the OS
file cache. ``--no-bytecode`` measures source-only starts instead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The dashboard's first screen: tui_startup.py's probe (the process ends right after the first
#: paint; the measured wall time also includes interpreter start-up and shutdown).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tui_startup import CHILD_DASHBOARD as FIRST_SCREEN  # noqa: E402


def wall(argv: list[str], env: dict) -> float:
    """Wall seconds of one cold subprocess; raises if it fails."""
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-bytecode", action="store_true",
                        help="compile every module from source on each start")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="diffbench-bench-")
    env = {**os.environ, "DIFFBENCH_HOME": home, "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(ROOT)}
    if not args.no_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = os.path.join(home, "pycache")
    cli = [sys.executable, "-m", "engine.cli", "run", "--model", "tiny-sd15", "--steps", "10"]
    cases = [
        ("diffbench run tiny-sd15 10 steps (child process, default)", cli, 10.0),
        ("diffbench run tiny-sd15 10 steps --in-process", cli + ["--in-process"], 10.0),
        ("dashboard first screen", [sys.executable, "-c", FIRST_SCREEN], 1.5),
    ]
    try:
        for _name, argv, _target in cases:  # fill the bytecode and OS file caches
            wall(argv, env)
        print(f"{'case':58} {'min s':>7} {'median s':>9} {'target s':>9} {'min/target':>10}")
        for name, argv, target in cases:
            times = [wall(argv, env) for _ in range(args.repeat)]
            best = min(times)
            print(f"{name:58} {best:7.2f} {statistics.median(times):9.2f} {target:9.1f} "
                  f"{best / target:10.2f}")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"cpu cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}, "
          f"{'source only' if args.no_bytecode else 'bytecode cached'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
