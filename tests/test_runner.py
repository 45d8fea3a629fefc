"""diffbench.engine.runner end to end on the tiny models (CPU, 64x64, few steps)."""

from __future__ import annotations

import threading

import pytest
from PIL import Image

from diffbench.engine import events as ev
from diffbench.engine.config import RunConfig
from diffbench.engine.runner import run


def _run(**settings):
    events: list = []
    settings.setdefault("steps", 3)
    settings.setdefault("height", 64)
    settings.setdefault("width", 64)
    result = run(RunConfig(**settings), on_event=events.append)
    return result, events


def _check_metrics(result, steps_run):
    m = result.metrics
    assert result.status == "finished", result.error
    assert m.steps_run == steps_run
    assert len(m.step_ms) == steps_run - 1
    # it/s is OneDiff's (N-1)/(t_end_N - t_end_1): it matches the recorded step times
    assert m.it_per_s == pytest.approx(len(m.step_ms) / (sum(m.step_ms) / 1000.0), rel=1e-6)
    assert m.step_ms_p50 <= m.step_ms_p90 <= m.step_ms_max == max(m.step_ms)
    for name in ("load_s", "inference_s", "first_step_ms", "peak_rss_gib"):
        assert getattr(m, name) > 0, name
    # no warmup call, no warmup time; else the warmup's wall time
    assert (m.warmup_s is None) if result.config["warmups"] == 0 else m.warmup_s > 0
    # the measured call includes prompt encoding, the first step and the VAE decode
    assert m.inference_s * 1000 > sum(m.step_ms)
    assert m.peak_allocated_gib is None  # CPU run: no CUDA figures invented
    assert result.environment["torch"] and result.environment["diffusers"]


@pytest.mark.parametrize("model", ["tiny-sd15", "tiny-sdxl"])
def test_text_to_image(model, tmp_path):
    out = tmp_path / "out.png"
    result, events = _run(model=model, output_image=str(out), steps=4, warmups=1)
    _check_metrics(result, 4)
    assert result.config["height"] == 64 and result.config["dtype"] == "float32"
    with Image.open(out) as image:
        assert image.size == (64, 64)
    assert result.image_path == str(out)
    assert isinstance(events[-1], ev.RunFinished)
    assert events[-1].result["metrics"]["steps_run"] == 4
    phases = [e.phase for e in events if isinstance(e, ev.PhaseStarted)]
    assert phases == ["load", "accelerate", "warmup", "measure", "save"]
    steps = [e for e in events if isinstance(e, ev.StepFinished)]
    assert [(e.call, e.index, e.warmup_index) for e in steps] == \
        [("warmup", i, 1) for i in (1, 2, 3, 4)] + [("measured", i, 0) for i in (1, 2, 3, 4)]
    assert all(e.total == 4 and e.step_ms >= 0 for e in steps)
    assert [e.t_s for e in events] == sorted(e.t_s for e in events)


def test_native_size_and_batch():
    result, _ = _run(model="tiny-sd15", height=None, width=None, steps=2, warmups=0, batch=2)
    _check_metrics(result, 2)
    assert (result.config["height"], result.config["width"]) == (128, 128)
    assert result.metrics.warmup_s is None  # zero warmups: no warmup time, not ~0


def test_img2img_runs_steps_times_strength(input_png):
    result, events = _run(model="tiny-sd15", input_image=input_png, steps=5, strength=0.6,
                          warmups=0, height=64, width=72)
    assert result.config["task"] == "i2i"
    _check_metrics(result, int(5 * 0.6))
    assert result.image.size == (72, 64)  # input resized to width x height


def test_sdxl_img2img(input_png):
    result, _ = _run(model="tiny-sdxl", input_image=input_png, steps=4, strength=0.5,
                     warmups=0)
    _check_metrics(result, 2)


def test_pix2pix(input_png):
    result, _ = _run(model="tiny-pix2pix", input_image=input_png, steps=3, warmups=0,
                     prompt="turn it into a painting")
    assert result.config["task"] == "pix2pix"
    _check_metrics(result, 3)


def test_same_seed_same_image():
    a, _ = _run(model="tiny-sd15", steps=2, warmups=1)
    b, _ = _run(model="tiny-sd15", steps=2, warmups=0)
    c, _ = _run(model="tiny-sd15", steps=2, warmups=0, seed=1)
    assert a.image.tobytes() == b.image.tobytes()  # reseeded before every call
    assert a.image.tobytes() != c.image.tobytes()


def test_cancel_mid_measured_call(tmp_path):
    cancel = threading.Event()
    events: list = []

    def on_event(event):
        events.append(event)
        if isinstance(event, ev.StepFinished) and event.call == "measured" and event.index == 2:
            cancel.set()

    out = tmp_path / "never.png"
    result = run(RunConfig(model="tiny-sd15", steps=6, height=64, width=64,
                           output_image=str(out)), on_event, cancel)
    assert result.status == "cancelled"
    assert "measure" in result.error
    assert not out.exists()
    assert isinstance(events[-1], ev.RunFailed) and events[-1].status == "cancelled"
    measured = [e for e in events if isinstance(e, ev.StepFinished) and e.call == "measured"]
    assert len(measured) == 2  # stopped at the next step end


def test_cancel_before_start_is_honoured_between_warmups():
    cancel = threading.Event()
    cancel.set()
    result = run(RunConfig(model="tiny-sd15", steps=2, height=64, width=64, warmups=2),
                 cancel=cancel)
    assert result.status == "cancelled"
    assert result.metrics.steps_run is None
    assert result.error == "cancelled during warmup"
    # without warmup calls there is no warmup phase to name
    result = run(RunConfig(model="tiny-sd15", steps=2, height=64, width=64, warmups=0),
                 cancel=cancel)
    assert (result.status, result.error) == ("cancelled", "cancelled during measure")


