"""benchmarks/transformer_accelerators.py runs on the CPU (its tiny-cpu suite): every variant in its own
child, the rows flushed to results.toml and table.md, a refusal kept as the row's one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from repo_paths import ROOT


def test_tiny_cpu_suite_writes_the_table(tmp_path):
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "transformer_accelerators.py"), "--suites", "tiny-cpu",
         "--only", "first-block,regional+cudagraph", "--no-warm", "--out", str(out),
         "--work", str(tmp_path / "work"), "--budget-s", "300"],
        capture_output=True, text=True, timeout=400, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = tomllib.loads((out / "results.toml").read_text())
    rows = {row["variant"]: row for row in data["variants"]}
    assert list(rows) == ["eager", "first-block", "regional+cudagraph"]
    eager, cached = rows["eager"], rows["first-block"]
    for row in (eager, cached):
        assert row["s_per_image"] > 0 and row["ms_per_step"] > 0 and row["warmup_s"] > 0
        assert row["peak_gib"] > 0 and row["floor_ms"] > 0 and 0 < row["floor_fraction"] < 1
    assert cached["steps_computed"] + cached["steps_skipped"] == cached["steps"] == 4
    assert cached["steps_skipped"] >= 1 and cached["lossy"] and 0 < cached["ssim"] < 1
    assert rows["regional+cudagraph"]["error"] == (
        "compiler 'cudagraph' cannot run here: CUDA graphs need a CUDA GPU (this run is on the "
        "CPU)")
    table = (out / "table.md").read_text()
    assert "| tiny-cpu | first-block |" in table and "% of floor" in table
    assert data["meta"]["diffusers"] and data["meta"]["torch"]
