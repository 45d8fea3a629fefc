"""Key-press latency of the dashboard while the engine floods it with step events.

The scripted fake engine (tests/fakes.py FakeEngine) emits about 1,000 StepFinished events per
second for a few seconds. Meanwhile a second thread plays the terminal's input thread: it
posts a key press every 50 ms and the app stamps when the key's binding has run. The same
probe runs with the engine idle, and the two are printed side by side. Goal: a key handled
within 100 ms under the flood.

Also printed: how many step messages the app actually handled out of those posted (Textual's
``can_replace`` drops superseded progress messages, which is what keeps the UI responsive).

    python3 benchmarks/tui_responsiveness.py [--seconds 4] [--rate 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the test fakes

from textual import events  # noqa: E402
from textual.binding import Binding  # noqa: E402

from diffbench.tui import messages as msg  # noqa: E402
from diffbench.tui.app import DiffbenchApp  # noqa: E402
from fakes import FakeEngine, MemoryHistory  # noqa: E402


class ProbeApp(DiffbenchApp):
    """The dashboard plus a hidden key (f9) whose action records the key's latency."""

    BINDINGS = DiffbenchApp.BINDINGS + [Binding("f9", "probe", show=False, priority=True)]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sent_at: list[float] = []
        self.latencies_ms: list[float] = []
        self.steps_handled = 0

    def action_probe(self) -> None:
        self.latencies_ms.append((time.perf_counter() - self.sent_at[len(self.latencies_ms)])
                                 * 1000.0)

    def on_step_progress(self, message: msg.StepProgress) -> None:
        self.steps_handled += 1


def press_keys(app: ProbeApp, count: int, interval_s: float, stop: threading.Event) -> None:
    """Post ``count`` f9 key events from this thread, as the terminal driver does."""
    for _ in range(count):
        if stop.is_set():
            return
        app.sent_at.append(time.perf_counter())
        app.post_message(events.Key("f9", None))
        time.sleep(interval_s)


class Pacer:
    """step_ms source for the fake: sleeps so that steps come at ``rate`` per second."""

    def __init__(self, rate: float) -> None:
        self.period = 1.0 / rate
        self.next_at = 0.0
        self.first = self.last = 0.0
        self.count = 0

    def __call__(self, index: int) -> float:
        now = time.perf_counter()
        if self.next_at == 0.0 or index == 1:
            self.next_at = now
        self.next_at += self.period
        delay = self.next_at - now
        if delay > 0:
            time.sleep(delay)
        self.first = self.first or time.perf_counter()
        self.last = time.perf_counter()
        self.count += 1
        return self.period * 1000.0

    @property
    def achieved_rate(self) -> float:
        return (self.count - 1) / (self.last - self.first) if self.count > 1 else 0.0


async def probe(flood: bool, seconds: float, rate: float) -> tuple[list[float], int, int, float]:
    steps = int(seconds * rate)
    pacer = Pacer(rate)
    engine = FakeEngine(step_ms_fn=pacer, steps_per_call=steps, compile_events=False)
    app = ProbeApp(engine=engine, history=MemoryHistory())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.3)
        app.query_one("#warmups").value = "0"
        await pilot.pause(0.1)
        stop = threading.Event()
        if flood:
            await pilot.press("ctrl+r")
            while not app.running:
                await pilot.pause(0.01)
            await pilot.pause(0.2)  # into the measured call
        keys = int(min(seconds, 3.0) / 0.05)
        thread = threading.Thread(target=press_keys, args=(app, keys, 0.05, stop))
        thread.start()
        while thread.is_alive():
            await pilot.pause(0.05)
        thread.join()
        await pilot.pause(0.3)
        if flood:
            while app.running:
                await pilot.pause(0.05)
        stop.set()
        return app.latencies_ms, app.steps_handled, pacer.count, pacer.achieved_rate


def summary(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return (f"p50 {statistics.median(ordered):6.1f} ms  p95 {p95:6.1f} ms  "
            f"max {ordered[-1]:6.1f} ms  (n={len(ordered)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="step events per second")
    args = parser.parse_args()
    os.environ.setdefault("DIFFBENCH_HOME", tempfile.mkdtemp(prefix="diffbench-bench-"))
    idle, _, _, _ = asyncio.run(probe(False, args.seconds, args.rate))
    busy, handled, posted, rate = asyncio.run(probe(True, args.seconds, args.rate))
    if not idle or not busy:
        print("probe failed: no key press was handled")
        return 1
    p95_idle = sorted(idle)[int(0.95 * (len(idle) - 1))]
    p95_busy = sorted(busy)[int(0.95 * (len(busy) - 1))]
    print("key press -> binding handled (f9 posted from an input thread every 50 ms)")
    print(f"  engine idle                  {summary(idle)}")
    print(f"  engine {rate:5.0f} steps/s flood  {summary(busy)}")
    print(f"  p95 ratio flood/idle: {p95_busy / max(p95_idle, 1e-6):.2f}x")
    print(f"  step messages handled: {handled} of {posted} posted "
          f"({handled / max(posted, 1):.1%}; the rest were superseded via can_replace)")
    ok = max(busy) < 100.0
    print(f"  goal every key < 100 ms under the flood: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