def test_failure_is_a_result_not_a_traceback():
    events: list = []
    # a real exception from inside the pipeline call: prompt and prompt_embeds together
    result = run(RunConfig(model="tiny-sd15", steps=2, height=64, width=64, warmups=0,
                           extra_call_kwargs={"prompt_embeds": 1}), events.append)
    assert result.status == "failed"
    assert result.error.startswith("measure failed: ValueError")
    assert "\n" not in result.error
    last = events[-1]
    assert isinstance(last, ev.RunFailed) and last.status == "failed"
    assert "Traceback" in last.log_tail and "prompt_embeds" in last.log_tail


def test_unknown_extra_call_kwarg_is_refused_before_loading():
    # diffusers pipelines swallow unknown keywords; a typo must not pass silently, and it is
    # caught from the pipeline class's signature before any weights load
    from diffbench.engine.errors import ConfigError
    from diffbench.engine.preflight import preflight

    cfg = RunConfig(model="tiny-sd15", steps=2, height=64, width=64,
                    extra_call_kwargs={"guidance_scal": 3})
    with pytest.raises(ConfigError, match="StableDiffusionPipeline takes no 'guidance_scal'"):
        preflight(cfg)
    events: list = []
    result = run(cfg, events.append)
    assert result.status == "failed"
    assert result.error == "extra_call_kwargs: StableDiffusionPipeline takes no 'guidance_scal'"
    assert not any(isinstance(e, ev.PhaseStarted) for e in events)


def test_timeout_stops_an_in_process_run():
    events: list = []
    result = run(RunConfig(model="tiny-sd15", steps=400, height=64, width=64, warmups=0),
                 events.append, timeout_s=0.5)
    assert result.status == "failed"
    assert result.error.startswith("timed out after 0.5 s (--timeout / timeout_s) during ")
    assert isinstance(events[-1], ev.RunFailed) and events[-1].status == "failed"


def test_no_warmup_means_no_warmup_time_and_few_steps_warn():
    events: list = []
    result = run(RunConfig(model="tiny-sd15", steps=2, height=64, width=64, warmups=0),
                 events.append)
    assert result.status == "finished"
    assert result.metrics.warmup_s is None
    assert any("only 2 denoising step(s)" in n for n in result.notices)
    assert any(isinstance(e, ev.LogMessage) and e.level == "warning"
               and "only 2 denoising step(s)" in e.text for e in events)


def test_strength_outside_img2img_earns_a_notice():
    from diffbench.engine.preflight import preflight

    notices = preflight(RunConfig(model="tiny-sd15", steps=2, strength=0.5)).notices
    assert any("strength only applies to img2img (--input-image)" in n for n in notices)
    assert not any("strength" in n for n in preflight(RunConfig(model="tiny-sd15")).notices)


def test_watcher_stops_when_a_warmup_fails(monkeypatch):
    # a failing warmup call (prompt and prompt_embeds together) must still stop the
    # watcher that listens for compilation
    stopped: list = []

    class Watcher:
        def __init__(self, emit):
            pass

        def start(self):
            return self

        def stop(self):
            stopped.append(True)

    from diffbench.engine import timed_calls

    monkeypatch.setattr(timed_calls, "_compile_watcher",
                        lambda cfg, emit: Watcher(emit).start())
    result = run(RunConfig(model="tiny-sd15", steps=2, height=64, width=64, warmups=1,
                           extra_call_kwargs={"prompt_embeds": 1}))
    assert result.status == "failed" and result.error.startswith("warmup failed")
    assert stopped == [True]


def test_bad_input_fails_in_run_too():
    result = run(RunConfig(model="tiny-nope", steps=2))
    assert result.status == "failed" and "tiny-nope" in result.error


def test_step_timer_follows_iteration_profiler():
    import time

    from diffbench.engine.errors import RunCancelled
    from diffbench.engine.measure import StepTimer

    seen = []
    cancel = threading.Event()
    timer = StepTimer("cpu", on_step=lambda i, ms: seen.append((i, ms)), cancel=cancel)
    timer.start()
    for step in range(4):
        time.sleep(0.01)
        assert timer(None, step, None, {"latents": 1}) == {"latents": 1}
    assert timer.steps == 4 and [i for i, _ in seen] == [1, 2, 3, 4]
    intervals = timer.step_ms()
    assert len(intervals) == 3 and all(ms >= 9 for ms in intervals)
    assert timer.it_per_s() == pytest.approx(3 / (sum(intervals) / 1000))
    assert timer.first_step_ms() >= 9
    cancel.set()
    with pytest.raises(RunCancelled):
        timer(None, 4, None, {})


def test_percentiles_match_numpy():
    import numpy as np

    from diffbench.engine.measure import percentile, step_stats

    values = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0]
    for q in (0, 50, 90, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert step_stats([]) == {"step_ms_p50": None, "step_ms_p90": None, "step_ms_max": None}


def test_synthetic_model_on_cpu_warns_before_loading():
    """A full-size synthetic model on a CPU gets a notice in preflight (nothing is loaded)."""
    from diffbench.engine.preflight import preflight

    notices = preflight(RunConfig(model="synthetic-sd15", device="cpu")).notices
    assert any("meant for a GPU" in n for n in notices)
    assert not any("meant for a GPU" in n
                   for n in preflight(RunConfig(model="tiny-sd15", device="cpu")).notices)
