"""Cold-start timings: `diffbench run --model tiny-sd15 --steps 10` and the dashboard's first
screen, each in a fresh process (interpreter start and imports included), side by side with
the targets (issue: run < 10 s wall, first screen < 1.5 s on a 2-core CPU machine).

Usage: python benchmarks/startup.py [--repeat 3] [--case run ...] [--compare DIR]
Prints one row per measurement with min / median wall seconds and the ratio to the target.
``--compare DIR`` also times the same commands from another checkout of diffbench (e.g. a git
worktree of the previous commit), alternating this one and that one run by run so both see
the same machine load, and prints the median of the per-pair ratios (this / that).
The history and caches go to a temporary DIFFBENCH_HOME, never the user's (one per checkout).
Python's bytecode goes to a temporary PYTHONPYCACHEPREFIX even where PYTHONDONTWRITEBYTECODE
is set, as on an installed package's second start; each case runs once unmeasured first to
fill it and the OS file cache. ``--no-bytecode`` measures source-only starts instead.
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
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent

#: The dashboard's first screen: tui_startup.py's probe (the process ends right after the first
#: paint; the measured wall time also includes interpreter start-up and shutdown).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tui_startup import CHILD_DASHBOARD as FIRST_SCREEN  # noqa: E402

RUN = ["-m", "diffbench.cli.main", "run", "--model", "tiny-sd15", "--steps", "10"]
#: name -> (label, interpreter arguments, target seconds)
CASES = {
    "run": ("diffbench run tiny-sd15 10 steps (child process, default)", RUN, 10.0),
    "in-process": ("diffbench run tiny-sd15 10 steps --in-process", RUN + ["--in-process"],
                   10.0),
    "dashboard": ("dashboard first screen", ["-c", FIRST_SCREEN], 1.5),
}


def wall(argv: list[str], env: dict, cwd: Path) -> float:
    """Wall seconds of one cold subprocess; raises if it fails."""
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr[-2000:]}")
    return elapsed


def checkout_env(root: Path, home: str, bytecode: bool) -> dict:
    """Environment of a run from ``root``: its package on PYTHONPATH, a private home."""
    env = {**os.environ, "DIFFBENCH_HOME": home, "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(root / "src" if (root / "src").is_dir() else root)}
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = os.path.join(home, "pycache")
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--case", action="append", choices=sorted(CASES),
                        help="measure only this case (repeatable; default: all)")
    parser.add_argument("--compare", metavar="DIR", default=None,
                        help="another diffbench checkout to time side by side")
    parser.add_argument("--no-bytecode", action="store_true",
                        help="compile every module from source on each start")
    args = parser.parse_args()
    names = args.case or list(CASES)
    other: Optional[Path] = Path(args.compare).resolve() if args.compare else None
    roots = [ROOT] + ([other] if other else [])
    homes = [tempfile.mkdtemp(prefix="diffbench-bench-") for _ in roots]
    envs = [checkout_env(root, home, not args.no_bytecode) for root, home in zip(roots, homes)]
    try:
        for name in names:  # fill the bytecode and OS file caches
            for root, env in zip(roots, envs):
                wall([sys.executable, *CASES[name][1]], env, root)
        header = f"{'case':58} {'min s':>7} {'median s':>9} {'target s':>9} {'min/target':>10}"
        print(header + (f" {'that min':>9} {'that med':>9} {'this/that':>10}" if other else ""))
        for name in names:
            label, argv, target = CASES[name]
            times: list[list[float]] = [[] for _ in roots]
            for _ in range(args.repeat):  # this, that, this, that ...: the same load for both
                for index, (root, env) in enumerate(zip(roots, envs)):
                    times[index].append(wall([sys.executable, *argv], env, root))
            best = min(times[0])
            row = (f"{label:58} {best:7.2f} {statistics.median(times[0]):9.2f} {target:9.1f} "
                   f"{best / target:10.2f}")
            if other:
                ratio = statistics.median(a / b for a, b in zip(times[0], times[1]))
                row += (f" {min(times[1]):9.2f} {statistics.median(times[1]):9.2f} "
                        f"{ratio:10.2f}")
            print(row, flush=True)
    finally:
        for home in homes:
            shutil.rmtree(home, ignore_errors=True)
    print(f"cpu cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}, "
          f"{'source only' if args.no_bytecode else 'bytecode cached'}"
          + (f"; that = {other}" if other else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
