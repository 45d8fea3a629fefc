"""Throughput fit: pipeline time against the number of denoising steps.

One pipeline call costs a fixed part (prompt encoding, VAE decode, image post-processing,
Python overhead) plus a part per denoising step (UNet + scheduler). Timing calls at several
step counts and fitting ``time_s = base_s + steps * per_step_s`` by least squares separates
the two, as OneDiff's ``--throughput`` option does (numpy polyfit of degree 1 over
``range(1, 100)``), here with the coefficient of determination R^2 reported so a noisy fit is
visible, and with a warmup call before the timed ones.

``it_per_s_no_base = 1 / per_step_s``: the denoising rate once the fixed cost is removed.
"""

from __future__ import annotations

import statistics
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional, Sequence

from diffbench.engine.errors import ConfigError, RunCancelled

#: Default step counts: 10 points, enough spread for a stable slope, cheap on tiny models.
DEFAULT_STEPS = (2, 4, 6, 8, 10, 12, 14, 16, 18, 20)
#: Timed calls per step count; the fastest is kept (least disturbed by other processes).
DEFAULT_REPEATS = 3


@dataclass
class LineFit:
    """``time_s = base_s + steps * per_step_s`` fitted by ordinary least squares.

    r2 = 1 - SS_res / SS_tot (1.0 = every point on the line; SS_tot == 0 gives 1.0 when the
    residuals are 0 too, else 0.0).
    """

    base_s: float
    per_step_s: float
    r2: float

    @property
    def per_step_ms(self) -> float:
        """The fitted slope in ms per denoising step (``per_step_s`` x 1000)."""
        return self.per_step_s * 1000.0

    @property
    def it_per_s_no_base(self) -> Optional[float]:
        """Denoising steps per second without the fixed cost; None when the slope is <= 0."""
        return 1.0 / self.per_step_s if self.per_step_s > 0 else None


def fit_line(steps: Sequence[float], times_s: Sequence[float]) -> LineFit:
    """Least-squares fit of ``times_s`` against ``steps`` (numpy.linalg.lstsq).

    Raises:
        ConfigError: fewer than two distinct step counts, or lengths differ.
    """
    import numpy as np

    if len(steps) != len(times_s):
        raise ConfigError("throughput fit needs one time per step count")
    if len(set(steps)) < 2:
        raise ConfigError("throughput fit needs at least two different step counts")
    x = np.asarray(steps, dtype=np.float64)
    y = np.asarray(times_s, dtype=np.float64)
    design = np.stack([np.ones_like(x), x], axis=1)
    (base, per_step), *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - (base + per_step * x)
    ss_res = float(residual @ residual)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
    return LineFit(base_s=float(base), per_step_s=float(per_step), r2=r2)


