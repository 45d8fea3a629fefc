"""``cudagraph``: capture the denoiser step in a CUDA graph per input shape and replay it.

No compiler at all by default: eager SDXL is bound by Python and kernel-launch overhead, and a
CUDA graph (``torch.cuda.CUDAGraph``) removes both for a capture cost of a fraction of a second.
With ``{"regional": true}`` the UNet's repeated transformer blocks are compiled first
(diffusers' ``compile_repeated_blocks``) and the whole UNet step is captured over them — the
fast-start variant; ``regional_blocks`` names other classes to compile (e.g. also
``ResnetBlock2D``). Other keys: ``memory_format``, ``fuse_qkv`` (see
:mod:`diffbench.engine.accelerators.options`).

How it works: the denoiser's (``spec.denoiser(pipe)``) ``forward`` is replaced on the instance
by :class:`GraphedForward`. For each new key (shapes, dtypes and devices of the tensor arguments plus the non-tensor
arguments) it runs the eager forward twice on a side stream (cuDNN/cuBLAS set-up, and the
regional compile when enabled), then captures one call into a graph with static input buffers
that share one memory pool. Every later call copies its inputs into those buffers, replays the
graph and returns a copy of the static output (so a caller may keep it across steps).

Step caching (``--deepcache``) composes with it: a full step and a cached step run different
blocks, so the cache's phase is part of the key (two graphs per shape), and the deep features a
full step caches live in the full graph's static memory, rewritten by every replay of that graph
and read by the cached step's graph of the same inputs (:attr:`diffbench.engine.accelerators.deepcache.
StepCache.graph_held`; :class:`PhaseSource`). The graphed forwards are kept in the run's
``AcceleratorState.graphs``.

Limits: weights must not be replaced after capture (call :meth:`GraphedForward.reset` after a
LoRA swap); CUDA only.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any, Callable, Protocol

from diffbench.engine.accelerators import versions
from diffbench.engine.accelerators.compile import CompileOptionsAccelerator, compile_regional
from diffbench.engine.accelerators.options import CompileOptions, parse_compile_options
from diffbench.engine.errors import ConfigError
from diffbench.engine.events import LogMessage

if TYPE_CHECKING:  # pragma: no cover
    from diffbench.engine.accelerators.base import AcceleratorState
    from diffbench.engine.config import RunConfig
    from diffbench.engine.events import EventCallback
    from diffbench.engine.families import DenoiserSpec

#: Eager calls on a side stream before a capture (cuDNN/cuBLAS handles, lazy init, compile).
WARMUP_CALLS = 2


def _flatten(value: Any, path: str, out: list) -> None:
    """Collect (path, leaf) pairs from nested dict/list/tuple arguments."""
    if isinstance(value, dict):
        for key in sorted(value):
            _flatten(value[key], f"{path}.{key}", out)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _flatten(item, f"{path}[{index}]", out)
    else:
        out.append((path, value))


def _signature(args: tuple, kwargs: dict) -> tuple:
    """Hashable key of a call: tensor shape/dtype/device, or the value of anything else."""
    import torch

    leaves: list = []
    _flatten(list(args), "args", leaves)
    _flatten(kwargs, "kw", leaves)
    key = []
    for path, leaf in leaves:
        if isinstance(leaf, torch.Tensor):
            key.append((path, tuple(leaf.shape), leaf.dtype, str(leaf.device)))
        elif isinstance(leaf, (int, float)) and not isinstance(leaf, bool) and \
                (path.endswith("timestep") or path == "args[1]"):
            key.append((path, "scalar"))  # timesteps change every step: a buffer, not a key
        else:
            try:
                hash(leaf)
                key.append((path, leaf))
            except TypeError:
                key.append((path, repr(leaf)))
    return tuple(key)


def _to_static(value: Any, device: Any) -> Any:
    """Deep-copy tensors into fresh static buffers on ``device``.

    A CPU tensor argument (e.g. a timestep from a scheduler whose timesteps stay on the CPU)
    gets its buffer on the GPU: a copy from host memory cannot be captured in a graph, and
    :func:`_copy_into` refreshes the buffer before every replay.
    """
    import torch

    if isinstance(value, torch.Tensor):
        if device is not None and value.device.type == "cpu" and \
                torch.device(device).type == "cuda":
            return value.detach().to(device).clone()
        return value.detach().clone()
    if isinstance(value, dict):
        return {key: _to_static(item, device) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_static(item, device) for item in value]
    if isinstance(value, tuple):
        return tuple(_to_static(item, device) for item in value)
    return value


def _copy_into(static: Any, value: Any) -> None:
    """Copy a call's tensors into the matching static buffers (same structure)."""
    import torch

    if isinstance(static, torch.Tensor):
        if isinstance(value, torch.Tensor):
            static.copy_(value, non_blocking=True)
        else:
            static.fill_(value)
    elif isinstance(static, dict):
        for key, item in static.items():
            _copy_into(item, value[key])
    elif isinstance(static, (list, tuple)):
        for item, new in zip(static, value):
            _copy_into(item, new)


