"""Import ahead: load the heavy libraries of a run before it starts, and fast.

Most of a tiny CPU run from a cold process is imports (torch, diffusers, transformers and
what they pull in; benchmarks/RESULTS.md, "Cold start"). A process that runs one benchmark
imports them before
the run's clock starts anyway; these helpers let it do so earlier (while it waits for its
config: :func:`import_common`; once the config is known: :func:`import_for`) and without the
garbage collector's full collections in between (:class:`FullGcHold`). The same modules are
imported, all before the first timed phase. One effect reaches the timed phases: the
imported objects are frozen, so a full collection during the run no longer walks them: a
compiled tiny run's warmup spends less time in full collections, an eager tiny run does none
either way (benchmarks/RESULTS.md, "Cold start", second session). Runs in a process that
does not use this (``--in-process``) keep the collector's default behaviour.
"""

from __future__ import annotations

import gc
import importlib
from typing import Any, Optional


class FullGcHold:
    """Hold off full (oldest-generation) garbage collections during a run's start-up imports.

    Importing torch, diffusers and transformers leaves about half a million long-lived
    objects; CPython runs a full collection each time the oldest generation has grown by a
    quarter, and each one walks every object made so far (what that costs a cold start, with
    default and raised thresholds side by side: benchmarks/RESULTS.md, "Cold start").
    Young collections go on, so short-lived garbage is freed as usual and the peak RSS stays
    the same. :meth:`release` restores the thresholds and moves everything imported into the
    permanent generation (``gc.freeze``): a full collection there finds next to nothing (about
    150 objects after a tiny-sd15 import) yet would still walk everything. Collections during
    the run
    then walk only the objects the run creates, and no deferred full collection of the
    imports can land in a timed phase.
    """

    #: Oldest-generation threshold while held: more younger collections than any import does.
    HELD = 1_000_000

    def __init__(self) -> None:
        self.saved: Optional[tuple[int, ...]] = None

    def hold(self) -> "FullGcHold":
        """Raise the oldest generation's threshold (idempotent)."""
        if self.saved is None:
            self.saved = gc.get_threshold()
            gc.set_threshold(self.saved[0], self.saved[1], self.HELD)
        return self

    def release(self) -> None:
        """Restore the thresholds and freeze what exists now (no-op when not held); the
        collection after the freeze only resets the collector's counters (nothing pending)."""
        if self.saved is None:
            return
        gc.set_threshold(*self.saved)
        self.saved = None
        gc.freeze()
        gc.collect()


def import_common() -> None:
    """Import what every run needs (diffbench.engine.runner, torch, diffusers), e.g. while a child
    waits for its config. Errors are left to the run, which imports the same modules and
    reports them in its own words."""
    try:
        # diffbench.engine.runner first: it quiets the libraries' import-time chatter.
        for name in ("diffbench.engine.runner", "torch", "diffusers"):
            importlib.import_module(name)
    except Exception:  # noqa: BLE001 - see the docstring
        pass


def import_for(cfg: Any) -> None:
    """Import ``cfg``'s pipeline class and its modules (transformers, the pipeline module)
    now; the run would import them before its clock starts anyway. Errors are left to the
    run (see :func:`import_common`)."""
    try:
        importlib.import_module("diffbench.engine.runner")
        from diffbench.engine.models.loading import pipeline_class

        pipeline_class(cfg)
    except Exception:  # noqa: BLE001 - see the docstring
        pass
