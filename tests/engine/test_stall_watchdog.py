"""The stall watchdog of child runs (diffbench.engine.client): a child that stops writing is
killed after the bound of its phase — ``stall_timeout_s`` between two denoising steps,
SLOW_PHASE_FACTOR times that elsewhere — and a child that keeps talking is left alone.
Telemetry samples, sent by the child's sampler thread, are no sign of the run's life."""

from __future__ import annotations

import json
import threading
import time

from diffbench.engine import client
from diffbench.engine import events as ev
from diffbench.engine.config import RunConfig
from diffbench.engine.result import RunResult

HELLO = """echo '{"type": "hello", "protocol": 1, "pid": 1, "environment": {}}'\n"""


def step(index: int, total: int = 3) -> str:
    event = {"type": "StepFinished", "call": "measured", "index": index, "total": total,
             "step_ms": 1.0}
    return f"echo '{json.dumps(event)}'\n"


def child(tmp_path, body: str) -> str:
    script = tmp_path / "child.sh"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return str(script)


def test_silent_between_steps_is_killed_after_the_bound(tmp_path):
    body = HELLO + step(1) + "sleep 30\n"
    started = time.monotonic()
    result = client.run_in_child(RunConfig(), python=child(tmp_path, body), stall_timeout_s=0.3)
    assert time.monotonic() - started < 10
    assert result.status == "failed"
    assert result.error.startswith("stalled: the child sent nothing for 0.3 s during "
                                   "measured step 2/3")


def test_other_phases_get_the_longer_bound(tmp_path):
    body = HELLO + "sleep 30\n"
    started = time.monotonic()
    result = client.run_in_child(RunConfig(), python=child(tmp_path, body), stall_timeout_s=0.2)
    waited = time.monotonic() - started
    assert result.status == "failed" and "during start-up" in result.error
    assert f"nothing for {0.2 * client.SLOW_PHASE_FACTOR:g} s" in result.error
    assert waited >= 0.2 * client.SLOW_PHASE_FACTOR


def test_a_child_that_keeps_talking_is_left_alone(tmp_path):
    done = RunResult(run_id="talker", config={"model": "m"}).to_dict()
    body = HELLO + "".join(step(i) + "sleep 0.2\n" for i in (1, 2, 3)) + \
        f"echo '{json.dumps({'type': 'result', 'result': done})}'\n"
    result = client.run_in_child(RunConfig(), python=child(tmp_path, body), stall_timeout_s=0.5)
    assert result.status == "finished", result.error


def test_zero_turns_the_watchdog_off(tmp_path):
    body = HELLO + step(1) + "sleep 1\n"
    result = client.run_in_child(RunConfig(), python=child(tmp_path, body), stall_timeout_s=0)
    assert "stalled" not in (result.error or "")


#: One telemetry line every 0.05 s, for as long as the child lives: what the child's sampler
#: thread keeps sending while the run's own thread is deadlocked.
TELEMETRY_LOOP = ("while true; do echo '" + json.dumps(
    {"type": "TelemetrySample", "gpu_util_pct": 0.0, "cpus": 2, "t_s": 1.0}) +
    "'; sleep 0.05; done\n")


def test_telemetry_alone_does_not_keep_a_stalled_run_alive(tmp_path):
    seen = []
    body = HELLO + step(1) + TELEMETRY_LOOP
    started = time.monotonic()
    # timeout_s: without the watchdog the run would only end there
    result = client.run_in_child(RunConfig(), seen.append, python=child(tmp_path, body),
                                 stall_timeout_s=0.3, timeout_s=8)
    assert time.monotonic() - started < 6
    assert result.status == "failed"
    assert result.error.startswith("stalled: the child sent nothing for 0.3 s during "
                                   "measured step 2/3"), result.error
    # still passed on (the dashboard's GPU tab), just not counted as a sign of life
    assert sum(isinstance(e, ev.TelemetrySample) for e in seen) >= 3


def test_telemetry_before_the_run_does_not_count_as_its_start(tmp_path):
    # a cancel while the child still imports its libraries: SIGTERM at once, no grace wait
    # for a run loop that would see the message (telemetry starts before those imports)
    cancel = threading.Event()
    seen = []

    def on_event(event):
        seen.append(event)
        cancel.set()

    started = time.monotonic()
    result = client.run_in_child(RunConfig(), on_event, cancel,
                                 python=child(tmp_path, HELLO + TELEMETRY_LOOP), grace_s=8)
    assert time.monotonic() - started < 6
    assert result.status != "finished" and seen
