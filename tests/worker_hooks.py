"""Test-only hooks for worker children, installed by tests/sitecustomize.py.

A child started with this folder on its PYTHONPATH runs sitecustomize at start-up, which
calls :func:`install` when one of these variables is set:

- ``DIFFBENCH_WORKER_RUN=module:function``: run that function (runner.run's signature; see
  test_worker_fakes) instead of diffbench.engine.runner.run, through the worker's
  ``run_function`` extension point.
- ``DIFFBENCH_TEST_FAULT=KIND[@N]``: fail on purpose when the run emits its Nth StepFinished
  event (default 1): ``segv`` (SIGSEGV), ``abort`` (SIGABRT), ``kill`` (SIGKILL, as the OOM
  killer does), ``oom`` (raises torch.cuda.OutOfMemoryError), ``hang`` (sleeps, deaf to
  cancel), ``garbage`` (writes a non-JSON line to the protocol stream), ``truncate`` (writes
  half an event, then exits 0), ``exit`` (exits with code 3). A malformed value makes the
  worker refuse its request (exit 2), as a bad request is refused.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import time
from typing import Any, Callable, Optional

FAULT_ENV = "DIFFBENCH_TEST_FAULT"
RUN_ENV = "DIFFBENCH_WORKER_RUN"
FAULTS = ("segv", "abort", "kill", "oom", "hang", "garbage", "truncate", "exit")


class FaultHook:
    """Fail on purpose at the Nth StepFinished event (see the module docstring)."""

    def __init__(self, spec: str) -> None:
        kind, _, at = spec.partition("@")
        if kind not in FAULTS or (at and not at.isdigit()):
            raise ValueError(f"{FAULT_ENV} must be KIND[@N] with KIND one of "
                             f"{', '.join(FAULTS)}; got {spec!r}")
        self.kind, self.at, self.seen = kind, int(at or 1), 0
        self.stream: Optional[Any] = None  # the worker's protocol stream

    def on_event(self, event: Any) -> None:
        if type(event).__name__ != "StepFinished":
            return
        self.seen += 1
        if self.seen == self.at:
            self.fire()

    def raw(self, text: str) -> None:
        assert self.stream is not None
        self.stream.write(text)
        self.stream.flush()

    def fire(self) -> None:
        print(f"test fault: {self.kind} at step {self.at}", file=sys.stderr, flush=True)
        if self.kind == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif self.kind == "abort":
            os.abort()
        elif self.kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif self.kind == "oom":
            try:
                import torch

                error: type[BaseException] = torch.cuda.OutOfMemoryError
            except (ImportError, AttributeError):
                error = MemoryError
            raise error("CUDA out of memory. Tried to allocate 20.00 GiB (test fault)")
        elif self.kind == "hang":
            while True:
                time.sleep(3600)
        elif self.kind == "garbage":
            self.raw("this is not JSON <<<\n")
        elif self.kind == "truncate":
            self.raw('{"type": "StepFinished", "call": "meas')
            os._exit(0)
        elif self.kind == "exit":
            os._exit(3)
        time.sleep(0.2)  # a signal is delivered asynchronously


def _named_run() -> Optional[Callable[..., Any]]:
    target = os.environ.get(RUN_ENV)
    if not target:
        return None
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr or "run")


def install() -> None:
    """Point the worker at the fake run and/or the fault (see the module docstring)."""
    from diffbench.engine import worker

    named = _named_run() if os.environ.get(RUN_ENV) else None
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        worker.run_function = named
        return
    try:
        fault = FaultHook(spec)
    except ValueError as exc:
        reason = str(exc)
        read_request = worker.read_request

        def refuse(stream: Any) -> dict:
            read_request(stream)
            raise ValueError(reason)

        worker.read_request = refuse
        return
    take_over_stdout = worker.take_over_stdout

    def keep_stream() -> Any:
        fault.stream = take_over_stdout()
        return fault.stream

    worker.take_over_stdout = keep_stream

    def run(cfg: Any, on_event: Any = None, cancel: Any = None) -> Any:
        inner = named
        if inner is None:
            from diffbench.engine.runner import run as inner

        def emit(event: Any) -> None:
            if on_event is not None:
                on_event(event)
            fault.on_event(event)

        return inner(cfg, emit, cancel)

    worker.run_function = run
