"""Run one benchmark in this process: load -> accelerate -> warmup -> measure -> save.

:func:`preflight` does every cheap check (model source, task/family, input image, compiler
availability) and raises the one-line errors of diffbench.engine.errors before anything is loaded.
:func:`run` never raises for run failures: it returns a RunResult with status "finished",
"failed" or "cancelled" and emits RunFinished or RunFailed last.

The building blocks (:func:`prepare`, :func:`call_kwargs`, :func:`resolve_size`) are public so
analysis commands can call one loaded, accelerated pipeline several times.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from diffbench.engine import events as ev
from diffbench.engine.config import RunConfig
from diffbench.engine.errors import ConfigError, DiffbenchError, RunCancelled
from diffbench.engine.events import EventCallback
from diffbench.engine.result import Metrics, RunResult

# diffusers/transformers log import-time chatter (e.g. "requires torchvision") at warning
# level; a benchmark's output should be its results. Users can still raise the verbosity.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

#: RunConfig's default img2img strength (a changed value outside img2img earns a notice).
_DEFAULT_STRENGTH = RunConfig.__dataclass_fields__["strength"].default
#: Fewer denoising steps than this in the measured call earn a warning (it/s then rests on
#: one or two step intervals).
MIN_RELIABLE_STEPS = 3

#: Lines of traceback kept in RunFailed.log_tail (for bug reports; never printed by default).
LOG_TAIL_LINES = 40


@dataclass
class Preflight:
    """What preflight learned: the model source, the device the run will use, notices."""

    source: Any
    device: str
    notices: list[str] = field(default_factory=list)


def preflight(cfg: RunConfig) -> Preflight:
    """Cheap checks before loading: raise the clear error now rather than minutes later.

    Resolves the model source (no download), checks the task fits the model, that the input
    image opens, that a requested CUDA device exists and that the compiler and quantization
    can run on the device; collects the accelerators' config notices.

    Raises:
        ModelNotFoundError, ConfigError, AcceleratorUnavailableError: one-line messages.
    """
    from diffbench.engine import accelerators
    from diffbench.engine.environment import detect_device
    from diffbench.engine.models import resolve_source
    from diffbench.engine.input_image import check_readable
    from diffbench.engine.models.loading import check_compatible

    source = resolve_source(cfg.model)
    check_compatible(cfg, source)
    for name in ("input_image", "control_image"):
        if getattr(cfg, name):
            check_readable(getattr(cfg, name), name)
    device = detect_device(cfg.device)
    if device.startswith("cuda") and detect_device("auto") != "cuda":
        raise ConfigError(f"device {cfg.device!r} asked for but no CUDA GPU is visible; "
                          "use --device cpu or auto")
    # Order of the errors: the compiler that cannot run on this machine, then the settings
    # (a typo is fixed before installing anything), then what quantization needs.
    accelerators.check(cfg, device)
    notices = list(accelerators.validate_all(cfg, stage="accelerate"))
    accelerators.check_family(cfg, source.spec)
    accelerators.check_stacked(cfg, device)
    if cfg.python is not None:
        _check_interpreter(cfg.python)
    if cfg.extra_call_kwargs:
        from diffbench.engine.models.loading import pipeline_class

        check_call_kwargs(cfg, pipeline_class(cfg, source))  # imports diffusers, no weights
    if cfg.task != "i2i" and cfg.strength != _DEFAULT_STRENGTH:
        notices.append(f"strength only applies to img2img (--input-image); ignored for task "
                       f"{cfg.task}")
    if cfg.model.startswith("synthetic-") and device == "cpu":
        notices.append(f"{cfg.model} is full-size (random weights) and meant for a GPU: on a CPU "
                       f"one pipeline call takes minutes; tiny-* models are the CPU stand-ins")
    return Preflight(source, device, notices)


def _check_interpreter(python: str) -> None:
    """Raise ConfigError unless ``python`` (a --python path or a name on PATH) can run."""
    import shutil

    path = os.path.expanduser(python)
    found = shutil.which(path)
    if found is None:
        if os.path.isdir(path):
            raise ConfigError(f"--python {python} is a folder, not a Python interpreter")
        why = "is not executable" if os.path.exists(path) else "not found"
        raise ConfigError(f"--python {python}: interpreter {why}")


# ---------------------------------------------------------------------- building blocks
def resolve_size(cfg: RunConfig, pipe: Any, spec: Any = None) -> tuple[int, int]:
    """(height, width) in pixels: cfg's, or the model's native size (the denoiser's
    sample_size x VAE scale factor, as diffusers defaults them; ``spec`` the family's
    DenoiserSpec, None: from the pipeline class)."""
    from diffbench.engine.models.loading import native_size

    native = native_size(pipe, spec)
    return cfg.height or native, cfg.width or native


def load_input_image(path: str, width: int, height: int) -> Any:
    """The input image as RGB PIL, resized to width x height (LANCZOS).

    Raises:
        ConfigError: the file cannot be read as an image.
    """
    from PIL import Image

    from diffbench.engine.input_image import open_rgb

    with open_rgb(path, "input_image") as image:
        return image.resize((width, height), Image.LANCZOS)


def check_call_kwargs(cfg: RunConfig, pipe: Any) -> None:
    """Refuse extra_call_kwargs the pipeline's __call__ does not name: diffusers pipelines
    swallow unknown keywords (``**kwargs``), so a typo would silently change nothing.

    ``pipe`` is a pipeline instance or class (preflight checks the class, before any weights
    load).

    Raises:
        ConfigError: naming the unknown keys and the pipeline class.
    """
    import inspect

    cls = pipe if isinstance(pipe, type) else type(pipe)
    params = inspect.signature(pipe.__call__).parameters
    unknown = sorted(k for k in cfg.extra_call_kwargs if k not in params or
                     params[k].kind is inspect.Parameter.VAR_KEYWORD)
    if unknown:
        raise ConfigError(f"extra_call_kwargs: {cls.__name__} takes no "
                          f"{', '.join(repr(k) for k in unknown)}")


def call_kwargs(cfg: RunConfig, pipe: Any, device: str, height: int, width: int,
                image: Any = None, control_image: Any = None, **overrides: Any) -> dict:
    """Keyword arguments of one pipeline call, with a freshly seeded torch.Generator.

    t2i passes height/width; i2i passes ``image`` and ``strength``; pix2pix passes ``image``.
    With ``cfg.controlnet`` the control image (``control_image``: :func:`prepare` makes it,
    :meth:`Prepared.call_kwargs` passes it) goes in as diffusers' ControlNet pipelines expect
    it: ``image`` for text-to-image, ``control_image`` for img2img. guidance_scale only when set (else the
    pipeline's default). ``cfg.extra_call_kwargs`` (e.g. controlnet_conditioning_scale) and
    then ``overrides`` are applied last.
    """
    import torch

    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    kwargs: dict[str, Any] = dict(prompt=cfg.prompt, num_inference_steps=cfg.steps,
                                  num_images_per_prompt=cfg.batch, generator=generator)
    if cfg.negative_prompt:
        kwargs["negative_prompt"] = cfg.negative_prompt
    if cfg.guidance_scale is not None:
        kwargs["guidance_scale"] = float(cfg.guidance_scale)
    if cfg.task == "t2i":
        kwargs.update(height=height, width=width)
    else:
        kwargs["image"] = image
        if cfg.task == "i2i":
            kwargs["strength"] = float(cfg.strength)
    if cfg.controlnet:
        kwargs["image" if cfg.task == "t2i" else "control_image"] = control_image
    kwargs.update(cfg.extra_call_kwargs)
    kwargs.update(overrides)
    return kwargs


@dataclass
class Prepared:
    """A loaded, accelerated pipeline ready to call (see :func:`prepare`).

    ``spec``: the family's DenoiserSpec; ``state``: the accelerators' AcceleratorState (step
    cache, compile cache, CUDA graphs) for :func:`diffbench.engine.accelerators.after_warmup`.
    """

    pipe: Any
    device: str
    dtype: Any
    height: int
    width: int
    image: Any
    notices: list[str]
    load_s: float
    accelerate_s: float
    control_image: Any = None
    spec: Any = None
    state: Any = None

    def call_kwargs(self, cfg: RunConfig, **overrides: Any) -> dict:
        """:func:`call_kwargs` for this pipeline: its size, input and control images."""
        overrides.setdefault("control_image", self.control_image)
        return call_kwargs(cfg, self.pipe, self.device, self.height, self.width, self.image,
                           **overrides)


def prepare(cfg: RunConfig, on_event: Optional[EventCallback] = None,
            pre: Optional[Preflight] = None) -> Prepared:
    """Load the pipeline and apply the accelerators (phases "load" and "accelerate").

    Raises whatever loading raises (DiffbenchError subclasses for known problems).
    """
    emit = on_event or ev.null_callback
    pre = pre or preflight(cfg)
    from diffbench.engine import accelerators
    from diffbench.engine.models import load_pipeline
    from diffbench.engine.models.loading import pipeline_class, resolve_dtype

    device = pre.device
    dtype = resolve_dtype(cfg.dtype, device)
    spec = pre.source.spec
    state = accelerators.AcceleratorState()
    pipeline_class(cfg, pre.source)  # import diffusers before the clock: load_s is the build
    t0 = time.perf_counter()
    emit(ev.PhaseStarted("load", detail=cfg.model))
    pipe = load_pipeline(cfg, device, dtype, state)
    load_s = time.perf_counter() - t0
    emit(ev.PhaseFinished("load", load_s))
    check_call_kwargs(cfg, pipe)
    height, width = resolve_size(cfg, pipe, spec)
    image = load_input_image(cfg.input_image, width, height) if cfg.task != "t2i" else None
    notices = list(pre.notices)
    for notice in notices:
        emit(ev.LogMessage("warning", notice))
    control_image = None
    if cfg.controlnet:
        from diffbench.engine.models.controlnet import control_image_for

        control_image, origin = control_image_for(cfg, width, height, image)
        notices.append(origin)
        emit(ev.LogMessage("info", origin))
    t1 = time.perf_counter()
    emit(ev.PhaseStarted("accelerate", detail=cfg.compiler))
    pipe = accelerators.apply_all(pipe, spec, cfg, emit, state)
    accelerate_s = time.perf_counter() - t1
    emit(ev.PhaseFinished("accelerate", accelerate_s))
    return Prepared(pipe, device, dtype, height, width, image, notices, load_s,
                    accelerate_s, control_image, spec, state)


# ---------------------------------------------------------------------- the run
class _Clock:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.t0


def _stamped(emit: EventCallback, clock: _Clock) -> EventCallback:
    """Wrap ``emit`` so every event carries t_s (seconds since the run began)."""
    import dataclasses

    def send(event: Any) -> None:
        if getattr(event, "t_s", None) == 0.0:
            event = dataclasses.replace(event, t_s=round(clock(), 4))
        emit(event)

    return send


class _Deadline:
    """A cancel flag that is also set ``timeout_s`` seconds after :meth:`start` (a daemon
    timer), so an in-process run honours RunConfig.timeout_s the way cancel is honoured:
    between denoising steps and between calls."""

    def __init__(self, cancel: Optional[threading.Event], timeout_s: Optional[float]) -> None:
        self.cancel = cancel
        self.timeout_s = timeout_s
        self.expired = threading.Event()
        self._timer: Optional[threading.Timer] = None

    def start(self) -> "_Deadline":
        if self.timeout_s is not None:
            self._timer = threading.Timer(self.timeout_s, self.expired.set)
            self._timer.daemon = True
            self._timer.start()
        return self

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def is_set(self) -> bool:
        """True once the caller cancelled or the deadline passed."""
        return self.expired.is_set() or (self.cancel is not None and self.cancel.is_set())


def run(cfg: RunConfig, on_event: Optional[EventCallback] = None,
        cancel: Optional[threading.Event] = None,
        timeout_s: Optional[float] = None) -> RunResult:
    """Run ``cfg`` in this process and return its RunResult (never raises for run failures).

    Phases: load -> accelerate -> warmup (cfg.warmups calls, compilation happens here) ->
    measure (one call timed by StepTimer, device synchronised at the end, peak memory reset
    before it) -> save (cfg.output_image, PNG). Events: PhaseStarted/PhaseFinished per phase,
    StepFinished per denoising step (call "warmup" or "measured"), LogMessage for notices,
    CompileProgress from the compiler, then RunFinished or RunFailed (status "failed" or
    "cancelled") last. ``cancel`` is honoured between steps and between warmup calls.

    ``timeout_s`` (seconds; callers pass cfg.timeout_s for in-process runs, the child worker
    leaves it to its parent) stops the run at the next step or call boundary once passed; the
    result is then "failed" with "timed out after N s (--timeout / timeout_s); the run was stopped" (the
    wording of diffbench.engine.client for child runs).

    In-process runs also set ``result.image`` (the measured call's first PIL image; not a
    dataclass field, never serialised) so callers get the image without a file.
    """
    from diffbench.engine.environment import collect

    clock = _Clock()
    emit = _stamped(on_event or ev.null_callback, clock)
    result = RunResult(config=cfg.to_dict())
    metrics = result.metrics
    phase = ["preflight"]  # mutable: the phase a failure or cancel happened in
    deadline = _Deadline(cancel, timeout_s).start()
    cancel = deadline  # type: ignore[assignment] - same is_set() interface as an Event
    try:
        pre = preflight(cfg)
        result.notices = list(pre.notices)
        result.environment = collect(pre.device)
        phase[0] = "load"
        prepared = prepare(cfg, emit, pre)
        metrics.load_s = prepared.load_s
        result.notices = list(prepared.notices)
        metrics.accelerate_s = prepared.accelerate_s
        result.config.update(height=prepared.height, width=prepared.width,
                             device=prepared.device, dtype=str(prepared.dtype).split(".")[-1])
        phase[0] = "warmup" if cfg.warmups else "measure"  # --warmups 0: no warmup phase
        _check_cancel(cancel)
        images = _warmup_and_measure(cfg, prepared, emit, cancel, metrics, phase)
        if metrics.steps_run is not None and metrics.steps_run < MIN_RELIABLE_STEPS:
            few = (f"the measured call ran only {metrics.steps_run} denoising step(s): it/s "
                   f"rests on so few step intervals; use at least {MIN_RELIABLE_STEPS} steps "
                   "for a reliable figure")
            result.notices.append(few)
            emit(ev.LogMessage("warning", few))
        phase[0] = "save"
        emit(ev.PhaseStarted("save", detail=cfg.output_image or "in memory"))
        t_save = time.perf_counter()
        metrics.image_flag = _image_flag(images)
        if cfg.output_image:
            result.image_path = _save_image(images[0], cfg.output_image)
        result.image = images[0]  # type: ignore[attr-defined] - in-memory only, not serialised
        emit(ev.PhaseFinished("save", time.perf_counter() - t_save))
    except RunCancelled:
        if deadline.expired.is_set():
            result.status = "failed"
            result.error = (f"timed out after {timeout_s:g} s (--timeout / timeout_s) during {phase[0]}; "
                            "the run was stopped")
        else:
            result.status = "cancelled"
            result.error = f"cancelled during {phase[0]}"
        emit(ev.RunFailed(result.error, status=result.status, result=_safe_dict(result)))
        return result
    except BaseException as exc:  # noqa: BLE001 - the contract: never raise for a run failure
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        result.status = "failed"
        result.error = _one_line(exc, phase[0])
        tail = "".join(traceback.format_exception(exc)).splitlines()[-LOG_TAIL_LINES:]
        result.log_tail = "\n".join(tail)
        emit(ev.RunFailed(result.error, status="failed", result=_safe_dict(result),
                          log_tail=result.log_tail))
        return result
    finally:
        deadline.stop()
    emit(ev.RunFinished(_safe_dict(result)))
    return result


def _warmup_and_measure(cfg: RunConfig, prepared: Prepared, emit: EventCallback,
                        cancel: Optional[threading.Event], metrics: Metrics,
                        phase: list) -> list:
    """Warmup calls then the measured call; fills ``metrics``; returns the measured images."""
    import torch

    from diffbench.engine import measure

    pipe, device = prepared.pipe, prepared.device
    watcher = _compile_watcher(cfg, emit)
    try:
        measure.reset_peak_memory(device)
        emit(ev.PhaseStarted("warmup", detail=f"{cfg.warmups} call(s)"))
        t0 = time.perf_counter()
        with torch.inference_mode():
            for index in range(1, cfg.warmups + 1):
                _check_cancel(cancel)
                timer = measure.StepTimer(device, _step_emitter(emit, "warmup", index, cfg,
                                                                prepared.state), cancel)
                timer.start()
                pipe(**call_kwargs(cfg, pipe, device, prepared.height, prepared.width,
                                   prepared.image, prepared.control_image,
                                   callback_on_step_end=timer))
            measure.synchronize(device)
        # No warmup call, no warmup time (not the microseconds of an empty loop).
        metrics.warmup_s = time.perf_counter() - t0 if cfg.warmups else None
    except BaseException:
        if watcher is not None:  # a failed or cancelled warmup must not leave it listening
            watcher.stop()
        raise
    if watcher is not None:
        watcher.stop()
        metrics.compile_s = watcher.compile_s
        if metrics.compile_s is not None and metrics.warmup_s is not None:
            # The watcher's clock starts a moment before the warmup's: never more than it.
            metrics.compile_s = min(metrics.compile_s, metrics.warmup_s)
    from diffbench.engine import accelerators

    if cfg.warmups:
        accelerators.after_warmup(prepared.state, emit)
    metrics.warmup_cache = prepared.state.warmup_cache() if prepared.state else None
    metrics.warmup_peak_allocated_gib = measure.cuda_peak_gib(device)[0]
    emit(ev.PhaseFinished("warmup", metrics.warmup_s or 0.0))
    _check_cancel(cancel)

    phase[0] = "measure"
    emit(ev.PhaseStarted("measure", detail=f"{cfg.steps} steps"))
    measure.reset_peak_memory(device)
    mark = watcher.mark() if watcher is not None else None
    timer = measure.StepTimer(device, _step_emitter(emit, "measured", 0, cfg, prepared.state),
                              cancel)
    with torch.inference_mode():
        measure.synchronize(device)
        t1 = time.perf_counter()
        timer.start()
        output = pipe(**call_kwargs(cfg, pipe, device, prepared.height, prepared.width,
                                    prepared.image, prepared.control_image,
                                    callback_on_step_end=timer))
        measure.synchronize(device)
        metrics.inference_s = time.perf_counter() - t1
    metrics.steps_run = timer.steps
    stats = getattr(prepared.state, "cache_stats", None)
    if stats is not None:  # None counts (a cache without a step count) stay None: "n/a"
        metrics.steps_computed, metrics.steps_skipped = stats.computed(), stats.skipped()
    metrics.step_ms = [round(x, 4) for x in timer.step_ms()]
    metrics.first_step_ms = timer.first_step_ms()
    metrics.it_per_s = (len(metrics.step_ms) / (sum(metrics.step_ms) / 1000.0)
                        if metrics.step_ms and sum(metrics.step_ms) > 0 else None)
    for key, value in measure.step_stats(metrics.step_ms).items():
        setattr(metrics, key, value)
    metrics.peak_allocated_gib, metrics.peak_reserved_gib = measure.cuda_peak_gib(device)
    metrics.peak_rss_gib = measure.peak_rss_gib()
    metrics.nvml_used_gib = measure.nvml_used_gib(device)
    if watcher is not None and mark is not None:
        metrics.recompiles = watcher.recompiles_since(mark)
        metrics.graph_breaks = watcher.graph_breaks()
    emit(ev.PhaseFinished("measure", metrics.inference_s))
    return list(output.images)


def _compile_watcher(cfg: RunConfig, emit: EventCallback) -> Any:
    if cfg.compiler == "none":
        return None
    try:
        from diffbench.engine.compile_progress import CompileWatcher
    except ImportError:
        return None
    return CompileWatcher(emit).start()


def _step_emitter(emit: EventCallback, call: str, warmup_index: int, cfg: RunConfig,
                  state: Any = None) -> Callable[[int, float], None]:
    # Expected total: diffusers runs int(steps * strength) steps for img2img; the observed
    # count is what RunResult reports.
    total = max(1, int(cfg.steps * cfg.strength)) if cfg.task == "i2i" else cfg.steps
    stats = getattr(state, "cache_stats", None)  # the step cache's counts, if any

    def on_step(index: int, step_ms: float) -> None:
        emit(ev.StepFinished(call, index, max(total, index), round(step_ms, 3), warmup_index,
                             steps_skipped=stats.skipped() if stats is not None else None))

    return on_step


def _check_cancel(cancel: Optional[threading.Event]) -> None:
    if cancel is not None and cancel.is_set():
        raise RunCancelled("cancelled")


def _image_flag(images: list) -> Optional[str]:
    try:
        from diffbench.engine.quality import image_flag
    except ImportError:
        return None
    return image_flag(images)


def _save_image(image: Any, path: str) -> str:
    """Write the image atomically (temp file + rename): never a half-written image. The
    format follows the file's extension as Pillow knows it (.jpg, .webp, ...); PNG otherwise."""
    import io
    import os

    from PIL import Image

    Image.init()  # registers every format's extensions
    fmt = Image.registered_extensions().get(os.path.splitext(str(path))[1].lower(), "PNG")
    if fmt == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")  # JPEG has no alpha
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    try:
        from diffbench.engine.atomic import write_bytes
    except ImportError:  # pragma: no cover - diffbench.engine.atomic ships with the package
        target = os.path.abspath(path)
        tmp = f"{target}.tmp{os.getpid()}"
        with open(tmp, "wb") as handle:
            handle.write(buffer.getvalue())
        os.replace(tmp, target)
        return target
    return write_bytes(path, buffer.getvalue())


def _one_line(exc: BaseException, phase: str) -> str:
    if isinstance(exc, DiffbenchError):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = str(exc).strip().splitlines()
    detail = text[0] if text else ""
    name = type(exc).__name__
    if "out of memory" in str(exc).lower():
        name = "out of memory"
    return f"{phase} failed: {name}: {detail}"[:500] if detail else f"{phase} failed: {name}"


def _safe_dict(result: RunResult) -> dict:
    return result.to_dict()
