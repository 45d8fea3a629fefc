"""benchmarks/dashboard_gpu_snapshot.py on the CPU: a real tiny-sd15 run in the headless
dashboard, both screenshots saved, and the telemetry panel saying the run is CPU-only."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from repo_paths import ROOT


def test_cpu_run_saves_the_telemetry_and_step_screenshots(tmp_path):
    out = tmp_path / "shots" / "dash.svg"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "dashboard_gpu_snapshot.py"),
         "--model", "tiny-sd15", "--size", "64x64", "--steps", "6", "--warmups", "1",
         "--device", "cpu", "--interval", "0.2", "--out", str(out), "--timeout", "240"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "running tiny-sd15 64x64, 6 steps, 1 warmup(s), compiler none, device cpu" \
        in proc.stdout
    assert ": finished" in proc.stdout
    assert "CPU-only run: no GPU telemetry" in proc.stdout
    gpu_svg = out.read_text(encoding="utf-8").replace("&#160;", " ")
    steps_svg = (tmp_path / "shots" / "dash-steps.svg").read_text(encoding="utf-8")
    steps_svg = steps_svg.replace("&#160;", " ")
    assert "CPU-only run: no GPU telemetry" in gpu_svg and "% busy over s" in gpu_svg
    assert "step time (ms) by denoising step" in steps_svg and "warmup 1" in steps_svg