def _clone_output(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_clone_output(item) for item in value)
    if isinstance(value, list):
        return [_clone_output(item) for item in value]
    if hasattr(value, "to_tuple") and hasattr(value, "keys"):  # diffusers BaseOutput
        return type(value)(**{key: _clone_output(value[key]) for key in value.keys()})
    return value


class _Captured:
    __slots__ = ("graph", "args", "kwargs", "output")

    def __init__(self, graph: Any, args: Any, kwargs: Any, output: Any) -> None:
        self.graph, self.args, self.kwargs, self.output = graph, args, kwargs, output


class PhaseSource(Protocol):
    """What :class:`GraphedForward` needs from a forward with phases (step caching)."""

    def phase(self) -> Any:
        """The current phase: hashable, part of the graph key."""

    def graph_state(self) -> Any:
        """The Python state a capture left that later graphs of the same inputs read."""

    def restore_graph_state(self, state: Any) -> None:
        """Put back a state returned by :meth:`graph_state`."""


class GraphedForward:
    """Drop-in ``forward`` that captures one CUDA graph per call signature and replays it.

    Args:
        forward: the module's original bound forward.
        emit: event callback; each capture is logged with its cost.
        phases: optional :class:`PhaseSource` (step caching's
            :class:`~diffbench.engine.accelerators.deepcache.StepCache`): its ``phase()`` changes which
            code the forward runs without changing its inputs, so it is part of the key and
            each phase gets its own graph; the Python state a capture leaves (the deep
            features, in that graph's static memory) is kept per input signature and put back
            before another phase of the same inputs is captured.
        label: how capture messages name the module ("UNet", "transformer").

    Attributes:
        capture_s: total seconds spent in warmup-and-capture so far.
        captures: number of graphs captured (one per phase and distinct input shape set).
    """

    def __init__(self, forward: Callable, emit: "EventCallback",
                 phases: "PhaseSource | None" = None, label: str = "UNet") -> None:
        self._forward = forward
        self._label = label
        self._emit = emit
        self._phases = phases
        self._graphs: dict[tuple, _Captured] = {}
        # Per input signature: the phase source's state after its last capture. Holding it
        # also keeps those graph buffers alive, so the shared pool never hands them to a
        # later capture (e.g. another image size) that would overwrite them.
        self._states: dict[tuple, Any] = {}
        self._pool: Any = None  # one memory pool for every graph, made at the first capture
        self.capture_s = 0.0
        self.captures = 0

    def reset(self) -> None:
        """Drop every captured graph (after weights were replaced, e.g. a LoRA swap)."""
        self._graphs.clear()
        self._states.clear()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import torch

        if torch.cuda.is_current_stream_capturing():
            return self._forward(*args, **kwargs)
        key = self.key(args, kwargs)
        # Static buffers are inference tensors: touch them only in inference mode (a caller
        # under no_grad alone would otherwise be refused the in-place copy).
        with torch.inference_mode():
            captured = self._graphs.get(key)
            if captured is None:
                captured = self._capture(key, args, kwargs)
            _copy_into(captured.args, args)
            _copy_into(captured.kwargs, kwargs)
            captured.graph.replay()
            return _clone_output(captured.output)

    def key(self, args: tuple, kwargs: dict) -> tuple:
        """The graph a call replays: the phase (if any) plus :func:`_signature`."""
        phase = self._phases.phase() if self._phases is not None else None
        return (phase,) + _signature(args, kwargs)

    def _capture(self, key: tuple, args: tuple, kwargs: dict) -> _Captured:
        """Capture the graph of ``key``, with the phase source's state of the same inputs."""
        signature = key[1:]
        if self._phases is not None and signature in self._states:
            # Replays run no Python: the state now may be another signature's last capture.
            self._phases.restore_graph_state(self._states[signature])
        start = time.perf_counter()
        captured = self._record(args, kwargs)
        elapsed = time.perf_counter() - start
        self.capture_s += elapsed
        self.captures += 1
        if self._phases is not None:
            self._states[signature] = self._phases.graph_state()
        shape = next((tuple(leaf.shape) for _p, leaf in _leaves(args, kwargs)
                      if hasattr(leaf, "shape")), ())
        what = f"{self._label} input {list(shape)}" if key[0] is None else \
            f"{self._label} input {list(shape)}, phase {key[0]}"
        self._emit(LogMessage("info", f"CUDA graph captured for {what} in {elapsed:.2f} s"))
        self._graphs[key] = captured
        return captured

    def _record(self, args: tuple, kwargs: dict) -> _Captured:
        """Warm up on a side stream, then capture one call into a graph (CUDA)."""
        import torch

        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        device = next((leaf.device for _p, leaf in _leaves(args, kwargs)
                       if isinstance(leaf, torch.Tensor)), None)
        static_args = _to_static(args, device)
        static_kwargs = _to_static(kwargs, device)
        # Scalar timesteps become 0-d tensors so every step replays the same graph.
        static_args, static_kwargs = _tensorise_timestep(static_args, static_kwargs, device)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_CALLS):
                self._forward(*static_args, **static_kwargs)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            output = self._forward(*static_args, **static_kwargs)
        torch.cuda.synchronize()
        return _Captured(graph, static_args, static_kwargs, output)


