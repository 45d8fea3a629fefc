"""The settings form: every RunConfig option, validated as the user types.

The form never imports the engine's heavy parts: :meth:`SettingsForm.build_config` constructs
diffbench.engine.config.RunConfig (pure Python) and lets its ConfigError message speak for itself.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.suggester import SuggestFromList
from textual.widgets import Collapsible, Input, Label, Select

from diffbench.engine.config import COMPILERS, DEFAULT_MODEL, DTYPES, DEVICES, QUANTIZE_MODES, \
    SCHEDULERS, TASKS, RunConfig
from diffbench.engine.errors import ConfigError
from diffbench.tui.widgets.lazy_select import LazySelect

#: Built-in model names offered as suggestions (any hub id or local folder may be typed).
BUILTIN_MODELS = ("tiny-sd15", "tiny-sdxl", "tiny-pix2pix", "synthetic-sd15", "synthetic-sdxl",
                  "synthetic-pix2pix")
#: Resolution presets (width x height); "native" = the model's own size.
SIZE_PRESETS = ("native", "64x64", "128x128", "256x256", "512x512", "768x768", "1024x1024",
                "832x1216", "1216x832", "custom")

_INT_FIELDS = ("steps", "warmups", "seed", "batch", "cache_interval")
_FLOAT_FIELDS = ("strength", "guidance_scale", "timeout_s")
_TEXT_FIELDS = ("model", "prompt", "negative_prompt", "input_image", "output_image", "lora",
                "variant", "compiler_config", "extra_call_kwargs", "quantize_config")
_SELECT_FIELDS = ("task", "compiler", "scheduler", "dtype", "device", "quantize")


def parse_size(text: str) -> tuple[Optional[int], Optional[int]]:
    """``"native"``/``""`` -> (None, None); ``"512"`` -> (512, 512); ``"768x512"`` -> (768, 512).

    Returns (width, height) in pixels. Raises ConfigError for anything else.
    """
    text = text.strip().lower().replace(" ", "").replace("*", "x")
    if text in ("", "native", "auto"):
        return None, None
    parts = text.split("x")
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ConfigError(f"size must be WIDTHxHEIGHT like 512x512, or native; got {text!r}")
    return int(parts[0]), int(parts[1])


def format_size(width: Optional[int], height: Optional[int]) -> str:
    """Inverse of :func:`parse_size`."""
    if width is None and height is None:
        return "native"
    return f"{width or height}x{height or width}"


class SettingsForm(VerticalScroll):
    """Form over RunConfig. Posts :class:`SettingsForm.Changed` after every edit."""

    class Changed(Message):
        """The form changed; the app re-validates."""

    class ProfileChosen(Message):
        """The user picked profile ``name`` in the profile list."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    def __init__(self, profiles: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._profiles = profiles
        self._loading = False
        self._advanced_mounted = False
        self._widgets: dict[str, Any] = {}
        self._invalid: Optional[str] = None
        self._defaults = RunConfig().to_dict()
        # every field's value as its widget holds it (strings for inputs): the source of
        # truth for fields whose widgets are not mounted yet
        self._values: dict[str, Any] = {}
        for name, value in self._defaults.items():
            if name in _TEXT_FIELDS + _INT_FIELDS + _FLOAT_FIELDS:
                value = (json.dumps(value) if value else "") if isinstance(value, dict) \
                    else ("" if value is None else str(value))
            self._values[name] = value
        self._values["task"] = "auto"

    def compose(self) -> ComposeResult:
        # The first screen's Selects are LazySelects: drawn by one line until upgrade_selects
        # (right after the first paint) or their first focus builds their drop-downs.
        d = RunConfig()
        yield from self._row("Profile", LazySelect([(p, p) for p in self._profiles],
                                                   prompt="(none)", id="profile",
                                                   compact=True))
        yield from self._row("Model", Input(DEFAULT_MODEL, id="model", compact=True,
                                            placeholder="name, hub id or folder",
                                            suggester=SuggestFromList(BUILTIN_MODELS)))
        yield from self._row("Task", LazySelect([("auto", "auto")] + [(t, t) for t in TASKS],
                                                value="auto", allow_blank=False, id="task",
                                                compact=True))
        yield from self._row("Input img", Input(id="input_image", compact=True,
                                                placeholder="for i2i/pix2pix"))
        with Horizontal(classes="row"):
            yield Label("Size", classes="label")
            yield LazySelect([(s, s) for s in SIZE_PRESETS], value="native",
                             allow_blank=False, id="size_preset", compact=True)
            yield Input("native", id="size", compact=True, placeholder="WxH")
        yield from self._row("Compiler", LazySelect([(c, c) for c in COMPILERS],
                                                    value="none", allow_blank=False,
                                                    id="compiler", compact=True))
        with Horizontal(classes="row"):
            yield Label("Steps", classes="label")
            yield Input(str(d.steps), id="steps", type="integer", compact=True)
            yield Label("Warmups", classes="label2")
            yield Input(str(d.warmups), id="warmups", type="integer", compact=True)
        with Horizontal(classes="row"):
            yield Label("Seed", classes="label")
            yield Input(str(d.seed), id="seed", type="integer", compact=True)
            yield Label("Batch", classes="label2")
            yield Input(str(d.batch), id="batch", type="integer", compact=True)
        yield from self._row("Prompt", Input(d.prompt, id="prompt", compact=True))
        # The advanced rows are mounted on first expand: fewer widgets to style at start-up.
        yield Collapsible(title="More settings", id="more", collapsed=True)

    def _advanced_rows(self) -> list[Horizontal]:
        v = self._values

        def row(label: str, *widgets: Any) -> Horizontal:
            return Horizontal(Label(label, classes="label"), *widgets, classes="row")

        def text(name: str, **kw: Any) -> Input:
            return Input(str(v.get(name, "")), id=name, compact=True, **kw)

        def select(name: str, options: list[tuple[str, str]]) -> Select:
            return Select(options, value=v[name], allow_blank=False, id=name, compact=True)

        return [
            row("Negative", text("negative_prompt")),
            row("Scheduler", select("scheduler", [("none (model's)", "none")] + [
                (s.replace("Scheduler", ""), s) for s in SCHEDULERS])),
            row("CFG scale", text("guidance_scale", type="number",
                                  placeholder="model default")),
            row("Strength", text("strength", type="number")),
            row("dtype", select("dtype", [(x, x) for x in DTYPES])),
            row("Device", select("device", [(x, x) for x in DEVICES])),
            row("Comp cfg", text("compiler_config", placeholder='JSON {"mode": ...}')),
            row("Quantize", select("quantize", [(q, q) for q in QUANTIZE_MODES])),
            row("Quant cfg", text("quantize_config", placeholder="JSON")),
            row("DeepCache", Select([("off", False), ("on", True)], value=bool(v["deepcache"]),
                                    allow_blank=False, id="deepcache", compact=True),
                Label("interval", classes="label2"),
                text("cache_interval", type="integer")),
            row("Call args", text("extra_call_kwargs", placeholder="JSON")),
            row("LoRA", text("lora", placeholder="path or hub id")),
            row("Variant", text("variant", placeholder="e.g. fp16")),
            row("Output", text("output_image", placeholder="file.png")),
            row("Timeout s", text("timeout_s", type="number", placeholder="none")),
        ]

    def upgrade_selects(self) -> None:
        """Build the drop-downs of the first screen's Selects (see compose)."""
        for select in self.query(LazySelect):
            select.upgrade()

    def on_collapsible_expanded(self, event: Collapsible.Expanded) -> None:
        event.stop()
        if not self._advanced_mounted:
            self._advanced_mounted = True
            contents = self.query_one("#more", Collapsible).query_one(Collapsible.Contents)
            contents.mount_all(self._advanced_rows())
            self._widgets.clear()

    @staticmethod
    def _row(label: str, widget: Any) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Label(label, classes="label")
            yield widget

    # ------------------------------------------------------------------ field access
    def _widget(self, name: str) -> Any:
        # cached: a DOM query per field per keystroke is what made typing sluggish
        # (misses are cached too; the cache is cleared when the advanced rows mount)
        if name in self._widgets:
            return self._widgets[name]
        found = self.query(f"#{name}")
        widget = self._widgets[name] = found.first() if found else None
        return widget

    def _get(self, name: str) -> Any:
        """The field's current value. ``_values`` is kept current by the widgets' Changed
        events, so it is right even while a just-mounted Select has no value yet."""
        if name in self._values:
            return self._values[name]
        widget = self._widget(name)
        return None if widget is None else widget.value

    def _set(self, name: str, value: Any) -> None:
        self._values[name] = value
        widget = self._widget(name)
        if widget is not None:
            try:
                widget.value = value
            except Exception:  # a Select value this build does not list: keep the current
                self._values[name] = widget.value

    # ------------------------------------------------------------------ reading
    def values(self) -> dict[str, Any]:
        """The form as RunConfig keyword arguments (strings converted; may raise ConfigError)."""
        out: dict[str, Any] = {}
        for name in _TEXT_FIELDS:
            text = str(self._get(name) or "")
            if name in ("prompt", "negative_prompt"):
                out[name] = text
            elif text.strip():
                out[name] = text.strip()
        for name in _INT_FIELDS:
            text = str(self._get(name) or "").strip()
            if not text:
                raise ConfigError(f"{name} is empty")
            try:
                out[name] = int(text)
            except ValueError:
                raise ConfigError(f"{name} must be an integer, got {text!r}") from None
        for name in _FLOAT_FIELDS:
            text = str(self._get(name) or "").strip()
            if text:
                try:
                    out[name] = float(text)
                except ValueError:
                    raise ConfigError(f"{name} must be a number, got {text!r}") from None
        for name in _SELECT_FIELDS:
            value = self._get(name)
            if value is not Select.NULL and not (name == "task" and value == "auto"):
                out[name] = value
        out["deepcache"] = bool(self._get("deepcache"))
        out["width"], out["height"] = parse_size(self._get("size"))
        profile = self._get("profile")
        if profile is not Select.NULL:
            out["profile"] = profile
        return out

    def build_config(self) -> RunConfig:
        """A validated RunConfig from the form. Raises ConfigError with a one-line message."""
        return RunConfig(**self.values())

    # ------------------------------------------------------------------ writing
    def load(self, data: dict[str, Any], profile: Optional[str] = None) -> None:
        """Fill the form from RunConfig fields (a profile, or a past run's config).

        Fields ``data`` does not name get RunConfig's defaults: a profile is a full spec.
        """
        self._loading = True
        try:
            merged = {**self._defaults, **{k: v for k, v in data.items()
                                           if k in self._defaults}}
            for name in _TEXT_FIELDS + _INT_FIELDS + _FLOAT_FIELDS:
                value = merged.get(name)
                if isinstance(value, dict):
                    value = json.dumps(value) if value else ""
                self._set(name, "" if value is None else str(value))
            for name in _SELECT_FIELDS:
                value = merged.get(name)
                self._set(name, "auto" if name == "task" and value is None else value)
            self._set("deepcache", bool(merged.get("deepcache")))
            size = format_size(merged.get("width"), merged.get("height"))
            self._set("size", size)
            self._set("size_preset", size if size in SIZE_PRESETS else "custom")
            if profile is not None:
                self._set("profile", profile)
        finally:
            self._loading = False
        self.post_message(self.Changed())

    # ------------------------------------------------------------------ events
    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.id and (event.value is not Select.NULL or event.select.id == "profile"):
            self._values[event.select.id] = event.value
        if self._loading:
            return
        if event.select.id == "size_preset" and event.value not in (Select.NULL, "custom"):
            size = self.query_one("#size", Input)
            if size.value != event.value:
                size.value = str(event.value)
        elif event.select.id == "profile" and event.value is not Select.NULL:
            self.post_message(self.ProfileChosen(str(event.value)))
            return
        self.post_message(self.Changed())

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if event.input.id:
            self._values[event.input.id] = event.value
        if event.input.id == "size":  # keep the preset list in step with free entry
            preset = self.query_one("#size_preset", Select)
            wanted = event.value.strip().lower() or "native"
            wanted = wanted if wanted in SIZE_PRESETS else "custom"
            if preset.value != wanted:
                with self.prevent(Select.Changed):
                    preset.value = wanted
        if not self._loading:
            self.post_message(self.Changed())

    def mark_invalid(self, field: Optional[str]) -> None:
        """Highlight the widget of ``field`` (a RunConfig field name), clear the others."""
        if field in ("width", "height"):
            field = "size"
        if field == self._invalid:
            return
        previous = self._widget(self._invalid) if self._invalid else None
        if previous is not None:
            previous.remove_class("invalid")
        self._invalid = field
        widget = self._widget(field) if field else None
        if widget is not None:
            widget.add_class("invalid")
