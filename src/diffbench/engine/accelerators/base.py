"""The one interface every accelerator implements, and the state they share for one pipeline.

An accelerator is a plugin: a subclass of :class:`Accelerator` in its own module, listed on one
line of :data:`diffbench.engine.accelerators.registry.TABLE`. Two kinds:

- ``compiler``: exactly one per run, chosen by ``RunConfig.compiler`` (none, compile,
  compile-max-autotune, cudagraph, nexfort, oneflow);
- ``stacked``: any number, each switched on by its own settings (ControlNet, LoRA, step
  caching, quantization), applied in table order before the compiler.

Every plugin reaches the model through the family's :class:`~diffbench.engine.families.
DenoiserSpec` (``spec.denoiser(pipe)``, ``spec.blocks(...)``), never through a pipeline
attribute name, and keeps what later steps need in the run's :class:`AcceleratorState`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from diffbench.engine.config import RunConfig
    from diffbench.engine.events import EventCallback
    from diffbench.engine.families import DenoiserSpec

COMPILER = "compiler"
STACKED = "stacked"


@dataclass
class AcceleratorState:
    """What the accelerators of one loaded pipeline leave for each other and for the runner
    (instead of attributes stashed on the pipeline).

    Attributes:
        compile_cache: diffbench.engine.accelerators.compile_cache.CacheState of a run that
            compiles (its cache folder, cold/warm), else None.
        step_cache: the step caching's StepCache (diffbench.engine.accelerators.deepcache),
            which the CUDA-graph compiler keys its graphs on; None without step caching.
        modules_prepared: channels_last / fused QKV already applied (once per pipeline).
        graphs: the CUDA-graphed forwards installed (reset them after replacing weights).
        cache_stats: the diffusers step cache's StepStats (diffbench.engine.accelerators.
            cache_probe): steps computed / skipped in the current call; None without one.
    """

    compile_cache: Any = None
    step_cache: Any = None
    modules_prepared: bool = False
    graphs: list = field(default_factory=list)
    cache_stats: Any = None

    def warmup_cache(self) -> "str | None":
        """"cold" / "warm" for runs that use the compile cache, None otherwise."""
        return self.compile_cache.state if self.compile_cache is not None else None


class Accelerator:
    """Base class of every plugin. Subclasses set the class attributes and override what they
    need.

    Attributes:
        name: the registry key (for compilers, the ``--compiler`` value).
        kind: ``"compiler"`` or ``"stacked"``.
        stage: when a stacked plugin applies: ``"load"`` (part of building the pipeline, timed
            in load_s: ControlNet, LoRA) or ``"accelerate"`` (timed in accelerate_s).
        lossless: True when the image equals that of the eager baseline with the same model
            settings (compilers up to float rounding; LoRA and ControlNet are part of the
            model, the baseline has them too); False for approximations (step caching,
            quantization), whose drift is worth reporting.
        config_keys: the settings keys the plugin reads (compiler_config keys for compilers).
        description: one line for doctor and the dashboard.
        category: doctor's "kind" column for stacked plugins.
        choices: (label, RunConfig overrides) per variant doctor checks separately (e.g.
            each quantization mode); empty: one check under the plugin's name.
    """

    name = "base"
    kind = COMPILER
    stage = "accelerate"
    lossless = True
    config_keys: tuple[str, ...] = ()
    description = ""
    category = ""
    choices: tuple[tuple[str, dict], ...] = ()

    def available(self, device: str = "cuda") -> tuple[bool, str]:
        """(ok, reason) for running this plugin on ``device`` ("cpu", "cuda", "cuda:N").

        Cheap (imports at most the backend's metadata) and never raises; ``reason`` is "" when
        ok, else one line saying why not and what to install.
        """
        return True, ""

    def available_for(self, cfg: "RunConfig", device: str) -> tuple[bool, str]:
        """(ok, reason) for ``cfg``'s use of this plugin on ``device`` (default
        :meth:`available`; quantization checks the chosen mode)."""
        return self.available(device)

    def requested(self, cfg: "RunConfig") -> bool:
        """Whether ``cfg`` asks for this plugin (compilers: ``cfg.compiler == name``)."""
        return self.kind == COMPILER and cfg.compiler == self.name

    def describe(self, cfg: "RunConfig") -> str:
        """How messages name this plugin as ``cfg`` uses it (default: its name)."""
        return self.name

    def family_reason(self, cfg: "RunConfig", spec: "DenoiserSpec") -> str:
        """Why this plugin cannot serve ``cfg`` on models of family ``spec`` (one line), or
        "" when it can. Checked before anything loads. Default: every family."""
        return ""

    def validate(self, cfg: "RunConfig") -> list[str]:
        """Check ``cfg``'s settings for this plugin without loading anything; return notices
        (ignored keys, settings with no effect).

        Raises:
            ConfigError / ModelNotFoundError: one-line messages.
        """
        return []

    def prepare(self, pipe: Any, spec: "DenoiserSpec", cfg: "RunConfig",
                emit: "EventCallback", state: AcceleratorState) -> None:
        """Compilers only: work that must happen before the stacked plugins change the
        modules (compile cache folder, channels_last, fused QKV). Default: nothing."""

    def apply(self, pipe: Any, spec: "DenoiserSpec", cfg: "RunConfig", emit: "EventCallback",
              state: "AcceleratorState | None" = None) -> Any:
        """Accelerate ``pipe`` (a diffusers pipeline on its device) of family ``spec`` for
        ``cfg``; report progress and notices through ``emit`` (diffbench.engine.events); keep
        what later plugins need in ``state``.

        Returns the pipeline, possibly wrapped or rebuilt. The base returns it unchanged.

        Raises:
            AcceleratorUnavailableError, ConfigError: one-line messages.
        """
        return pipe
