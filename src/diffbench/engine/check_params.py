"""Parameter check: does the accelerated pipeline still respond to a call argument?

Compilers that bake Python numbers into a graph (or CUDA graphs that replay captured values)
can silently ignore a call argument such as guidance scale, img2img strength, a ControlNet
conditioning scale or an IP-Adapter scale: the first value seen while compiling sticks. The
check calls the eager baseline and the accelerated pipeline — each loaded once, the
accelerated one warmed up at the first value — at two values of the argument, and compares
how far each output moves:

    d_base  = rmse(base(v1),  base(v2))      d_accel = rmse(accel(v1), accel(v2))

with rmse the root mean square pixel difference on the 0..255 scale. ``d_accel < 0.1 *
d_base`` means the accelerated pipeline ignores the argument ("ignored"); a baseline that
barely moves (``d_base`` < :data:`MIN_BASE_DELTA`) makes the check "inconclusive". The
distance of the accelerated output from the baseline's at each value is reported too: for a
frozen argument it is ~0 at v1 and ~d_base at v2.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional, Sequence

from diffbench.engine.errors import ConfigError

#: Arguments with a sensible default pair of values (both > 1 for guidance scale so CFG stays
#: on and the batch shape does not change between the two calls).
DEFAULT_VALUES = {
    "guidance_scale": (3.0, 9.0),
    "strength": (0.5, 0.9),
    "controlnet_conditioning_scale": (0.3, 1.0),
    "ip_adapter_scale": (0.2, 0.9),
    "guidance_rescale": (0.0, 0.7),
    "eta": (0.0, 1.0),
    "image_guidance_scale": (1.2, 2.0),
}
#: d_accel below this fraction of d_base: the argument is ignored.
IGNORED_RATIO = 0.1
#: Baseline deltas below this (RMSE, 0..255 levels) are too small to judge.
MIN_BASE_DELTA = 0.5

#: Builds a loaded pipeline: ``(cfg, on_event, cancel) -> obj`` with ``call(**kw)`` returning
#: (images, seconds), ``warm(calls=n, **kw)`` and ``close()`` (diffbench.engine.loaded_pipeline).
PipelineFactory = Callable[..., Any]


def rmse(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Root mean square difference (0..255 levels) between two image lists of equal shapes.

    Raises:
        ValueError: different counts or sizes.
    """
    import numpy as np

    if len(a) != len(b) or not a:
        raise ValueError("image lists differ in length")
    total, count = 0.0, 0
    for x, y in zip(a, b):
        xa = np.asarray(x, dtype=np.float64)
        ya = np.asarray(y, dtype=np.float64)
        if xa.shape != ya.shape:
            raise ValueError(f"image sizes differ: {xa.shape} vs {ya.shape}")
        total += float(((xa - ya) ** 2).sum())
        count += xa.size
    return math.sqrt(total / count)


@dataclass
class ParamCheck:
    """Outcome of :func:`check_param`. Distances are RMSE on 0..255 levels."""

    argument: str
    values: tuple
    verdict: str  # "ok" | "ignored" | "inconclusive"
    base_delta: float
    accel_delta: float
    accel_vs_base: tuple  # rmse(accel(v), base(v)) for v1, v2
    message: str
    config: dict

    @property
    def ratio(self) -> Optional[float]:
        """d_accel / d_base (1 = moves like the baseline); None when d_base is 0."""
        return self.accel_delta / self.base_delta if self.base_delta > 0 else None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["values"], data["accel_vs_base"] = list(self.values), list(self.accel_vs_base)
        if self.ratio is not None:
            data["ratio"] = self.ratio
        return data


def parse_value(text: str) -> Any:
    """A value from the command line: a number when it parses as one, else the text."""
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text else number


def judge(base_delta: float, accel_delta: float) -> tuple[str, str]:
    """(verdict, one-line explanation) from the two deltas (see the module doc)."""
    if base_delta < MIN_BASE_DELTA:
        return "inconclusive", (f"the baseline barely changes ({base_delta:.2f} RMSE); pick "
                                f"values further apart or an argument this model uses")
    if accel_delta < IGNORED_RATIO * base_delta:
        return "ignored", (f"the accelerated pipeline ignores it: its output moves "
                           f"{accel_delta:.2f} RMSE where the baseline's moves "
                           f"{base_delta:.2f}")
    return "ok", (f"the accelerated output moves {accel_delta:.2f} RMSE, the baseline's "
                  f"{base_delta:.2f} ({accel_delta / base_delta:.2f}x)")


