"""Test fakes: a scripted stand-in for the engine and an in-memory history, for
deterministic dashboard tests and benchmarks (benchmarks/ put tests/ on sys.path).

:class:`FakeEngine` has the signature of diffbench.engine.runner.run ``(cfg, on_event, cancel) ->
RunResult`` and emits the same event kinds in the same order (phases, compile progress, warmup
and measured steps, log lines), but computes nothing: step times come from ``step_ms`` and the
RunResult's metrics are derived from the step times it reported (simulated time, so they do
not depend on the machine's load), so the dashboard's arithmetic is still checked. It imports no torch.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Callable, Optional

from diffbench.engine import events as ev
from diffbench.engine.config import RunConfig
from diffbench.engine.result import RunResult

#: Start time of the first run of a ``FakeEngine(fixed=True)``.
FIXED_START = datetime(2026, 1, 15, 9, 30, tzinfo=timezone.utc)


class FakeEngine:
    """Emit a scripted run.

    Args:
        step_ms: the step time each StepFinished reports (ms); the fake sleeps
            ``step_ms * sleep_scale`` per step (0 = as fast as possible).
        hold_at_step: in the measured call, after this step, block until ``release`` or
            ``cancel`` is set (lets a test act "during" the run without timing races).
        fail_with: end the run failed with this reason after the warmup.
        compile_events: emit CompileProgress during the warmup when cfg.compiler != "none".
            With a step cache (cfg.cache), every even step counts as skipped (none counted
            for fastercache / pab, which give no step count).
        steps_per_call: overrides cfg.steps (e.g. the responsiveness benchmark's long runs).
        image_dir: save a 64x64 gradient PNG there as the run's image (for preview tests).
        block_at_start: before the first event, block until ``release`` is set, deaf to
            ``cancel`` (a child still importing torch or loading the model hears no cancel
            until it is done; only killing it stops it sooner). Then a set ``cancel`` ends
            the run cancelled.
        fixed: same output on every machine and every time (screen snapshots): run ids
            ``fake-0001``, ``fake-0002``...; start times one minute apart from
            :data:`FIXED_START` (UTC); phase times on a simulated clock (load 1.25 s,
            accelerate 0.50 s, each call the sum of its step times) instead of the wall clock.
    """

    def __init__(self, step_ms: float = 20.0, sleep_scale: float = 0.0,
                 hold_at_step: Optional[int] = None, fail_with: Optional[str] = None,
                 compile_events: bool = True, steps_per_call: Optional[int] = None,
                 step_ms_fn: Optional[Callable[[int], float]] = None,
                 image_dir: Optional[str] = None, fixed: bool = False,
                 block_at_start: bool = False) -> None:
        self.step_ms = step_ms
        self.sleep_scale = sleep_scale
        self.hold_at_step = hold_at_step
        self.fail_with = fail_with
        self.compile_events = compile_events
        self.steps_per_call = steps_per_call
        self.step_ms_fn = step_ms_fn
        self.image_dir = image_dir
        self.fixed = fixed
        self.hold_timeout_s = 20.0
        # True: a cancel waits for ``release`` too (a step that is slow to finish)
        self.hold_through_cancel = False
        self.release = threading.Event()
        self.held = threading.Event()  # set while the fake waits at hold_at_step
        self.block_at_start = block_at_start
        self.blocked = threading.Event()  # set while the fake blocks at its start
        self.calls: list[RunConfig] = []

    def _ms(self, index: int) -> float:
        return self.step_ms_fn(index) if self.step_ms_fn else self.step_ms

    def __call__(self, cfg: RunConfig, on_event: Callable[[ev.Event], None],
                 cancel: Optional[threading.Event] = None) -> RunResult:
        self.calls.append(cfg)
        cancel = cancel or threading.Event()
        t0 = time.perf_counter()
        clock = [0.0]  # simulated seconds (fixed mode)
        now = (lambda: clock[0]) if self.fixed else (lambda: time.perf_counter() - t0)
        result = RunResult(config={**cfg.to_dict(), "height": cfg.height or 64,
                                   "width": cfg.width or 64, "device": "cpu",
                                   "dtype": "float32"},
                           environment={"python": "fake", "torch": "fake"})
        if self.fixed:
            n = len(self.calls)
            result.run_id = f"fake-{n:04d}"
            result.started_at = (FIXED_START + timedelta(minutes=n - 1)).isoformat()
        m = result.metrics
        steps = self.steps_per_call or cfg.steps
        if cfg.task == "i2i":
            steps = max(1, int(steps * cfg.strength))

        def phase(name: str, detail: str = "") -> float:
            on_event(ev.PhaseStarted(name, now(), detail))
            return now()

        def end(name: str, started: float, simulated_s: float = 0.0) -> float:
            clock[0] += simulated_s
            elapsed = now() - started
            on_event(ev.PhaseFinished(name, elapsed, now()))
            return elapsed

        def stop(status: str, reason: str) -> RunResult:
            result.status, result.error = status, reason
            on_event(ev.RunFailed(reason, status, result.to_dict(), "", now()))
            return result

        counted = getattr(cfg, "cache", "none") not in ("none", "fastercache", "pab")

        def skipped(index: int) -> Optional[int]:
            return index // 2 if counted else None

        def run_call(call: str, warmup_index: int) -> list[float]:
            times = []
            for i in range(1, steps + 1):
                if cancel.is_set():
                    return times
                ms = self._ms(i)
                if self.sleep_scale:
                    time.sleep(ms * self.sleep_scale / 1000.0)
                times.append(ms)
                on_event(ev.StepFinished(call, i, steps, ms, warmup_index, now(),
                                         steps_skipped=skipped(i)))
                if call == "measured" and i == self.hold_at_step:
                    self.held.set()
                    # bounded, so a failing test cannot hang its process forever
                    deadline = time.monotonic() + self.hold_timeout_s
                    while not (self.release.is_set()
                               or (cancel.is_set() and not self.hold_through_cancel)) \
                            and time.monotonic() < deadline:
                        time.sleep(0.005)
            return times

        if self.block_at_start:
            self.blocked.set()
            self.release.wait(self.hold_timeout_s)  # bounded: a failing test cannot hang
            if cancel.is_set():
                return stop("cancelled", "cancelled during start-up")
        started = phase("load", f"building {cfg.model}")
        end("load", started, 1.25)
        m.load_s = 1.25 if self.fixed else 0.05
        started = phase("accelerate", f"compiler {cfg.compiler}")
        end("accelerate", started, 0.5)
        m.accelerate_s = 0.0
        for w in range(1, cfg.warmups + 1):
            started = phase("warmup", f"warmup {w}/{cfg.warmups}")
            if self.compile_events and cfg.compiler != "none":
                for k in range(1, 4):
                    on_event(ev.CompileProgress(frames=k, graphs=k, kernels=10 * k,
                                                elapsed_s=0.1 * k, t_s=now()))
                on_event(ev.LogMessage("info", f"compiled UNet with {cfg.compiler}", now()))
            warm_times = run_call("warmup", w)
            end("warmup", started, sum(warm_times) / 1000.0)
            m.warmup_s = (m.warmup_s or 0.0) + sum(warm_times) / 1000.0
            if cancel.is_set():
                return stop("cancelled", f"cancelled during warmup {w}/{cfg.warmups}")
        if self.fail_with:
            on_event(ev.LogMessage("error", self.fail_with, now()))
            return stop("failed", self.fail_with)
        started = phase("measure", "measured call")
        times = run_call("measured", 0)
        end("measure", started, sum(times) / 1000.0)
        # simulated, not wall time: the figures must not depend on the test machine's load
        m.inference_s = sum(times) / 1000.0
        if cancel.is_set():
            return stop("cancelled", f"cancelled at step {len(times)}/{steps} of the "
                                     f"measured call")
        m.steps_run = steps
        if counted:
            m.steps_skipped = skipped(steps)
            m.steps_computed = steps - m.steps_skipped
        m.first_step_ms = times[0]
        m.step_ms = times[1:]
        if m.step_ms:
            ordered = sorted(m.step_ms)
            m.it_per_s = len(m.step_ms) / (sum(m.step_ms) / 1000.0)
            m.step_ms_p50 = ordered[len(ordered) // 2]
            m.step_ms_p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
            m.step_ms_max = ordered[-1]
        m.peak_rss_gib = 0.5
        if cfg.compiler != "none":
            m.recompiles = 0
        started = phase("save", "image")
        if self.image_dir is not None:
            result.image_path = self._write_image(result.run_id)
        end("save", started, 0.5)
        on_event(ev.RunFinished(result.to_dict(), now()))
        return result

    def _write_image(self, run_id: str) -> str:
        from PIL import Image

        image = Image.new("RGB", (64, 64))
        image.putdata([(4 * x, 4 * y, 128) for y in range(64) for x in range(64)])
        path = f"{self.image_dir}/{run_id}.png"
        image.save(path)
        return path


class MemoryHistory:
    """In-memory stand-in for diffbench.engine.history.History (``add``, ``get``, ``list``,
    ``delete``); ``persistent`` False makes the dashboard say runs are not kept."""

    persistent = False

    def __init__(self) -> None:
        self._runs: dict[str, RunResult] = {}

    def add(self, result: RunResult) -> None:
        self._runs[result.run_id] = result

    def get(self, run_id: str) -> Optional[RunResult]:
        return self._runs.get(run_id)

    def list(self, model: Optional[str] = None, compiler: Optional[str] = None,
             status: Optional[str] = None, limit: Optional[int] = None) -> list[RunResult]:
        runs = [r for r in reversed(self._runs.values())
                if (model is None or r.config.get("model") == model)
                and (compiler is None or r.config.get("compiler") == compiler)
                and (status is None or r.status == status)]
        return runs[:limit] if limit else runs

    def delete(self, run_id: str) -> bool:
        return self._runs.pop(run_id, None) is not None


async def wait_until(pilot, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Let a Pilot-driven app run until ``predicate()`` is true (polled every 20 ms).

    Raises:
        AssertionError: not true within ``timeout_s`` seconds of the app's event loop.
    """
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)
