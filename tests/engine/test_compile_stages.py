"""The compile stage and cache counts in CompileProgress (issue 17, found problem 4): a
kernel build that moves no counter must still say what it is doing."""

from __future__ import annotations

import threading
import time

from diffbench.engine import compile_progress, events as ev
from diffbench.engine.compile_progress import CompileCounts, CompileWatcher, stage_of_stack


def test_stage_is_the_innermost_compiler_frame():
    inner_first = ["/x/torch/_inductor/codecache.py", "/x/torch/_inductor/graph.py",
                   "/x/torch/_functorch/aot_autograd.py", "/x/torch/_dynamo/convert_frame.py"]
    assert stage_of_stack(inner_first) == "kernel builds"
    assert stage_of_stack(inner_first[1:]) == "inductor codegen"
    assert stage_of_stack(inner_first[2:]) == "AOT autograd"
    assert stage_of_stack(inner_first[3:]) == "Dynamo tracing"
    assert stage_of_stack(["/x/diffusers/unet.py", "/x/bench.py"]) == ""


def test_watcher_reports_the_stage_of_the_compiling_thread_while_counters_stand(monkeypatch):
    """The warmup thread sits in a (stand-in) inductor kernel build with every counter
    frozen: the events still move, naming the stage; old event dicts still load."""
    monkeypatch.setattr(compile_progress, "HEARTBEAT_S", 0.05)
    monkeypatch.setattr(compile_progress, "read_counts", lambda: CompileCounts(frames=1))
    lookups = iter([(1, 1)])  # at start; later (3, 5): 2 hits and 4 misses since
    monkeypatch.setattr(compile_progress, "cache_counts", lambda: next(lookups, (3, 5)))
    release, inside, events = threading.Event(), threading.Event(), []
    code = compile("def build(inside, release):\n    inside.set()\n    release.wait(5)\n",
                   "/site-packages/torch/_inductor/codecache.py", "exec")
    scope: dict = {}
    exec(code, scope)

    def warmup() -> None:
        watcher = CompileWatcher(events.append, poll_s=0.01).start()  # on this thread
        scope["build"](inside, release)
        watcher.stop()

    thread = threading.Thread(target=warmup)
    thread.start()
    inside.wait(5)
    time.sleep(0.3)
    release.set()
    thread.join(5)
    stages = [e.stage for e in events]
    assert "kernel builds" in stages
    built = [e for e in events if e.stage == "kernel builds"]
    assert (built[-1].cache_hits, built[-1].cache_misses) == (2, 4)  # since the start
    old = {"type": "CompileProgress", "frames": 1, "graphs": 0, "kernels": 2, "recompiles": 0,
           "elapsed_s": 1.0, "message": "", "t_s": 0.0}  # a stream from before the fields
    loaded = ev.event_from_dict(old)
    assert (loaded.stage, loaded.cache_hits, loaded.cache_misses) == ("", 0, 0)
    assert ev.event_from_dict(ev.to_dict(built[-1])) == built[-1]
