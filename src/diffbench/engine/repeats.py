"""Several measured calls of one run (``--repeat N``): their figures, medians, spread, and
what a large spread or a low GPU busy fraction most likely means.

Each measured call gives one :class:`CallFigures`; :func:`fill_metrics` writes every call's
figures to the record (``it_per_s_calls``, ``inference_s_calls``, ``step_ms_p50_calls``,
``step_ms_p90_calls``), the median as the headline figure (``it_per_s``, ``inference_s``,
``step_ms_p50``, ``step_ms_p90``) and, for two calls or more, the range (``..._min`` / ``..._max``). The step list
(``step_ms``), ``first_step_ms`` and ``step_ms_max`` are the median call's (by it/s), so
``it_per_s == len(step_ms) / sum(step_ms) * 1000`` keeps holding for an odd count of calls.

Spread = (max - min) / median of it/s (of inference time when it/s is missing), a fraction.
Above :data:`SPREAD_WARN` the run's notices say so with the likely cause
(:func:`diagnosis`). Pure Python: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from diffbench.engine.catalog.settings import REPEAT_AUTO

#: Spread (max - min over median) above which the summary warns (5 %).
SPREAD_WARN = 0.05
#: Figures kept per call, each with its median / min / max in the record.
PER_CALL = ("it_per_s", "inference_s", "step_ms_p50", "step_ms_p90")


@dataclass
class CallFigures:
    """One measured call: it/s (None below 2 steps), wall time in s, the step intervals in
    ms (steps 2..N) and the first step's time in ms (call start -> step 1 end)."""

    it_per_s: Optional[float]
    inference_s: float
    step_ms: list[float] = field(default_factory=list)
    first_step_ms: Optional[float] = None

    @property
    def step_ms_p50(self) -> Optional[float]:
        """Median step interval (ms)."""
        from diffbench.engine.measure import percentile

        return percentile(self.step_ms, 50)

    @property
    def step_ms_p90(self) -> Optional[float]:
        """90th percentile step interval (ms)."""
        from diffbench.engine.measure import percentile

        return percentile(self.step_ms, 90)


def resolve_repeat(repeat: Optional[int], device: str) -> int:
    """Measured calls to run: ``repeat``, or for None ("auto") :data:`REPEAT_AUTO` by the
    device kind ("cuda..." -> several, anything else -> one)."""
    if repeat is not None:
        return int(repeat)
    return REPEAT_AUTO["cuda" if str(device).startswith("cuda") else "cpu"]


def median(values: Sequence[float]) -> Optional[float]:
    """The median (mean of the two middle values for an even count); None if empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def spread(values: Sequence[float]) -> Optional[float]:
    """(max - min) / median as a fraction; None for no values or a zero median."""
    centre = median(values)
    if not centre:
        return None
    return (max(values) - min(values)) / centre


def representative(calls: Sequence[CallFigures]) -> int:
    """Index of the median call by it/s (the lower middle for an even count; by inference
    time when it/s is missing)."""
    def key(i: int) -> float:
        figure = calls[i].it_per_s
        return figure if figure is not None else -calls[i].inference_s

    order = sorted(range(len(calls)), key=key)
    return order[(len(order) - 1) // 2]


def fill_metrics(metrics: Any, calls: Sequence[CallFigures]) -> None:
    """Write the calls' figures into ``metrics`` (a Metrics; see the module docstring). A
    figure missing in any call (it/s of a one-step call) is None with empty lists."""
    if not calls:
        return
    for name in PER_CALL:
        values = [getattr(call, name) for call in calls]
        if any(v is None for v in values):
            values = []
        setattr(metrics, f"{name}_calls", [float(v) for v in values])
        setattr(metrics, name, median(values))
        several = len(values) >= 2  # one call has no range: min / max stay None
        setattr(metrics, f"{name}_min", min(values) if several else None)
        setattr(metrics, f"{name}_max", max(values) if several else None)
    chosen = calls[representative(calls)]
    metrics.step_ms = [round(x, 4) for x in chosen.step_ms]
    metrics.first_step_ms = chosen.first_step_ms
    metrics.step_ms_max = max(chosen.step_ms) if chosen.step_ms else None
    metrics.spread = run_spread(metrics)


def run_spread(metrics: Any) -> Optional[float]:
    """The run's spread: over it/s when measured, else over inference time; None for one call
    or a record without per-call figures."""
    for name in ("it_per_s", "inference_s"):
        values = getattr(metrics, f"{name}_calls", None) or []
        if len(values) >= 2:
            return spread(values)
    return None


def diagnosis(metrics: Any, environment: Optional[dict] = None) -> list[str]:
    """The notices a run's figures call for: the spread line when it exceeds
    :data:`SPREAD_WARN`, and the host-bound line when the GPU busy fraction is below
    diffbench.engine.busy.HOST_BOUND_BELOW. ``environment``: the record's (device, CPU
    cores, load average), for the likely cause. [] when neither applies."""
    from diffbench.engine.busy import HOST_BOUND_BELOW

    env = environment or {}
    busy = getattr(metrics, "busy_fraction", None)
    host_bound = busy is not None and busy < HOST_BOUND_BELOW
    lines = []
    value = getattr(metrics, "spread", None)
    if value is not None and value > SPREAD_WARN:
        lines.append(spread_line(metrics, value, _cause(env, busy, host_bound)))
    if host_bound:
        lines.append(f"host-bound: the GPU was busy {busy:.0%} of the measured steps; kernel "
                     f"launches and Python set the pace, so the host's load moves it/s. CUDA "
                     f"graphs remove that: --compiler cudagraph, or --compiler compile with "
                     f"--compiler-config '{{\"mode\": \"reduce-overhead\"}}'")
    return lines


def spread_line(metrics: Any, value: float, cause: str) -> str:
    """One line: how far the measured calls disagree, their range, and the likely cause."""
    name = "it_per_s" if getattr(metrics, "it_per_s_calls", None) else "inference_s"
    values = getattr(metrics, f"{name}_calls")
    what, unit = ("it/s", "") if name == "it_per_s" else ("inference time", " s")
    return (f"{what} varied by {value:.1%} over {len(values)} measured calls (min "
            f"{min(values):.4g}{unit}, median {median(values):.4g}{unit}, max "
            f"{max(values):.4g}{unit}): {cause}")


def _cause(env: dict, busy: Optional[float], host_bound: bool) -> str:
    device = str(env.get("device", ""))
    load = env.get("load_average")
    cores = env.get("cpu_cores")
    load_text = (f" (load average {str(load).split()[0]} on {cores} cores at start)"
                 if load and cores else "")
    if host_bound:
        return (f"likely host-bound (GPU busy {busy:.0%}): the launch rate follows the host's "
                f"CPU load{load_text}")
    if device.startswith("cuda"):
        if busy is not None:
            return (f"the GPU was busy ({busy:.0%}): likely other work on the GPU, clock or "
                    f"power throttling")
        return f"likely other work on this host or GPU{load_text}"
    return f"on CPU the figures follow the host's load{load_text}; other processes compete"
