"""GPU and host telemetry (diffbench.engine.telemetry): NVML read through a fake pynvml
module, the sampler thread, which GPU a device means, the env switch, and the child run
sending TelemetrySample events only when asked, never after its terminal event."""

from __future__ import annotations

import sys
import threading
import types

import pytest

from diffbench.engine import events as ev
from diffbench.engine import telemetry
from diffbench.engine.client import run_in_child
from diffbench.engine.config import RunConfig

from repo_paths import TESTS
from telemetry_fakes import FakeGpuSource as FakeSource

GIB = 1024 ** 3


def fake_pynvml(devices=("Fake A100", "Fake H100", "Fake L4", "Fake T4", "Fake A10", "Fake B200"),
                unsupported=("power",), fail_init=False) -> types.ModuleType:
    """A pynvml module over ``devices`` (index = position; uuid GPU-<index>)."""
    nv = types.ModuleType("pynvml")
    nv.NVML_CLOCK_SM, nv.NVML_TEMPERATURE_GPU = 1, 0
    nv.calls = []

    class NVMLError(Exception):
        pass

    def init():
        if fail_init:
            raise NVMLError("Driver Not Loaded")
        nv.calls.append("init")

    def handle(i):
        if not 0 <= i < len(devices):
            raise NVMLError("Invalid Argument")
        return i

    def by_uuid(uuid):
        return handle(int(uuid.split("-", 1)[1]))

    def unsupported_or(name, fn):
        def wrapped(*args):
            if name in unsupported:
                raise NVMLError("Not Supported")
            return fn(*args)
        return wrapped

    nv.nvmlInit = init
    nv.nvmlShutdown = lambda: nv.calls.append("shutdown")
    nv.nvmlDeviceGetHandleByIndex = handle
    nv.nvmlDeviceGetHandleByUUID = by_uuid
    nv.nvmlDeviceGetIndex = lambda h: h
    nv.nvmlDeviceGetName = lambda h: devices[h].encode()  # bytes, as older bindings give
    nv.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=40 + h, memory=5)
    nv.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=12 * GIB, total=80 * GIB)
    nv.nvmlDeviceGetPowerUsage = unsupported_or("power", lambda h: 312_500)  # mW
    nv.nvmlDeviceGetEnforcedPowerLimit = unsupported_or("power", lambda h: 700_000)
    nv.nvmlDeviceGetClockInfo = lambda h, clock: 1755
    nv.nvmlDeviceGetTemperature = lambda h, sensor: 58
    return nv


def test_nvml_source_reads_every_field_and_none_for_an_unsupported_query(monkeypatch):
    nv = fake_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    source = telemetry.NvmlSource(1)
    assert source.name == "Fake H100" and source.index == 1
    reading = source.read()
    assert reading["gpu_util_pct"] == 41.0
    assert reading["mem_used_gib"] == pytest.approx(12.0)
    assert reading["mem_total_gib"] == pytest.approx(80.0)
    assert reading["sm_clock_mhz"] == 1755 and reading["temp_c"] == 58
    assert reading["power_w"] is None and reading["power_limit_w"] is None  # not supported
    source.close()
    assert nv.calls == ["init", "shutdown"]


def test_gpu_for_device_maps_cuda_ordinals_through_cuda_visible_devices(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(unsupported=()))
    source, note = telemetry.gpu_for_device("cuda:1", visible="3,5")
    assert (source.index, source.name, note) == (5, "Fake B200", "")
    source, _ = telemetry.gpu_for_device("cuda", visible="GPU-2")
    assert (source.index, source.name) == (2, "Fake L4")
    source, _ = telemetry.gpu_for_device("auto", visible=None, cuda_build=True)
    assert source.index == 0
    assert source.read()["power_w"] == pytest.approx(312.5)  # NVML gives mW


def test_gpu_for_device_says_why_there_is_no_gpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())
    assert telemetry.gpu_for_device("cpu") == (None, "CPU-only run: no GPU telemetry")
    source, note = telemetry.gpu_for_device("auto", cuda_build=False)
    assert source is None and "CPU-only run" in note
    source, note = telemetry.gpu_for_device("cuda", visible="")
    assert source is None and "CUDA_VISIBLE_DEVICES" in note
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(fail_init=True))
    source, note = telemetry.gpu_for_device("cuda", visible=None)
    assert source is None and note.startswith("no GPU telemetry: NVML not available")
    assert "Driver Not Loaded" in note


