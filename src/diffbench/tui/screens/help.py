"""Help: keys and what each figure means."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Markdown

HELP = """\
# diffbench dashboard

Pick a **profile** or type a **model** (tiny-sd15, tiny-sdxl, tiny-pix2pix, synthetic-*,
a cached hub id or a local diffusers folder), the task, a size and a compiler, then run.
Invalid settings are named under the form and Run stays disabled until they are fixed.

| key | action |
|---|---|
| ctrl+r | run the settings in the form |
| ctrl+g | cancel the run (stops at the next denoising step or warmup) |
| ctrl+e | export the marked runs (or the selected one) to TOML |
| ctrl+t | compare the two marked runs, A = the one marked first (or the selected run with its eager baseline as A) |
| ctrl+o | show the selected run's image in the terminal |
| ctrl+l | load the selected run's settings into the form (re-run) |
| ctrl+n | sweep: a grid over the form's settings, live matrix of it/s ratios |
| ctrl+y | throughput fit: base and per-step cost of the form's settings |
| ctrl+k | the selected run's image beside its baseline's, PSNR/SSIM |
| f2 | model picker: built-in models, pipelines in the local Hugging Face cache, known ones to download |
| ctrl+f or / | filter the history |
| space | mark a run in the history (A, B) |
| s | sort the history (again: reverse) |
| d | delete the marked or selected runs |
| e / c / r | in the history: export, compare, re-run settings |
| l / p / g | show the Log, Charts (plots) or GPU tab (when no text field has the focus) |
| ctrl+p | command palette: every action, save/load profile, export all |
| tab | next field |
| ctrl+q | quit; during a run it asks, cancels the run and keeps it in the history |

## What the figures mean
- **load**: building or loading the pipeline and moving it to the device.
- **warmup**: wall time of the warmup calls, compilation included (as OneDiff counts it).
- **compile**: the part of warmup the compiler reports as its own.
- **inference**: median wall time over the measured pipeline calls (`--repeat`; by
  default 3 on CUDA, 1 on CPU), device synchronised at the end of each.
- **it/s**: denoising steps 2..N over the time since step 1 ended (OneDiff's definition).
- **step p50/p90**: median and 90th percentile of the per-step times (ms).
- **peak alloc/resv**: CUDA max allocated/reserved during the measured call (GiB);
  on CPU the process peak RSS.
- **vs eager**: speed-up in inference time (eager's seconds / this run's) over the
  newest eager run with the same settings; `diffbench compare` prints an it/s ratio.
- **GPU line** (live panel): the run's latest telemetry sample; `host-bound?` when the GPU
  idles while the run's process keeps a CPU core busy.
- **live step row**: "last step" is the newest step's time, "p50 so far" the median of this
  call's steps after step 1, it/s over those steps; the stored p50 comes from the
  measured call alone.

## Tabs below the result panels
- **History**: the runs; the **vs eager** column is each run's speed-up in inference time
  (eager's seconds / this run's) over its eager baseline (found by the rule `diffbench
  compare` uses), as is the Speed panel's figure.
- **Log**: the run's log lines.
- **Charts**: the step time of the run in progress or the selected run (warmup calls and
  the measured call in their own colours); it/s by accelerator over the marked runs, or the
  runs the filter shows, the eager baseline marked `*`.
- **GPU**: the run's telemetry over time (GPU utilisation, memory used, power, SM clock,
  temperature, host CPU load), sampled by the run's process about once a second
  (`DIFFBENCH_TELEMETRY` sets the period in seconds, `0` turns it off).
"""


class HelpScreen(ModalScreen[None]):
    """Scrollable help; escape, q or F1 closes it. The text has the focus from the start,
    so up/down/page keys scroll it at once (no Tab first)."""

    BINDINGS = [Binding("escape,q,f1,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog wide", id="help"):
            yield Markdown(HELP)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#help", VerticalScroll).focus()

    def action_close(self) -> None:
        self.dismiss(None)
