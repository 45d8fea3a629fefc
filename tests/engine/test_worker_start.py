"""The worker's start-up: what it imports while it waits for its request, and the garbage
collector's thresholds during its imports (diffbench.engine.worker, diffbench.engine.import_ahead)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time

import pytest

from diffbench.engine.import_ahead import FullGcHold
from diffbench.engine.worker import request_waiting

from repo_paths import ROOT


def test_full_gc_hold_raises_only_the_oldest_threshold_and_restores_it():
    before = gc.get_threshold()
    hold = FullGcHold().hold()
    try:
        assert gc.get_threshold() == (before[0], before[1], FullGcHold.HELD)
        hold.hold()  # idempotent: the saved thresholds stay the original ones
    finally:
        hold.release()
    assert gc.get_threshold() == before
    hold.release()  # no-op once released
    assert gc.get_threshold() == before


def test_full_gc_hold_release_freezes_what_exists_and_later_garbage_is_collected():
    frozen_before = gc.get_freeze_count()
    hold = FullGcHold().hold()
    try:
        kept = [object() for _ in range(10)] + [[]]
    finally:
        hold.release()
    try:
        assert gc.get_freeze_count() > frozen_before  # the imports' objects: never walked again
        assert gc.get_count()[2] == 0  # nothing left pending for a full collection
        cycle: list = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1  # the collector still frees what the run leaves behind
    finally:
        gc.unfreeze()  # give the test process its ordinary collector back
    del kept


def test_request_waiting_never_blocks():
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "r") as reader:
        assert request_waiting(reader) is False
        os.write(write_fd, b'{"protocol": 1}\n')
        assert request_waiting(reader) is True
        os.close(write_fd)
        reader.readline()
        assert request_waiting(reader) is True  # end of file counts: nothing to wait for


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/maps")
def test_worker_imports_torch_while_its_request_has_not_come():
    """A child started ahead of its config (diffbench run starts it before preflight) uses
    the wait: torch's library is loaded before the request is sent."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env.pop("DIFFBENCH_WORKER_RUN", None)
    proc = subprocess.Popen([sys.executable, "-m", "diffbench.engine.worker"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        assert b'"type": "hello"' in proc.stdout.readline()
        deadline = time.monotonic() + 60
        loaded = False
        while not loaded and time.monotonic() < deadline and proc.poll() is None:
            with open(f"/proc/{proc.pid}/maps") as maps:
                loaded = "libtorch" in maps.read()
            time.sleep(0.05)
        assert loaded, "torch was not imported while the worker waited"
        assert proc.poll() is None  # still waiting for its request
    finally:
        proc.kill()
        proc.wait()
