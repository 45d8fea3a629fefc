"""Image preview through textual-image where the terminal speaks kitty graphics or sixel, half
blocks elsewhere: the terminal is asked only before the app starts, only when it hints at
graphics (or DIFFBENCH_IMAGES asks), and any failure falls back to half blocks."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from diffbench.tui.app import DiffbenchApp
from diffbench.tui.widgets import image
from fakes import FakeEngine, MemoryHistory, wait_until


class Tty:
    def __init__(self, tty: bool = True) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.fixture
def asked(monkeypatch):
    """Replace the terminal query: returns what it answers and records each call."""
    calls: list[int] = []
    answer = {"value": "kitty"}

    def ask():
        calls.append(1)
        if isinstance(answer["value"], Exception):
            raise answer["value"]
        return answer["value"]

    monkeypatch.setattr(image, "_ask_terminal", ask)
    monkeypatch.setattr(image, "protocol", None)
    return calls, answer


def test_terminal_is_asked_only_when_it_hints_at_graphics(asked):
    calls, answer = asked
    assert image.detect_graphics({"TERM": "xterm-256color"}, Tty()) is None
    assert image.detect_graphics({"KITTY_WINDOW_ID": "1"}, Tty(False)) is None  # not a tty
    assert calls == []
    assert image.detect_graphics({"KITTY_WINDOW_ID": "1", "TERM": "xterm-kitty"}, Tty()) == \
        "kitty"
    assert image.protocol == "kitty"
    answer["value"] = "sixel"
    assert image.detect_graphics({"TERM_PROGRAM": "WezTerm"}, Tty()) == "sixel"
    assert image.detect_graphics({"TERM": "xterm", image.IMAGES_ENV: "sixel"}, Tty()) == "sixel"
    assert len(calls) == 3


def test_off_never_asks_and_a_failure_means_half_blocks(asked):
    calls, answer = asked
    assert image.detect_graphics({"TERM": "xterm-kitty", image.IMAGES_ENV: "off"}, Tty()) is None
    assert calls == []
    answer["value"] = OSError("no answer from the terminal")
    assert image.detect_graphics({"TERM": "xterm-kitty"}, Tty()) is None
    assert image.protocol is None and calls == [1]


async def _preview(tmp_path):
    from diffbench.tui.screens.preview import PreviewScreen

    engine = FakeEngine(image_dir=str(tmp_path))
    app = DiffbenchApp(engine=engine, history=MemoryHistory())
    async with app.run_test(size=(100, 30)) as pilot:
        app.query_one("#steps").value = "2"
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: not app.running and engine.calls)
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, PreviewScreen))
        await pilot.pause(0.2)
        return app.screen.query_one("#preview")


async def test_kitty_terminal_gets_the_graphics_widget(tmp_path, monkeypatch):
    from textual_image.widget import TGPImage

    monkeypatch.setattr(image, "protocol", "kitty")
    widget = await _preview(tmp_path)
    assert isinstance(widget, TGPImage)
    assert str(widget.image).endswith(".png")


async def test_other_terminals_get_half_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(image, "protocol", None)
    widget = await _preview(tmp_path)
    assert isinstance(widget, Static)
    assert isinstance(widget.content, image.HalfBlockImage)
