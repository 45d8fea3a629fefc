"""One loaded, accelerated pipeline called many times with different call arguments.

A run (diffbench.engine.runner.run) calls its pipeline a fixed way; the throughput fit
(several step counts) and the parameter check (two values of guidance scale on the *same*
compiled pipeline — a compiler that baked the first value into its graph only shows then) need
the same pipeline called several ways. This builds it with the runner's own building blocks
(diffbench.engine.preflight.preflight, diffbench.engine.prepare.prepare / call_kwargs: same
device and dtype, same accelerators, a generator seeded with ``cfg.seed`` before every call)
and synchronises the device before the clock stops.

Imports torch lazily (inside methods): never import this at dashboard start-up.
"""

from __future__ import annotations

import contextlib
import gc
import time
from typing import Any, Callable, Iterator, Optional

from diffbench.engine import events as ev
from diffbench.engine.errors import ConfigError, RunCancelled

#: Call arguments set through a pipeline method instead of a __call__ keyword.
_SETTERS = {"ip_adapter_scale": "set_ip_adapter_scale"}


class LoadedPipeline:
    """Load ``cfg``'s pipeline and accelerators once; call it with per-call overrides.

    Args:
        cfg: a validated RunConfig.
        on_event: receives PhaseStarted/PhaseFinished for "load" and "accelerate", and the
            accelerators' own events (compile progress, notices).
        cancel: checked between calls and between denoising steps (RunCancelled).

    Raises:
        ConfigError / ModelNotFoundError / AcceleratorUnavailableError: bad input or a backend
        that cannot run here (before anything heavy where possible).
    """

    def __init__(self, cfg: Any, on_event: Optional[Callable[[Any], None]] = None,
                 cancel: Any = None) -> None:
        from diffbench.engine.environment import collect
        from diffbench.engine.preflight import preflight
        from diffbench.engine.prepare import prepare

        self.cfg = cfg
        self.emit = on_event or ev.null_callback
        self.cancel = cancel
        self._t0 = time.perf_counter()
        self.prepared = prepare(cfg, self.emit, preflight(cfg))
        self.pipe = self.prepared.pipe
        self.device = self.prepared.device
        self.height, self.width = self.prepared.height, self.prepared.width
        self.environment = collect(self.device)

    # ------------------------------------------------------------------ internals
    def _t(self) -> float:
        return time.perf_counter() - self._t0

    @contextlib.contextmanager
    def _phase(self, name: str, detail: str = "") -> Iterator[None]:
        start = time.perf_counter()
        self.emit(ev.PhaseStarted(name, self._t(), detail))
        try:
            yield
        finally:
            self.emit(ev.PhaseFinished(name, time.perf_counter() - start, self._t()))

    def call_kwargs(self, **overrides: Any) -> dict:
        """Keyword arguments of one call (diffbench.engine.prepare.call_kwargs: cfg's settings,
        a freshly seeded generator — every call starts from the same latents — then
        ``overrides``).

        Raises:
            ConfigError: an override the pipeline's __call__ does not take.
        """
        from diffbench.engine.prepare import call_kwargs

        overrides.setdefault("control_image", self.prepared.control_image)
        return call_kwargs(self.cfg, self.pipe, self.device, self.height, self.width,
                           self.prepared.image, **overrides)

    def _check_accepted(self, overrides: dict) -> None:
        """ConfigError naming an override the pipeline's __call__ does not take."""
        for name in overrides:
            if not accepts(type(self.pipe), name):
                raise ConfigError(f"{type(self.pipe).__name__} has no call argument {name!r}")

    def _step_check(self, pipe: Any, step: int, timestep: Any, callback_kwargs: dict) -> dict:
        if self.cancel is not None and self.cancel.is_set():
            raise RunCancelled("cancelled")
        return callback_kwargs

    # ------------------------------------------------------------------ calls
    def call(self, **overrides: Any) -> tuple[list, float]:
        """One pipeline call with ``overrides`` (call keywords, or ``ip_adapter_scale``).

        Returns:
            (images as PIL images, wall seconds from the call to the device synchronised
            after it).

        Raises:
            RunCancelled: ``cancel`` was set.
        """
        from diffbench.engine.measure import synchronize

        if self.cancel is not None and self.cancel.is_set():
            raise RunCancelled("cancelled")
        self._check_accepted(overrides)
        for name, method in _SETTERS.items():
            if name in overrides:
                getattr(self.pipe, method)(overrides.pop(name))
        kwargs = self.call_kwargs(**overrides)
        kwargs.setdefault("callback_on_step_end", self._step_check)
        kwargs.setdefault("output_type", "pil")
        synchronize(self.device)
        start = time.perf_counter()
        output = self.pipe(**kwargs)
        synchronize(self.device)
        return list(output.images), time.perf_counter() - start

    def __call__(self, steps: int) -> float:
        """Seconds of one call with ``steps`` denoising steps (the throughput timer)."""
        return self.call(num_inference_steps=int(steps))[1]

    def warm(self, steps: Optional[int] = None, calls: int = 1, **overrides: Any) -> float:
        """``calls`` warmup calls (compilation happens here); returns their wall seconds and
        persists compile caches (diffbench.engine.accelerators.after_warmup with the run's
        AcceleratorState)."""
        from diffbench.engine import accelerators

        if steps is not None:
            overrides["num_inference_steps"] = int(steps)
        start = time.perf_counter()
        watcher = _compile_watcher(self.cfg, self.emit)  # CompileProgress while compiling
        try:
            with self._phase("warmup", f"{calls} call(s)"):
                for _ in range(max(1, calls)):
                    self.call(**overrides)
        finally:
            if watcher is not None:
                watcher.stop()
        accelerators.after_warmup(self.prepared.state, self.emit)
        return time.perf_counter() - start

    def close(self) -> None:
        """Drop the pipeline and return device memory (before loading another)."""
        self.pipe = self.prepared = None
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:  # noqa: BLE001 - freeing memory is best effort
            pass

    def __enter__(self) -> "LoadedPipeline":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def accepts(pipeline_cls: type, name: str) -> bool:
    """True when ``pipeline_cls.__call__`` names a parameter ``name`` (or it is set through a
    method, like ip_adapter_scale). Named parameters only: diffusers pipelines take **kwargs
    just for deprecated callbacks and silently drop anything else, which would hide a typo.
    Wrapper subclasses (accelerators) may take *args/**kwargs, so the whole MRO is searched.
    """
    import inspect

    if name in _SETTERS:
        return True
    for cls in pipeline_cls.__mro__:
        call = vars(cls).get("__call__")
        if call is not None and name in inspect.signature(call).parameters:
            return True
    return False


def _compile_watcher(cfg: Any, emit: Callable[[Any], None]) -> Any:
    """A started diffbench.engine.compile_progress.CompileWatcher for compiled runs, else None."""
    if cfg.compiler == "none":
        return None
    try:
        from diffbench.engine.compile_progress import CompileWatcher
    except ImportError:  # pragma: no cover - build without compile progress
        return None
    return CompileWatcher(emit).start()
