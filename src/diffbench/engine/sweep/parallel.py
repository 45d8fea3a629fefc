"""Cells of a sweep dealt to several devices (one worker thread each): a cell that fails on
one device is tried on another; a device that keeps failing gets no more cells."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

from diffbench.engine.result import RunResult
from diffbench.engine.sweep.cell import RunFn, run_cell

#: A device whose cells fail this many times in a row stops taking cells (while another
#: device is still working): a broken GPU must not fail the rest of the sweep.
RETIRE_AFTER_FAILURES = 2
_WAIT = object()


class _Dealer:
    """Hands cells to free workers. A cell that fails on one device goes back to the queue
    once per other device still working (an OOM or crash there may be that GPU's fault);
    ``take`` never gives a worker a cell it already failed while another could run it."""

    def __init__(self, todo: list, devices: list[str]) -> None:
        self.lock = threading.Lock()
        self.items = [(outcome, cfg, reason, frozenset()) for outcome, cfg, reason in todo]
        self.active = set(devices)
        self.in_flight = 0
        self.failures_in_row = {d: 0 for d in devices}
        self.notes: dict[int, list[str]] = {}

    def take(self, device: str) -> Any:
        """The next cell for ``device``; _WAIT to poll again later; None when done."""
        with self.lock:
            for i, item in enumerate(self.items):
                if device not in item[3]:
                    self.in_flight += 1
                    return self.items.pop(i)
            if self.items and not any(self.active - item[3] for item in self.items):
                self.in_flight += 1  # every working device failed it: run it anyway
                return self.items.pop(0)
            return _WAIT if self.items or self.in_flight else None

    def done(self, device: str, item: tuple, result: RunResult) -> tuple[bool, bool]:
        """Book a result: (record it now?, retire this device?)."""
        outcome, cfg, reason, tried = item
        with self.lock:
            self.in_flight -= 1
            if result.status != "failed" or reason is not None:
                self.failures_in_row[device] = 0
                return True, False
            self.failures_in_row[device] += 1
            retire = (self.failures_in_row[device] >= RETIRE_AFTER_FAILURES
                      and len(self.active) > 1)
            if retire:
                self.active.discard(device)
            tried = tried | {device}
            if self.active - tried:
                self.notes.setdefault(outcome.index, []).append(
                    f"failed on {device} ({result.error}); retried on another device")
                self.items.insert(0, (outcome, cfg, reason, tried))
                return False, retire
            return True, retire


def run_parallel(todo, workers, record, on_event, on_cell_start, stop, cancel, total,
                 on_notice=None) -> None:
    """Deal cells to free workers (one thread each); record results in this thread.

    ``todo``: [(CellOutcome, RunConfig, unavailable reason)]; ``workers``: [(device name,
    run_fn)]; ``record(outcome, result)`` is called here, never in a worker thread; the
    other arguments are :func:`diffbench.engine.sweep.run.run_sweep`'s.
    """
    dealer = _Dealer(todo, [device for device, _ in workers])
    finished: "queue.Queue" = queue.Queue()

    def work(device: str, fn: RunFn) -> None:
        while not (stop is not None and stop.is_set()):
            item = dealer.take(device)
            if item is None:
                break
            if item is _WAIT:
                time.sleep(0.05)
                continue
            outcome, cfg, reason, _ = item
            outcome.device = device
            finished.put(("start", outcome, None))
            result = run_cell(fn, cfg, reason, outcome, on_event, cancel)
            keep, retire = dealer.done(device, item, result)
            if keep:
                result.notices.extend(dealer.notes.pop(outcome.index, []))
                finished.put(("done", outcome, result))
            if retire:
                finished.put(("notice", None, f"{device} failed {RETIRE_AFTER_FAILURES} "
                                              f"cells in a row; no more cells go to it"))
                break
        finished.put(("exit", None, None))

    threads = [threading.Thread(target=work, args=(device, fn), daemon=True,
                                name=f"sweep-{device}") for device, fn in workers]
    for thread in threads:
        thread.start()
    alive = len(threads)
    while alive:
        kind, outcome, payload = finished.get()
        if kind == "exit":
            alive -= 1
        elif kind == "start":
            if on_cell_start:
                on_cell_start(outcome, total)
        elif kind == "notice":
            if on_notice:
                on_notice(payload)
        else:
            record(outcome, payload)
    for thread in threads:
        thread.join()