def baseline_config(cfg: Any) -> Any:
    """``cfg`` with every accelerator off: compiler none, no quantization, no DeepCache
    (diffbench.engine.baseline.eager_config)."""
    from diffbench.engine.baseline import eager_config

    return eager_config(cfg)


def check_param(cfg: Any, argument: str, values: Optional[Sequence[Any]] = None,
                pipeline_factory: Optional[PipelineFactory] = None,
                on_event: Optional[Callable[[Any], None]] = None,
                on_stage: Optional[Callable[[str], None]] = None,
                cancel: Any = None) -> ParamCheck:
    """Run the baseline and ``cfg``'s accelerated pipeline at two values of ``argument``.

    Args:
        cfg: a RunConfig with an accelerator (compiler other than none, quantize or
            deepcache).
        argument: a pipeline call keyword ("guidance_scale", "strength",
            "controlnet_conditioning_scale", "image_guidance_scale", ...) or
            "ip_adapter_scale" (set with pipe.set_ip_adapter_scale).
        values: the two values (default :data:`DEFAULT_VALUES`).
        pipeline_factory: builds a loaded pipeline (default diffbench.engine.loaded_pipeline).
        on_event: engine events (load, compile progress) of both pipelines.
        on_stage: short progress notes ("baseline at guidance_scale=3.0").

    Returns:
        ParamCheck with the verdict.

    Raises:
        ConfigError: no accelerator in cfg, not two distinct values, an argument without a
            default pair and no values, strength on a text-to-image run.
    """
    from diffbench.engine.baseline import is_eager

    if is_eager(cfg.to_dict()):
        raise ConfigError("check-params compares an accelerated pipeline with the baseline; "
                          "choose one with --compiler, --quantize or --deepcache")
    if values is None:
        if argument not in DEFAULT_VALUES:
            raise ConfigError(f"no default values for {argument!r}; pass --values A,B")
        values = DEFAULT_VALUES[argument]
    values = tuple(values)
    if len(values) != 2 or values[0] == values[1]:
        raise ConfigError(f"check-params needs two different values, got {list(values)}")
    if argument == "strength" and cfg.task != "i2i":
        raise ConfigError("strength only applies to image-to-image; pass --input-image")
    if pipeline_factory is None:
        from diffbench.engine.loaded_pipeline import LoadedPipeline as pipeline_factory

        _check_argument(cfg, argument)
    stage = on_stage or (lambda text: None)

    def outputs(run_cfg: Any, label: str, warm: bool) -> list:
        loaded = pipeline_factory(run_cfg, on_event, cancel)
        try:
            if warm:  # compile (and capture any baked-in value) at the first value
                stage(f"{label}: warmup at {argument}={values[0]}")
                loaded.warm(calls=max(1, run_cfg.warmups), **{argument: values[0]})
            images = []
            for value in values:
                stage(f"{label} at {argument}={value}")
                images.append(loaded.call(**{argument: value})[0])
            return images
        finally:
            loaded.close()

    base = outputs(baseline_config(cfg), "baseline", warm=False)
    accel = outputs(cfg, "accelerated", warm=True)
    base_delta = rmse(base[0], base[1])
    accel_delta = rmse(accel[0], accel[1])
    verdict, message = judge(base_delta, accel_delta)
    return ParamCheck(argument=argument, values=values, verdict=verdict,
                      base_delta=base_delta, accel_delta=accel_delta,
                      accel_vs_base=(rmse(accel[0], base[0]), rmse(accel[1], base[1])),
                      message=message, config=cfg.to_dict())


def _check_argument(cfg: Any, argument: str) -> None:
    """Fail before loading when the pipeline class has no such call argument (ConfigError)."""
    if cfg.custom_pipeline:
        return  # its class is only known once loaded; LoadedPipeline checks then
    from diffbench.engine.models.loading import pipeline_class
    from diffbench.engine.loaded_pipeline import accepts
    from diffbench.engine.preflight import preflight

    cls = pipeline_class(cfg, preflight(cfg).source)
    if not accepts(cls, argument):
        raise ConfigError(f"{cls.__name__} has no call argument {argument!r}")