def test_sampler_reads_gpu_and_host_and_summarises():
    source = FakeSource(util=(80.0, 100.0), used_gib=(10.0, 14.5))
    sampler = telemetry.TelemetrySampler(lambda s: None, source)
    first, second = sampler.sample(), sampler.sample()
    assert isinstance(first, ev.TelemetrySample)
    assert (first.gpu_name, first.gpu_util_pct, second.mem_used_gib) == ("Fake H100", 80.0, 14.5)
    assert first.cpus and first.cpus >= 1 and first.load1 is not None  # Linux: getloadavg
    assert second.cpu_pct is not None and second.proc_cpu_pct is not None  # psutil
    assert sampler.summary() == {"gpu_util_mean_pct": 90.0, "mem_used_peak_gib": 14.5,
                                 "power_mean_w": 500.0}
    # the event survives the protocol's JSON round trip
    assert ev.event_from_dict(ev.to_dict(second)) == second


def test_sampler_without_gpu_sends_host_samples_with_the_reason():
    sample = telemetry.TelemetrySampler(lambda s: None, None, "CPU-only run: no GPU "
                                        "telemetry").sample()
    assert sample.gpu_name is None and sample.gpu_util_pct is None
    assert sample.gpu_note == "CPU-only run: no GPU telemetry" and sample.cpus


def test_sampler_thread_samples_at_once_then_stops_and_closes_the_source():
    got: list = []
    first = threading.Event()

    def emit(sample):
        got.append(sample)
        first.set()

    source = FakeSource()
    sampler = telemetry.TelemetrySampler(emit, source, interval_s=0.2).start()
    assert first.wait(2.0)  # the first sample does not wait a period
    sampler.stop()
    count = len(got)
    assert source.closed and not sampler._thread.is_alive()
    assert len(got) == count  # nothing after stop


def test_interval_from_env():
    assert telemetry.interval_from_env(None) is None
    assert telemetry.interval_from_env("0") is None
    assert telemetry.interval_from_env("1") == telemetry.DEFAULT_INTERVAL_S
    assert telemetry.interval_from_env("0.5") == 0.5
    assert telemetry.interval_from_env("0.01") == telemetry.MIN_INTERVAL_S
    assert telemetry.interval_from_env("fast") == telemetry.DEFAULT_INTERVAL_S
    assert telemetry.start_for_run("cpu", lambda s: None, env_value="0") is None


def _child_run(**env: str) -> list:
    env = {"DIFFBENCH_WORKER_RUN": "test_worker_fakes:run", "PYTHONPATH": str(TESTS),
           "FAKE_STEPS": "4", "FAKE_STEP_S": "0.12", **env}
    events: list = []
    result = run_in_child(RunConfig(model="tiny-sd15", steps=4, device="cpu"), events.append,
                          env=env)
    assert result.status == "finished", result.error
    assert not any("ignored an event" in n for n in result.notices)
    return events


def test_child_sends_telemetry_when_asked_and_never_after_the_terminal_event():
    events = _child_run(DIFFBENCH_TELEMETRY="0.2")
    samples = [e for e in events if isinstance(e, ev.TelemetrySample)]
    assert len(samples) >= 2  # ~1 s of run at one sample every 0.2 s
    assert all(s.gpu_note == "CPU-only run: no GPU telemetry" for s in samples)
    assert isinstance(events[-1], ev.RunFinished)
    assert [s.t_s for s in samples] == sorted(s.t_s for s in samples)


def test_child_sends_no_telemetry_unless_asked():
    # `diffbench run` does not set DIFFBENCH_TELEMETRY: its event stream is unchanged
    assert not any(isinstance(e, ev.TelemetrySample) for e in _child_run())


def test_terminal_gate_drops_samples_after_the_terminal_event():
    got: list = []
    gate = telemetry.TerminalGate(got.append)
    sample = ev.TelemetrySample(load1=1.0)
    gate(sample)
    gate(ev.RunFailed(reason="cancelled", status="cancelled"))
    gate(sample)  # a sampler thread that was mid-sample
    gate(ev.LogMessage(level="info", text="after"))  # other events still pass
    assert [type(e).__name__ for e in got] == ["TelemetrySample", "RunFailed", "LogMessage"]
