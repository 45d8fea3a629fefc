"""benchmarks/repeat_spread.py's table from two exported runs (no GPU needed): spread, GPU
busy fraction, fraction of the dense bf16 peak, notices and a variant that could not run."""

from __future__ import annotations

import importlib.util

from diffbench.engine.result import Metrics, RunResult

from repo_paths import ROOT


def _script():
    spec = importlib.util.spec_from_file_location(
        "repeat_spread", ROOT / "benchmarks" / "repeat_spread.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_table_shows_spread_busy_and_fraction_of_peak():
    script = _script()
    eager = RunResult(environment={"gpu": "NVIDIA H100 80GB HBM3", "load_average": "1.0 1 1"},
                      notices=["host-bound: the GPU was busy 60% ..."],
                      metrics=Metrics(it_per_s=13.0, it_per_s_min=8.7, it_per_s_max=15.8,
                                      it_per_s_calls=[8.7, 13.0, 15.8, 12.0, 14.0],
                                      spread=0.546, inference_s=2.5, step_ms_p50=77.0,
                                      busy_fraction=0.6, busy_source="profiler",
                                      tflop_per_step=13.5, peak_tflops=790.0))
    rows = [script.row_of("none", eager),
            {"variant": "cudagraph", "error": "compiler 'cudagraph' cannot run here"}]
    text = script.table(rows)
    line = next(x for x in text.splitlines() if x.startswith("| none |"))
    assert "| 5 | 13.00 (8.70-15.80) | 54.6% |" in line
    assert "| 60% (profiler) | 13.5 | 176 | 22.2% |" in line  # 13.5 x 13.0 / 790
    assert "- none: host-bound" in text and "- cudagraph: compiler 'cudagraph'" in text
    assert text.startswith("GPU: NVIDIA H100 80GB HBM3")
