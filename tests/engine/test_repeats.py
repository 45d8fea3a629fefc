"""--repeat on a fake clock: every call's figures, medians with min/max, the spread notice
(10 % fires, 1 % does not), the host-bound notice, ratio ranges ("no clear difference"),
the GPU busy fraction's arithmetic and its CUDA code path with a fake profiler."""

from __future__ import annotations

import types

import pytest

from diffbench.engine import busy, measure, repeats, timed_calls
from diffbench.engine import events as ev
from diffbench.engine.config import RunConfig
from diffbench.engine.prepare import Prepared
from diffbench.engine.ratio_range import ratio_range, sweep_ratio
from diffbench.engine.result import Metrics, RunResult


class FakeClock:
    """perf_counter stand-in: time moves only when the fake pipeline says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def perf_counter(self) -> float:
        return self.now


class ClockedPipe:
    """A pipeline whose call ``k`` takes ``step_ms[k]`` per denoising step on the fake clock
    and calls ``callback_on_step_end`` at every step end, as diffusers does."""

    def __init__(self, clock: FakeClock, step_ms: list[float], steps: int) -> None:
        self.clock, self.step_ms, self.steps = clock, list(step_ms), steps
        self.calls: list[dict] = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        per_step = self.step_ms[min(len(self.calls), len(self.step_ms)) - 1] / 1000.0
        callback = kwargs["callback_on_step_end"]
        for step in range(self.steps):
            self.clock.now += per_step
            callback(self, step, step, {})
        return types.SimpleNamespace(images=["image"])


def _measure(monkeypatch, it_per_s: list[float], steps: int = 5, device: str = "cpu"):
    """Run timed_calls.warmup_and_measure with len(it_per_s) measured calls whose step rates
    are ``it_per_s`` (on the fake clock); return (metrics, pipe, events)."""
    clock = FakeClock()
    fake_time = types.SimpleNamespace(perf_counter=clock.perf_counter)
    monkeypatch.setattr(measure, "time", fake_time)
    monkeypatch.setattr(timed_calls, "time", fake_time)
    pipe = ClockedPipe(clock, [1000.0 / r for r in it_per_s], steps)
    cfg = RunConfig(model="tiny-sd15", steps=steps, warmups=0, repeat=len(it_per_s))
    prepared = Prepared(pipe=pipe, device=device, dtype=None, height=64, width=64,
                        image=None, notices=[], load_s=0.0, accelerate_s=0.0)
    events: list = []
    metrics = Metrics()
    images = timed_calls.warmup_and_measure(cfg, prepared, events.append, None, metrics,
                                            ["measure"])
    assert images == ["image"]
    return metrics, pipe, events


def test_three_calls_record_every_figure_with_median_min_and_max(monkeypatch):
    metrics, pipe, events = _measure(monkeypatch, [9.5, 10.0, 10.5])
    assert len(pipe.calls) == 3  # three measured calls after (here no) warmup
    assert metrics.it_per_s_calls == pytest.approx([9.5, 10.0, 10.5])
    assert (metrics.it_per_s, metrics.it_per_s_min, metrics.it_per_s_max) == \
        pytest.approx((10.0, 9.5, 10.5))
    assert metrics.step_ms_p50_calls == pytest.approx([1000 / 9.5, 100.0, 1000 / 10.5],
                                                      rel=1e-4)
    assert metrics.step_ms_p50 == pytest.approx(100.0)
    assert (metrics.step_ms_p50_min, metrics.step_ms_p50_max) == \
        pytest.approx((1000 / 10.5, 1000 / 9.5), rel=1e-4)
    assert len(metrics.inference_s_calls) == 3
    assert metrics.inference_s == pytest.approx(0.5)  # 5 steps of 100 ms, the median call
    # the median call's steps: it/s == len(step_ms) / sum(step_ms) still holds
    assert len(metrics.step_ms) == 4
    assert len(metrics.step_ms) / (sum(metrics.step_ms) / 1000) == \
        pytest.approx(metrics.it_per_s)
    assert metrics.spread == pytest.approx(0.10, rel=1e-4)
    measured = [e for e in events if isinstance(e, ev.StepFinished) and e.call == "measured"]
    assert len(measured) == 15
    started = [e for e in events if isinstance(e, ev.PhaseStarted) and e.phase == "measure"]
    assert started[0].detail == "5 steps x 3 calls"


def test_one_call_has_no_range_and_no_spread(monkeypatch):
    metrics, pipe, _ = _measure(monkeypatch, [10.0])
    assert len(pipe.calls) == 1
    assert metrics.it_per_s == pytest.approx(10.0)
    assert metrics.it_per_s_calls == pytest.approx([10.0])
    assert metrics.it_per_s_min is None and metrics.spread is None
    assert repeats.diagnosis(metrics, {"device": "cpu"}) == []


def _diagnosed(monkeypatch, it_per_s, environment=None):
    metrics, _, _ = _measure(monkeypatch, it_per_s)
    result = RunResult(config={"device": "cpu"}, environment=environment or {
        "device": "cpu", "cpu_cores": "2", "load_average": "3.50 2.00 1.00"}, metrics=metrics)
    sent: list = []
    from diffbench.engine import runner

    runner._diagnose(result, sent.append)
    return result, sent


def test_the_spread_notice_fires_at_10_percent_and_not_at_1(monkeypatch):
    result, sent = _diagnosed(monkeypatch, [9.5, 10.0, 10.5])
    [line] = result.notices
    assert line.startswith("it/s varied by 10.0% over 3 measured calls")
    assert "min 9.5, median 10, max 10.5" in line
    assert "load average 3.50 on 2 cores" in line  # the likely cause on CPU
    assert [(e.level, e.text) for e in sent] == [("warning", line)]

    quiet, sent = _diagnosed(monkeypatch, [9.95, 10.0, 10.05])
    assert quiet.metrics.spread == pytest.approx(0.01, rel=1e-3)
    assert quiet.notices == [] and sent == []


def test_a_low_busy_fraction_says_host_bound_and_names_the_remedy():
    metrics = Metrics(it_per_s=10.0, it_per_s_calls=[8.0, 10.0, 12.0], spread=0.4,
                      busy_fraction=0.55, busy_source="profiler")
    spread_line, host_line = repeats.diagnosis(metrics, {"device": "cuda"})
    assert "varied by 40.0%" in spread_line and "likely host-bound (GPU busy 55%)" in spread_line
    assert host_line.startswith("host-bound: the GPU was busy 55%")
    assert "--compiler cudagraph" in host_line and "reduce-overhead" in host_line
    busy_gpu = Metrics(it_per_s=10.0, it_per_s_calls=[9.0, 10.0, 11.0], spread=0.2,
                       busy_fraction=0.97)
    [line] = repeats.diagnosis(busy_gpu, {"device": "cuda"})
    assert "GPU was busy (97%)" in line and "throttling" in line


def test_repeat_auto_resolves_by_device():
    assert repeats.resolve_repeat(None, "cuda:1") == 3
    assert repeats.resolve_repeat(None, "cpu") == 1
    assert repeats.resolve_repeat(5, "cpu") == 5
    assert RunConfig().repeat is None
    from diffbench.engine import catalog

    assert catalog.coerce("repeat", "auto") is None and catalog.coerce("repeat", "4") == 4
    from diffbench.engine.errors import ConfigError
    from diffbench.engine.profiles import validate_settings

    assert validate_settings({"repeat": "auto"}, "p.toml") == {"repeat": None}
    assert validate_settings({"repeat": 5}, "p.toml") == {"repeat": 5}
    with pytest.raises(ConfigError, match="repeat must be an integer, got 'often'"):
        validate_settings({"repeat": "often"}, "p.toml")
    with pytest.raises(ConfigError, match="repeat must be between 1 and 100"):
        RunConfig(repeat=0)


# ------------------------------------------------------------------ ratio ranges
def _run(ips, low=None, high=None) -> RunResult:
    return RunResult(metrics=Metrics(it_per_s=ips, it_per_s_min=low, it_per_s_max=high))


def test_ratio_ranges_from_the_spreads():
    a, b = _run(10.0, 9.0, 11.0), _run(10.5, 10.0, 11.5)
    assert ratio_range(a, b, "it_per_s") == pytest.approx((10.0 / 11.0, 11.5 / 9.0))
    assert sweep_ratio(b, a)["clear"] is False
    clear = sweep_ratio(_run(20.0, 19.0, 21.0), a)
    assert clear["clear"] is True and clear["ratio"] == pytest.approx(2.0)
    assert ratio_range(_run(10.0), _run(12.0), "it_per_s") is None  # one call each
    assert "clear" not in sweep_ratio(_run(12.0), _run(10.0))


def test_sweep_cell_says_no_clear_difference():
    from diffbench.cli.sweep import _cell_text

    row = {"status": "finished", "it_per_s": 10.5, "ratio": 1.05, "ratio_low": 0.9,
           "ratio_high": 1.3, "clear": False}
    assert "1.05x (no clear difference)" in _cell_text(row, "ratio").plain
    assert "no clear" not in _cell_text({**row, "clear": True}, "ratio").plain


# ------------------------------------------------------------------ GPU busy fraction
def test_busy_fraction_and_dense_peak_table():
    assert busy.busy_fraction(45.0, 50.0) == pytest.approx(0.9)
    assert busy.busy_fraction(60.0, 50.0) == 1.0  # overlapping streams: capped
    assert busy.busy_fraction(None, 50.0) is None and busy.busy_fraction(5.0, None) is None
    assert busy.dense_peak_tflops("NVIDIA H100 80GB HBM3") == 790.0
    assert busy.dense_peak_tflops("NVIDIA H200") == 790.0
    assert busy.dense_peak_tflops("Tesla T4") is None and busy.dense_peak_tflops(None) is None
    from diffbench.engine.metrics import format_metric, value_of

    m = Metrics(it_per_s=20.0, tflop_per_step=13.5, peak_tflops=790.0)
    assert value_of(m, "peak_fraction") == pytest.approx(270.0 / 790.0)
    assert format_metric("peak_fraction", value_of(m, "peak_fraction")) == "34.2%"


class FakeKineto:
    def __init__(self, device_type, ns):
        self._type, self._ns = device_type, ns

    def device_type(self):
        return self._type

    def duration_ns(self):
        return self._ns


class FakeProfiler:
    """torch.profiler.profile stand-in holding raw kineto events: two kernels per step."""

    started = 0

    def __init__(self, kernels_ms_per_step: float, steps: int) -> None:
        from torch.autograd import DeviceType

        FakeProfiler.started += 1
        events = [FakeKineto(DeviceType.CPU, 10**9)]  # host events never count
        for _ in range(steps):
            events += [FakeKineto(DeviceType.CUDA, int(kernels_ms_per_step * 5e5))] * 2
        self.profiler = types.SimpleNamespace(
            kineto_results=types.SimpleNamespace(events=lambda: events))
        self.stopped = False

    def stop(self):
        self.stopped = True


def test_busy_on_the_cuda_path_with_a_fake_profiler(monkeypatch):
    """The CUDA-only code of timed_calls._measure_busy with the device calls faked: one extra
    call profiled over steps 2..N, its kernel time per step over the timed mean step
    (1000 / it/s)."""
    profilers: list = []

    def start():
        profilers.append(FakeProfiler(40.0, 4))  # 40 ms of kernels in each of steps 2..5
        return profilers[-1]

    monkeypatch.setattr(busy, "_start_cuda_profiler", start)
    monkeypatch.setattr(timed_calls, "call_kwargs", lambda *a, **k: {
        "callback_on_step_end": k["callback_on_step_end"]})
    clock = FakeClock()
    pipe = ClockedPipe(clock, [50.0], 5)
    cfg = RunConfig(model="tiny-sd15", steps=5, warmups=0)
    prepared = Prepared(pipe=pipe, device="cuda", dtype=None, height=64, width=64,
                        image=None, notices=[], load_s=0.0, accelerate_s=0.0)
    metrics = Metrics(it_per_s=20.0)
    timed_calls._measure_busy(cfg, prepared, None, metrics, nvml_fraction=0.99)
    assert len(pipe.calls) == 1 and len(profilers) == 1 and profilers[0].stopped
    assert metrics.busy_fraction == pytest.approx(0.8) and metrics.busy_source == "profiler"

    # the profiler sees nothing: NVML's sampled utilisation stands in
    monkeypatch.setattr(busy, "_start_cuda_profiler", lambda: FakeProfiler(0.0, 4))
    metrics = Metrics(it_per_s=20.0)
    timed_calls._measure_busy(cfg, prepared, None, metrics, nvml_fraction=0.93)
    assert (metrics.busy_fraction, metrics.busy_source) == (0.93, "nvml")

    # off CUDA: no extra call, no figure
    cpu = Prepared(pipe=pipe, device="cpu", dtype=None, height=64, width=64, image=None,
                   notices=[], load_s=0.0, accelerate_s=0.0)
    metrics = Metrics(it_per_s=20.0)
    timed_calls._measure_busy(cfg, cpu, None, metrics, nvml_fraction=None)
    assert metrics.busy_fraction is None and len(pipe.calls) == 2


def test_dashboard_sweep_matrix_marks_a_ratio_within_the_spread():
    from diffbench.tui.sweep_matrix import SweepMatrix

    def cell(key, ips, low, high, started):
        r = RunResult(config={"sweep_id": "s1", "sweep_cell": key}, started_at=started)
        r.metrics.it_per_s, r.metrics.it_per_s_min, r.metrics.it_per_s_max = ips, low, high
        return r

    matrix = SweepMatrix.from_runs([cell("compiler=none,seed=1", 10.0, 8.0, 12.0, "1"),
                                    cell("compiler=compile,seed=1", 11.0, 9.0, 13.0, "2"),
                                    cell("compiler=none,seed=2", 10.0, 9.9, 10.1, "3"),
                                    cell("compiler=compile,seed=2", 15.0, 14.9, 15.1, "4")])
    assert matrix.clear("compiler=compile,seed=1") is False
    assert matrix.cell_text("compiler=compile,seed=1") == ("11.00 it/s x1.10?", "")
    assert matrix.clear("compiler=compile,seed=2") is True
    assert matrix.cell_text("compiler=compile,seed=2")[0] == "15.00 it/s x1.50"


def test_text_tokens_is_the_clip_context_or_the_t5_budget():
    from diffbench.engine.effective import text_tokens

    clip = types.SimpleNamespace(tokenizer=types.SimpleNamespace(model_max_length=77))
    assert text_tokens(RunConfig(), clip, None) == 77
    unbounded = types.SimpleNamespace(tokenizer=types.SimpleNamespace(model_max_length=10**30))
    assert text_tokens(RunConfig(), unbounded, None) is None
    t5 = types.SimpleNamespace(t5_attr="text_encoder_2", recommended=None,
                               max_sequence_length=512)
    assert text_tokens(RunConfig(), clip, t5) == 512
    assert text_tokens(RunConfig(max_sequence_length=256), clip, t5) == 256
