"""Throughput fit (diffbench.engine.throughput), its plots (diffbench.engine.plot) and `diffbench throughput`."""

from __future__ import annotations

import threading

import pytest
from PIL import Image

from diffbench.engine import plot, throughput
from diffbench.engine.config import RunConfig
from diffbench.engine.errors import ConfigError, RunCancelled


def test_fit_recovers_known_line_and_r2():
    steps = [2, 4, 6, 8, 10]
    times = [0.5 + 0.02 * n for n in steps]
    fit = throughput.fit_line(steps, times)
    assert fit.base_s == pytest.approx(0.5)
    assert fit.per_step_ms == pytest.approx(20.0)
    assert fit.it_per_s_no_base == pytest.approx(50.0)
    assert fit.r2 == pytest.approx(1.0)
    noisy = [t + (0.05 if i % 2 else -0.05) for i, t in enumerate(times)]
    assert throughput.fit_line(steps, noisy).r2 < 0.9


def test_fit_needs_two_step_counts():
    with pytest.raises(ConfigError, match="two different"):
        throughput.fit_line([4, 4], [1.0, 1.1])
    assert throughput.fit_line([1, 2], [1.0, 1.0]).it_per_s_no_base is None


@pytest.mark.parametrize("text, expected", [
    ("2,4,8", [2, 4, 8]), ("2:6", [2, 3, 4, 5, 6]), ("2:20:6", [2, 8, 14, 20]),
    ("8,2,8", [2, 8]),
])
def test_parse_steps(text, expected):
    assert throughput.parse_steps(text) == expected


@pytest.mark.parametrize("text", ["two", "0,4", "5", "2:10:0", "1:2:3:4"])
def test_parse_steps_rejects(text):
    with pytest.raises(ConfigError):
        throughput.parse_steps(text)


def test_measure_interleaves_repeats_keeps_fastest_and_cancels():
    calls = []
    slow_once = {8}

    def timer(n):
        calls.append(n)
        if n in slow_once:  # the machine was busy the first time 8 steps were timed
            slow_once.clear()
            return 10.0
        return 0.1 + 0.01 * n

    kept, samples = throughput.measure(timer, [2, 8], repeats=2)
    assert calls == [2, 8, 2, 8]
    assert kept == pytest.approx([0.12, 0.18])
    assert samples[1] == pytest.approx([10.0, 0.18])
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(RunCancelled):
        throughput.measure(timer, [2, 8], cancel=cancel)


def test_text_scatter_draws_points_on_the_line():
    xs = [2, 4, 6, 8]
    ys = [0.1 + 0.05 * x for x in xs]
    lines = plot.text_scatter(xs, ys, 0.05, 0.1, width=40, height=10,
                              x_label="steps", y_label="time (s)")
    body = lines[1:11]
    assert sum(line.count(plot.POINT) for line in body) == 4
    assert any(plot.LINE in line for line in body)
    # a rising line: the first point is lower (later row) than the last
    rows = [i for i, line in enumerate(body) if plot.POINT in line]
    assert body[rows[-1]].index(plot.POINT) < body[rows[0]].index(plot.POINT)
    assert "steps" in lines[-1]
    with pytest.raises(ValueError):
        plot.text_scatter([], [])


def test_png_plot_is_written(tmp_path):
    path = plot.save_png(str(tmp_path / "fit.png"), [2, 4, 6], [0.2, 0.3, 0.4], 0.05, 0.1,
                         title="fit")
    with Image.open(path) as image:
        assert image.size[0] > 100 and image.format == "PNG"
    with pytest.raises(ConfigError):
        plot.save_png(str(tmp_path / "missing" / "fit.png"), [1, 2], [1, 2], 1.0, 0.0)


def test_tiny_sd15_fit_is_linear(monkeypatch):
    """The real pipeline: time grows linearly with denoising steps (R^2 > 0.9).

    One torch thread: on a shared 2-core machine two threads competing with other processes
    give multi-second stalls that no fit survives.
    """
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = RunConfig(model="tiny-sd15", height=64, width=64, warmups=1, device="cpu")
    phases = []
    result = throughput.run_throughput(cfg, steps=[2, 6, 10, 14, 18], repeats=3, threads=1,
                                       on_event=lambda e: phases.append(
                                           getattr(e, "phase", None)))
    fit = result.fit
    assert fit.r2 > 0.9, result.to_dict()
    # The true base cost is >= 0; allow timing noise of about one step's cost below zero.
    assert fit.per_step_s > 0 and fit.base_s > -fit.per_step_s
    assert result.warmup_s is not None and len(result.samples_s[0]) == 3
    assert {"load", "accelerate", "warmup"} <= set(phases)
    data = result.to_dict()
    assert data["fit"]["it_per_s_no_base"] == pytest.approx(1 / fit.per_step_s)


def test_cli_prints_fit_plot_and_writes_png_and_toml(monkeypatch, tmp_path, capsys):
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    from diffbench.cli.main import main as cli_main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    png, toml = tmp_path / "fit.png", tmp_path / "fit.toml"
    code = cli_main(["throughput", "--model", "tiny-sd15", "--size", "32", "--device", "cpu",
                     "--steps", "2,6", "--repeats", "1", "--threads", "1", "--png", str(png),
                     "-o", str(toml)])
    assert code == 0
    out = capsys.readouterr().out
    assert "per-step cost" in out and "R^2 = 1.0000" in out and plot.POINT in out
    assert png.stat().st_size > 0
    data = tomllib.loads(toml.read_text())["throughput"]
    assert data["steps"] == [2, 6] and data["config"]["width"] == 32


def test_cli_bad_steps_is_one_line(capsys):
    from diffbench.cli.main import main as cli_main

    assert cli_main(["throughput", "--steps", "5"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
