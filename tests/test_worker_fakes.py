"""Fake run functions for worker/client tests (no torch, no model; milliseconds per run).

The worker is pointed at them with ``DIFFBENCH_WORKER_RUN=test_worker_fakes:run`` (read by
tests/worker_hooks.py, which tests/sitecustomize.py installs in the child). They follow diffbench.engine.runner.run's contract: events, then RunFinished or
RunFailed last, cancel honoured between steps. Knobs come from environment variables so a
child process can be steered: FAKE_STEPS (default 4), FAKE_STEP_S (default 0.01),
FAKE_STARTED_FILE (created once the load phase is reported, before the first step).
"""

from __future__ import annotations

import os
import sys
import time

from diffbench.engine import events as ev
from diffbench.engine.result import Metrics, RunResult


def run(cfg, on_event=None, cancel=None):
    """Pretend to run ``cfg``: a load phase, one warmup call, a measured call."""
    emit = on_event or ev.null_callback
    steps = int(os.environ.get("FAKE_STEPS", "4"))
    step_s = float(os.environ.get("FAKE_STEP_S", "0.01"))
    result = RunResult(config=cfg.to_dict(), environment={"python": sys.version.split()[0]})
    # Noise that must not reach the protocol stream.
    print("fake diffusers warning: this goes to stdout")
    sys.stdout.flush()
    os.write(1, b"fake compiler output written to fd 1\n")
    emit(ev.PhaseStarted(phase="load"))
    emit(ev.PhaseFinished(phase="load", elapsed_s=0.01))
    result.metrics.load_s = 0.01
    if os.environ.get("FAKE_STARTED_FILE"):  # tells a test the steps begin now
        open(os.environ["FAKE_STARTED_FILE"], "w").close()
    step_ms = []
    for call in ("warmup", "measured"):
        emit(ev.PhaseStarted(phase="warmup" if call == "warmup" else "measure"))
        for index in range(1, steps + 1):
            if cancel is not None and cancel.is_set():
                result.status, result.error = "cancelled", "cancelled by the user"
                emit(ev.RunFailed(reason=result.error, status="cancelled",
                                  result=result.to_dict()))
                return result
            time.sleep(step_s)
            if call == "measured":
                step_ms.append(step_s * 1000)
            emit(ev.StepFinished(call=call, index=index, total=steps, step_ms=step_s * 1000,
                                 warmup_index=1 if call == "warmup" else 0))
        if call == "warmup":
            result.metrics.warmup_s = steps * step_s
    result.metrics = Metrics(load_s=0.01, warmup_s=steps * step_s, inference_s=steps * step_s,
                             it_per_s=1 / step_s, steps_run=steps, step_ms=step_ms[1:])
    emit(ev.RunFinished(result=result.to_dict()))
    return result


def run_raises(cfg, on_event=None, cancel=None):
    """A runner that breaks its contract and raises."""
    raise RuntimeError("runner bug: unexpected exception")


def run_with_image(cfg, on_event=None, cancel=None):
    """:func:`run`, and the measured call's image: a flat 16x16 PNG of colour FAKE_RGB
    (default "10,20,30") written to cfg.output_image."""
    result = run(cfg, on_event, cancel)
    if result.status == "finished" and cfg.output_image:
        from PIL import Image

        colour = tuple(int(v) for v in os.environ.get("FAKE_RGB", "10,20,30").split(","))
        Image.new("RGB", (16, 16), colour).save(cfg.output_image)
        result.image_path = os.path.abspath(cfg.output_image)
    return result


def run_silent(cfg, on_event=None, cancel=None):
    """A child that has not begun its run yet (as while it imports its libraries): no event,
    deaf to cancel, for FAKE_SILENT_S seconds (default 60)."""
    time.sleep(float(os.environ.get("FAKE_SILENT_S", "60")))
    return RunResult(config=cfg.to_dict())
