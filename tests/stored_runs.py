"""Stored runs for dashboard tests: RunResults as the history holds them, made by hand so
every figure is known (no engine, no clock)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from diffbench.engine.config import RunConfig
from diffbench.engine.result import Metrics, RunResult

#: Start time of the first stored run (UTC); each later one a minute after.
T0 = datetime(2026, 1, 15, 9, 0, tzinfo=timezone.utc)


def stored_run(run_id: str, minute: int = 0, status: str = "finished",
               inference_s: Optional[float] = 0.5, it_per_s: Optional[float] = 20.0,
               p50_ms: Optional[float] = 50.0, peak_gib: Optional[float] = 1.25,
               compile_s: Optional[float] = None, **config: Any) -> RunResult:
    """A run as the history returns it. ``config``: RunConfig fields (model, compiler,
    task, steps...; the rest take their defaults, the task inferred). Step times: ten steps
    of ``p50_ms``; ``peak_gib`` is the CUDA peak allocated (GiB)."""
    cfg = RunConfig(**{"model": "tiny-sd15", "steps": 10, **config}).to_dict()
    steps = [p50_ms] * 9 if p50_ms is not None else []
    metrics = Metrics(load_s=1.5, accelerate_s=0.2, warmup_s=2.0, compile_s=compile_s,
                      inference_s=inference_s, it_per_s=it_per_s,
                      steps_run=cfg["steps"], first_step_ms=p50_ms, step_ms=steps,
                      step_ms_p50=p50_ms, step_ms_p90=p50_ms and p50_ms * 1.1,
                      peak_allocated_gib=peak_gib, peak_reserved_gib=peak_gib and peak_gib + 0.25)
    return RunResult(run_id=run_id, status=status, config=cfg, metrics=metrics,
                     started_at=(T0 + timedelta(minutes=minute)).isoformat())


def screen_text(app: Any) -> str:
    """What the app's screen shows, as plain text: the same render as
    ``app.export_screenshot`` (the SVG), exported as text instead."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False,
                      safe_box=False)
    console.print(app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens))
    return console.export_text()


def svg_text(svg: str) -> str:
    """The text of an exported SVG screenshot, its lines' spans joined (entities undone)."""
    import html
    import re

    spans = re.findall(r"<text[^>]*>(.*?)</text>", svg, flags=re.S)
    return "".join(html.unescape(s) for s in spans).replace("\xa0", " ")