def _leaves(args: tuple, kwargs: dict) -> list:
    out: list = []
    _flatten(list(args), "args", out)
    _flatten(kwargs, "kw", out)
    return out


def _tensorise_timestep(args: Any, kwargs: dict, device: Any) -> tuple:
    import torch

    if "timestep" in kwargs and isinstance(kwargs["timestep"], (int, float)):
        kwargs = dict(kwargs, timestep=torch.tensor(float(kwargs["timestep"]), device=device))
    if len(args) > 1 and isinstance(args[1], (int, float)):
        args = (args[0], torch.tensor(float(args[1]), device=device)) + tuple(args[2:])
    return args, kwargs


def graph_module(module: Any, emit: "EventCallback", phases: "PhaseSource | None" = None,
                 label: str = "UNet") -> GraphedForward:
    """Replace ``module.forward`` by a :class:`GraphedForward` (idempotent); return it.
    ``label`` names the module in the capture messages ("UNet", "transformer")."""
    current = module.__dict__.get("forward")
    if isinstance(current, GraphedForward):
        return current
    graphed = GraphedForward(module.forward, emit, phases, label)
    module.forward = graphed
    return graphed


class CudaGraph(CompileOptionsAccelerator):
    """``--compiler cudagraph``: CUDA graph of the denoiser step per shape; optional regional
    compile underneath (``{"regional": true}``, the fast-start variant)."""

    name = "cudagraph"
    description = "CUDA graph of the denoiser step (no compiler; regional compile optional)"
    config_keys = ("regional", "regional_blocks", "memory_format", "fuse_qkv", "mode",
                   "fullgraph", "dynamic", "backend")

    def available(self, device: str = "cuda") -> tuple[bool, str]:
        if not str(device).startswith("cuda"):
            return False, "CUDA graphs need a CUDA GPU (this run is on the CPU)"
        if versions.torch_version() is None:
            return False, "torch is not installed"
        if not versions.torch_at_least(2, 0):
            return False, f"needs torch >= 2.0, this is torch {versions.torch_version()}"
        return True, ""

    def compiles(self, opts: CompileOptions) -> bool:
        """Only the regional variant compiles (and uses the compile cache)."""
        return opts.regional

    def options(self, cfg: "RunConfig") -> tuple[CompileOptions, list[str]]:
        opts, notices = parse_compile_options(cfg.compiler_config, self.name, None,
                                              allowed=self.config_keys)
        if not opts.regional:
            for key in ("mode", "fullgraph", "dynamic", "backend"):
                if key in cfg.compiler_config:
                    notices.append(f"ignored: compiler_config key {key!r} applies only with "
                                   f"regional=true (cudagraph compiles nothing otherwise)")
        if opts.mode == "reduce-overhead":
            raise ConfigError("cudagraph with mode reduce-overhead would nest CUDA graphs; "
                              "use mode default or max-autotune-no-cudagraphs")
        if opts.mode == "max-autotune":
            # max-autotune turns on inductor's own CUDA graphs: they cannot nest in ours.
            notices.append("cudagraph: mode max-autotune would nest inductor's CUDA graphs in "
                           "the UNet's graph; using max-autotune-no-cudagraphs")
            opts = dataclasses.replace(opts, mode="max-autotune-no-cudagraphs")
        return opts, notices

    def apply(self, pipe: Any, spec: "DenoiserSpec", cfg: "RunConfig", emit: "EventCallback",
              state: "AcceleratorState | None" = None) -> Any:
        opts, state = self.begin_apply(pipe, spec, cfg, emit, state)
        denoiser = spec.denoiser(pipe)
        if opts.regional:
            compile_regional(denoiser, opts.torch_kwargs(), opts.regional_blocks,
                             spec.repeated_blocks)
        step_cache = state.step_cache
        if step_cache is not None:
            # Cached deep features stay in the full step's graph memory across calls.
            step_cache.graph_held = True
        state.graphs.append(graph_module(denoiser, emit, step_cache, spec.denoiser_label))
        controlnet = getattr(pipe, "controlnet", None)
        if controlnet is not None and hasattr(controlnet, "forward"):
            state.graphs.append(graph_module(controlnet, emit, label="ControlNet"))
        emit(LogMessage("info", f"CUDA graph of the {spec.denoiser_label} step" +
                        (" over regionally compiled blocks" if opts.regional else "") +
                        "; captured in the first warmup call, once per input shape"))
        return pipe
