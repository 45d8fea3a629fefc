"""Compile progress from torch's own counters, polled while the warmup compiles.

torch.compile reports nothing while it works; a 2-minute compile looks like a hang. Dynamo and
inductor keep counters (``torch._dynamo.utils.counters``) and inductor counts generated kernels
(``torch._inductor.metrics.generated_kernel_count``). :class:`CompileWatcher` polls them from a
background thread and emits :class:`diffbench.engine.events.CompileProgress` whenever they move.

Use (the runner)::

    watcher = CompileWatcher(emit)      # emit: EventCallback
    watcher.start()                     # before the first warmup call
    ...warmup calls...
    watcher.stop()                      # emits a last CompileProgress; compile_s attributed
    mark = watcher.mark()               # just before the measured call
    ...measured call...
    metrics.recompiles = watcher.recompiles_since(mark)
    metrics.graph_breaks = watcher.graph_breaks()

Counter names used (present from torch 2.1 on; absent ones read as 0): frames
``counters["frames"]["total"]`` (Dynamo frames traced; any traced during the measured call is a
recompile or a new compile), ``counters["stats"]["unique_graphs"]`` (graphs compiled),
``counters["inductor"]["select_algorithm_autotune"]`` (autotuned kernel choices) plus
``generated_kernel_count``, and the sum of ``counters["graph_break"]``. Cache lookups:
``counters["inductor"]["fxgraph_cache_hit"/"fxgraph_cache_miss"]`` plus
``counters["aot_autograd"]["autograd_cache_hit"/"autograd_cache_miss"]``.

The stage (Dynamo tracing, AOT autograd, inductor codegen, kernel builds) is read from the
compiling thread's Python stack (``sys._current_frames``): the innermost frame in one of
torch's compiler packages names it (see :data:`STAGE_PATHS`). Counters alone cannot tell: a
C++/Triton kernel build moves none of them for minutes.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Optional

from diffbench.engine.events import CompileProgress, EventCallback

#: Seconds between polls: fast enough to look alive, cheap enough to be noise.
POLL_S = 0.5
#: Seconds between progress events while the counters stand still.
HEARTBEAT_S = 5.0


#: The compile stages in pipeline order, as CompileProgress.stage names them.
STAGES = ("Dynamo tracing", "AOT autograd", "inductor codegen", "kernel builds")

#: (path fragment of a torch source file, stage): the first fragment found in a frame's file
#: name wins, so the specific inductor modules come before inductor as a whole.
STAGE_PATHS = (
    ("torch/_inductor/codecache", "kernel builds"),
    ("torch/_inductor/async_compile", "kernel builds"),
    ("torch/_inductor/cpp_builder", "kernel builds"),
    ("torch/_inductor/runtime/triton_heuristics", "kernel builds"),
    ("triton/compiler", "kernel builds"),
    ("torch/_inductor/", "inductor codegen"),
    ("torch/_functorch/", "AOT autograd"),
    ("torch/_dynamo/", "Dynamo tracing"),
)


def stage_of_stack(filenames: list[str]) -> str:
    """The compile stage a thread is in, from its stack's file names (innermost first):
    the first frame in one of :data:`STAGE_PATHS`' packages; "" when none (the compiled
    code runs, or nothing compiles)."""
    for name in filenames:
        name = name.replace("\\", "/")
        for fragment, stage in STAGE_PATHS:
            if fragment in name:
                return stage
    return ""


def thread_stage(thread_id: Optional[int]) -> str:
    """:func:`stage_of_stack` of the thread ``thread_id`` now ("" when it is gone)."""
    if thread_id is None:
        return ""
    frame = sys._current_frames().get(thread_id)
    names = []
    while frame is not None and len(names) < 400:  # deep compiles: bounded walk
        names.append(frame.f_code.co_filename)
        frame = frame.f_back
    return stage_of_stack(names)


def cache_counts() -> tuple[int, int]:
    """(hits, misses) of the compile caches so far in this process (0, 0 without torch)."""
    try:
        from torch._dynamo.utils import counters

        hits = (int(counters["inductor"].get("fxgraph_cache_hit", 0))
                + int(counters["aot_autograd"].get("autograd_cache_hit", 0)))
        misses = (int(counters["inductor"].get("fxgraph_cache_miss", 0))
                  + int(counters["aot_autograd"].get("autograd_cache_miss", 0)))
    except Exception:
        return 0, 0
    return hits, misses


@dataclass(frozen=True)
class CompileCounts:
    """A snapshot of the counters (cumulative in this process)."""

    frames: int = 0
    graphs: int = 0
    kernels: int = 0
    graph_breaks: int = 0

    def minus(self, other: "CompileCounts") -> "CompileCounts":
        return CompileCounts(self.frames - other.frames, self.graphs - other.graphs,
                             self.kernels - other.kernels, self.graph_breaks - other.graph_breaks)


def read_counts() -> CompileCounts:
    """Current counter values; all zeros if torch (or its Dynamo) is not importable."""
    try:
        from torch._dynamo.utils import counters
    except Exception:
        return CompileCounts()
    try:
        # fullgraph compiles bypass the frames counter; Dynamo's per-frame compile ids do not.
        frames = max(int(counters["frames"].get("total", 0)), _frame_compiles())
        graphs = int(counters["stats"].get("unique_graphs", 0))
        kernels = int(counters["inductor"].get("select_algorithm_autotune", 0))
        breaks = int(sum(counters["graph_break"].values()))
    except Exception:  # counters is a defaultdict of Counters; be defensive across versions
        return CompileCounts()
    try:
        from torch._inductor import metrics

        kernels += int(getattr(metrics, "generated_kernel_count", 0))
    except Exception:
        pass
    return CompileCounts(frames, graphs, kernels, breaks)


def _frame_compiles() -> int:
    """Frame compilations so far (first compiles and recompiles), 0 where unknown."""
    try:
        from torch._dynamo.convert_frame import FRAME_COMPILE_COUNTER

        return int(sum(int(n) for n in FRAME_COMPILE_COUNTER.values()))
    except Exception:
        return 0


def recompile_count() -> int:
    """Recompilations so far in this process: compiles of a frame beyond its first."""
    try:
        from torch._dynamo.convert_frame import FRAME_COMPILE_COUNTER
    except Exception:
        return 0
    try:
        return int(sum(max(0, int(n) - 1) for n in FRAME_COMPILE_COUNTER.values()))
    except Exception:
        return 0


class CompileWatcher:
    """Polls compile counters in a daemon thread and emits CompileProgress when they change.

    Args:
        emit: event callback (called from the watcher thread; must be thread-safe — the
            runner's callbacks only enqueue or print).
        poll_s: seconds between polls.

    ``recompiles`` in each event: recompilations of code objects already compiled once
    (Dynamo's per-frame compile ids, ``torch._dynamo.convert_frame.FRAME_COMPILE_COUNTER``,
    where the torch has it; else 0).
    """

    def __init__(self, emit: EventCallback, poll_s: float = POLL_S) -> None:
        self._emit = emit
        self._poll_s = poll_s
        self._base = CompileCounts()
        self._base_recompiles = 0
        self._last: Optional[CompileCounts] = None
        self._start_t = 0.0
        self._last_emit_t = 0.0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.compile_s: Optional[float] = None
        self._first_change_t: Optional[float] = None
        self._last_change_t: Optional[float] = None
        self._thread_id: Optional[int] = None  # the thread that runs the warmup (compiles)
        self._base_cache = (0, 0)
        self._stage = ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "CompileWatcher":
        """Snapshot the counters and start polling (call it from the thread that will run
        the warmup: its stack tells the compile stage). Returns self."""
        self._thread_id = threading.get_ident()
        self._base_cache = cache_counts()
        self._base = read_counts()
        self._base_recompiles = recompile_count()
        self._last = CompileCounts()
        self._start_t = self._last_emit_t = time.perf_counter()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="compile-watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> CompileCounts:
        """Stop polling, emit a final event if anything compiled; return counts since start.

        Sets ``compile_s``: seconds from start to the last counter change (None if nothing
        compiled) — an upper bound on compile time inside the warmup.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        counts = self.counts()
        self._poll_once(final=True)
        if self._last_change_t is not None:
            self.compile_s = self._last_change_t - self._start_t
        return counts

    def counts(self) -> CompileCounts:
        """Counts since :meth:`start`."""
        return read_counts().minus(self._base)

    # ------------------------------------------------------------------ measured call
    @staticmethod
    def mark() -> CompileCounts:
        """A snapshot to pass to :meth:`recompiles_since` (take it just before the call)."""
        return read_counts()

    @staticmethod
    def recompiles_since(mark: CompileCounts) -> int:
        """Dynamo frames traced since ``mark``: 0 when the measured call reused the warmup's
        graphs; anything else is a recompile (a guard failed) or a late first compile."""
        now = read_counts()
        return max(0, now.frames - mark.frames, now.graphs - mark.graphs)

    def graph_breaks(self) -> int:
        """Graph breaks recorded since :meth:`start`."""
        return max(0, self.counts().graph_breaks)

    # ------------------------------------------------------------------ polling
    def _run(self) -> None:
        while not self._stop.wait(self._poll_s):
            self._poll_once()

    def _poll_once(self, final: bool = False) -> None:
        counts = self.counts()
        now = time.perf_counter()
        stage = "" if final else thread_stage(self._thread_id)
        stage_moved, self._stage = stage != self._stage, stage
        if counts != self._last:
            if self._first_change_t is None:
                self._first_change_t = now
            self._last_change_t = now
            self._last = counts
            self._last_emit_t = now
        elif stage_moved and stage:
            pass  # a new stage is news even when no counter moved (compile_s unchanged)
        elif not final and (now - self._last_emit_t < HEARTBEAT_S
                            or (counts.frames == 0 and not stage)):
            return  # heartbeats only once the compiler has started
        # A heartbeat while the counters stand still: Dynamo tracing and inductor lowering of
        # a large graph run for a minute or more before the first counter moves.
        self._last_emit_t = now
        if final and counts == CompileCounts():
            return
        message = (f"traced {counts.frames} frames, compiled {counts.graphs} graphs, "
                   f"{counts.kernels} kernels")
        if counts.graphs == 0 and not final:
            message = (f"compiling: Dynamo tracing / inductor lowering of {counts.frames} "
                       f"frame(s), {counts.kernels} kernels so far")
        if counts.graph_breaks:
            message += f", {counts.graph_breaks} graph breaks"
        hits, misses = cache_counts()
        try:
            self._emit(CompileProgress(frames=counts.frames, graphs=counts.graphs,
                                       kernels=counts.kernels,
                                       recompiles=recompile_count() - self._base_recompiles,
                                       elapsed_s=now - self._start_t, message=message,
                                       stage=stage, cache_hits=hits - self._base_cache[0],
                                       cache_misses=misses - self._base_cache[1]))
        except Exception:  # a failing sink must not kill the watcher thread
            pass
