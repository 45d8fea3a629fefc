"""A run's image next to its baseline's (half-block previews), with PSNR and SSIM.

The figures are the stored ones when the run was compared with this baseline already
(Metrics.psnr_db / ssim / baseline_run_id); otherwise they are computed in a thread worker
(diffbench.engine.quality.compare_images, scikit-image) and stored with the run.
"""

from __future__ import annotations

from typing import Any, Optional

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from diffbench.engine.metrics import format_metric
from diffbench.engine.result import RunResult
from diffbench.tui.bridge import analysis
from diffbench.tui.runs import accel_of
from diffbench.tui.widgets.image import HalfBlockImage

#: PSNR at or above this means bit-identical (diffbench.engine.quality.PSNR_IDENTICAL_DB; +inf is
#: stored as 200 dB because JSON has no infinity).
PSNR_IDENTICAL_DB = 200.0


class ImageScores(Message):
    """PSNR (dB) and SSIM of the run against the baseline, or a one-line ``error``."""

    def __init__(self, psnr_db: Optional[float], ssim: Optional[float],
                 error: str = "") -> None:
        super().__init__()
        self.psnr_db, self.ssim, self.error = psnr_db, ssim, error


def scores_text(psnr_db: float, ssim: float, source: str) -> Text:
    """"PSNR 31.2 dB   SSIM 0.9731  (stored)"; identical images say so."""
    similarity = format_metric("ssim", ssim)
    if psnr_db >= PSNR_IDENTICAL_DB:
        return Text(f"bit-identical (PSNR inf, SSIM {similarity})  ({source})",
                    style="bold green")
    return Text(f"PSNR {format_metric('psnr_db', psnr_db)}   SSIM {similarity}  ({source})",
                style="bold")


class ImageCompareScreen(ModalScreen[None]):
    """``baseline`` on the left, ``run`` on the right.

    Args:
        history: when given, figures computed here are stored with ``run``.
    """

    BINDINGS = [Binding("escape,q", "close", "Close")]
    DEFAULT_CSS = """
    ImageCompareScreen #ic_box { width: 95%; height: 90%; border: thick $primary;
                                 background: $surface; padding: 0 1; }
    ImageCompareScreen #ic_scores { height: auto; margin-bottom: 1; }
    ImageCompareScreen #ic_sides { height: 1fr; }
    ImageCompareScreen .ic_side { width: 1fr; height: 1fr; }
    ImageCompareScreen .ic_label { height: auto; }
    ImageCompareScreen .ic_image { height: 1fr; }
    """

    def __init__(self, baseline: RunResult, run: RunResult, history: Any = None) -> None:
        super().__init__()
        self.baseline, self.run = baseline, run
        self.history = history
        self.psnr_db: Optional[float] = None
        self.ssim: Optional[float] = None
        self.source = ""

    def compose(self) -> ComposeResult:
        with Vertical(id="ic_box"):
            yield Static("", id="ic_scores")
            with Horizontal(id="ic_sides"):
                for side, run in (("base", self.baseline), ("run", self.run)):
                    with Vertical(classes="ic_side"):
                        yield Static(Text(f"{'baseline' if side == 'base' else 'run'} "
                                          f"{run.run_id} ({accel_of(run)})", style="bold"),
                                     classes="ic_label")
                        yield Static("", id=f"ic_{side}", classes="ic_image")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#ic_box").border_title = (
            f"Image vs baseline: {self.run.config.get('model', '')}")
        m = self.run.metrics
        if (m.psnr_db is not None and m.ssim is not None
                and m.baseline_run_id == self.baseline.run_id):
            self._set_scores(m.psnr_db, m.ssim, "stored")
        else:
            self.query_one("#ic_scores", Static).update(Text("computing PSNR / SSIM...",
                                                             style="bold cyan"))
            self._compare_worker()
        self.call_after_refresh(self._draw)

    def on_resize(self) -> None:
        self.call_after_refresh(self._draw)

    def _draw(self) -> None:
        for side, run in (("base", self.baseline), ("run", self.run)):
            widget = self.query_one(f"#ic_{side}", Static)
            rows = max(4, widget.content_size.height)
            if run.image_path:
                widget.update(HalfBlockImage(run.image_path, max_height=rows))
            else:
                widget.update(Text("no saved image", style="dim"))

    @work(thread=True, exclusive=True, group="image_compare", exit_on_error=False)
    def _compare_worker(self) -> None:
        if not self.run.image_path or not self.baseline.image_path:
            self.post_message(ImageScores(None, None, "one of the runs has no saved image"))
            return
        try:
            psnr, ssim = analysis.compare_images(self.run.image_path,
                                                 self.baseline.image_path)
        except (OSError, ValueError) as exc:
            self.post_message(ImageScores(None, None, str(exc)))
            return
        if self.history is not None:  # keep the figures with the run, like a sweep does
            m = self.run.metrics
            m.psnr_db, m.ssim, m.baseline_run_id = psnr, ssim, self.baseline.run_id
            try:
                self.history.add(self.run)
            except Exception:  # the figures still show; storing them is a bonus
                pass
        self.post_message(ImageScores(psnr, ssim))

    @on(ImageScores)
    def _on_scores(self, message: ImageScores) -> None:
        if message.error or message.psnr_db is None or message.ssim is None:
            self.query_one("#ic_scores", Static).update(
                Text(f"no PSNR/SSIM: {message.error}", style="bold red"))
            return
        self._set_scores(message.psnr_db, message.ssim, "computed")

    def _set_scores(self, psnr_db: float, ssim: float, source: str) -> None:
        self.psnr_db, self.ssim, self.source = psnr_db, ssim, source
        self.query_one("#ic_scores", Static).update(scores_text(psnr_db, ssim, source))

    def action_close(self) -> None:
        self.dismiss(None)