@dataclass
class ThroughputResult:
    """Measured points and their fit. ``times_s[i]`` is the kept (fastest) wall time of a
    call with ``steps[i]`` denoising steps; ``samples_s[i]`` all its timed repeats."""

    config: dict
    steps: list[int]
    times_s: list[float]
    samples_s: list[list[float]] = field(default_factory=list)
    fit: Optional[LineFit] = None
    warmup_s: Optional[float] = None
    environment: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON/TOML-friendly: the points, the fit and the derived figures (None dropped)."""
        data = asdict(self)
        if self.fit is not None:
            data["fit"].update(per_step_ms=self.fit.per_step_ms,
                               it_per_s_no_base=self.fit.it_per_s_no_base)
        return _drop_none(data)


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value if v is not None]
    return value


def parse_steps(text: str) -> list[int]:
    """Parse step counts: ``"2,4,8"``, ``"2:20"`` (every step) or ``"2:20:2"`` (start:stop:
    stride, stop included).

    Raises:
        ConfigError: not integers, a count below 1, or fewer than two distinct counts.
    """
    text = text.strip()
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] < 1):
                raise ValueError
            stride = parts[2] if len(parts) == 3 else 1
            values = list(range(parts[0], parts[1] + 1, stride))
        else:
            values = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise ConfigError(f"--steps wants a list like 2,4,8 or a range like 2:20:2, "
                          f"got {text!r}") from None
    if any(v < 1 for v in values):
        raise ConfigError("step counts must be at least 1")
    values = sorted(set(values))
    if len(values) < 2:
        raise ConfigError("the throughput fit needs at least two different step counts")
    return values


#: ``timer(steps) -> seconds``: one synchronised pipeline call with that many steps.
Timer = Callable[[int], float]


def measure(timer: Timer, steps: Sequence[int], repeats: int = DEFAULT_REPEATS,
            on_point: Optional[Callable[[int, int, float], None]] = None,
            cancel: Optional[threading.Event] = None) -> tuple[list[float], list[list[float]]]:
    """Time ``repeats`` calls per step count, interleaved (round r times every step count
    before round r+1, so a slow spell of the machine spreads over all points rather than
    bending the line); keep each point's fastest call.

    Args:
        on_point: ``(done, total, seconds)`` after each timed call (progress).

    Returns:
        (kept times per step count, all samples per step count), in ``steps`` order.

    Raises:
        RunCancelled: ``cancel`` was set between calls.
    """
    samples: list[list[float]] = [[] for _ in steps]
    total, done = len(steps) * repeats, 0
    for _ in range(repeats):
        for i, n in enumerate(steps):
            if cancel is not None and cancel.is_set():
                raise RunCancelled("throughput measurement cancelled")
            seconds = timer(n)
            samples[i].append(seconds)
            done += 1
            if on_point:
                on_point(done, total, seconds)
    return [min(s) for s in samples], samples


def run_throughput(cfg: Any, steps: Sequence[int] = DEFAULT_STEPS,
                   repeats: int = DEFAULT_REPEATS, timer: Optional[Timer] = None,
                   on_event: Optional[Callable[[Any], None]] = None,
                   on_point: Optional[Callable[[int, int, float], None]] = None,
                   cancel: Optional[threading.Event] = None,
                   threads: Optional[int] = None) -> ThroughputResult:
    """Load ``cfg``'s pipeline once (with its accelerator), warm it up, time it at every step
    count and fit the line.

    Args:
        cfg: a RunConfig; ``cfg.steps`` is ignored (``steps`` is used), ``cfg.warmups`` warmup
            calls run first at the largest step count (at least one).
        timer: replaces the pipeline (tests); when given nothing is loaded.
        on_event: runner events of the load/accelerate/warmup phases (progress).
        threads: CPU runs: torch intra-op threads while measuring (torch.set_num_threads;
            restored after). On a busy machine 1 thread gives far steadier timings than
            threads competing with other processes for cores.

    Raises:
        ConfigError / ModelNotFoundError / AcceleratorUnavailableError: bad input, before
        loading. RunCancelled: ``cancel`` set.
    """
    steps = sorted(set(int(s) for s in steps))
    if len(steps) < 2:
        raise ConfigError("the throughput fit needs at least two different step counts")
    if repeats < 1:
        raise ConfigError("--repeats must be at least 1")
    warmup_s = None
    environment: dict = {}
    loaded = None
    restore_threads = _set_threads(threads)
    if timer is None:
        from diffbench.engine.loaded_pipeline import LoadedPipeline

        loaded = LoadedPipeline(cfg, on_event=on_event, cancel=cancel)
        warmup_s = loaded.warm(max(steps), max(1, cfg.warmups))
        timer = loaded
        environment = loaded.environment
    try:
        times, samples = measure(timer, steps, repeats, on_point, cancel)
    finally:
        if loaded is not None:
            loaded.close()
        restore_threads()
    config = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    return ThroughputResult(config=config, steps=list(steps), times_s=times, samples_s=samples,
                            fit=fit_line(steps, times), warmup_s=warmup_s,
                            environment=environment)


def _set_threads(threads: Optional[int]) -> Callable[[], None]:
    """Set torch's intra-op thread count; return a function restoring the old one."""
    if not threads:
        return lambda: None
    if threads < 1:
        raise ConfigError("--threads must be at least 1")
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    return lambda: torch.set_num_threads(old)


def spread(samples: Sequence[float]) -> float:
    """Relative spread (max - min) / median of one point's repeats (0 = perfectly stable)."""
    med = statistics.median(samples)
    return (max(samples) - min(samples)) / med if med > 0 else 0.0
