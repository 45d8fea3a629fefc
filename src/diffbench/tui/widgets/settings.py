"""The settings form: every run setting of the catalog, validated as the user types.

Each setting's widget (kind, label, group, order) is declared in diffbench.engine.catalog; this
module only turns those declarations into Textual widgets, so a setting added to the catalog
appears here with no further step. The form never imports the engine's heavy parts:
:meth:`SettingsForm.build_config` constructs diffbench.engine.config.RunConfig (pure Python)
and lets its ConfigError (which names the setting in ``.field``) speak for itself.
"""

from __future__ import annotations

from typing import Any, Optional

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.suggester import SuggestFromList
from textual.widgets import Collapsible, Input, Label, Select, Static

from diffbench.engine import catalog
from diffbench.engine.config import BUILTIN_MODELS, RunConfig
from diffbench.engine.errors import ConfigError
from diffbench.tui.widgets.lazy_select import LazySelect
from diffbench.tui.widgets.size_field import SIZE_PRESETS, format_size, parse_size

#: Input kinds whose widget holds text (parsed through the catalog's coercion). Number
#: fields take any text (no Input ``type``): a restricted Input drops "abc" without a word,
#: the catalog's coercion names the problem instead.
_TEXT_KINDS = ("text", "integer", "number", "json")


def _widget_settings() -> list[catalog.Setting]:
    """One setting per form widget (width and height share "size"), in display order."""
    seen: set[str] = set()
    out = []
    for group in ("main", "more"):
        for setting in catalog.form_settings(group):
            if setting.widget_id not in seen:
                seen.add(setting.widget_id)
                out.append(setting)
    return out


def _options(setting: catalog.Setting, current: Any = None,
             base: tuple = ()) -> list[tuple[str, Any]]:
    """A select's (label, value) pairs (``base`` first: the shipped profiles); a valid value
    the list lacks (device cuda:1, a profile read from a file) is added so loading it never
    drops it."""
    widget = setting.widget
    options = list(base) + (list(widget.options) or [(str(c), c) for c in setting.choices])
    if widget.none_label:
        options.insert(0, (widget.none_label, widget.none_label))
    if current is not None and current is not Select.NULL and \
            current not in [value for _, value in options]:
        options.append((str(current), current))
    return options


def _without_stale_image(values: dict[str, Any]) -> dict[str, Any]:
    """A text-to-image pick takes no input image: one left in the field from an earlier
    img2img run must not ride along (it would be recorded with the run). Kept with a
    ControlNet, whose conditioning image defaults to the input image's edges."""
    if values.get("task") == "t2i" and not values.get("controlnet"):
        values.pop("input_image", None)
    return values


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
        self._invalid: frozenset[str] = frozenset()  # widget ids marked invalid
        # the declared defaults (task None = inferred, as a profile without one is built)
        self._defaults = catalog.defaults()
        #: widget id -> the setting it edits (width's "size" stands for the pair)
        self._settings = {s.widget_id: s for s in _widget_settings()}
        # every widget's value as the widget holds it (text for inputs): the source of
        # truth for widgets that are not mounted yet
        self._values: dict[str, Any] = {}
        self._fill_values(self._defaults)

    def _fill_values(self, config: dict[str, Any]) -> None:
        """``_values`` from RunConfig fields (every field present)."""
        for wid, setting in self._settings.items():
            kind = setting.widget.kind
            value = config.get(setting.name)
            if kind == "size":
                value = format_size(config.get("width"), config.get("height"))
                self._values["size_preset"] = value if value in SIZE_PRESETS else "custom"
            elif kind in _TEXT_KINDS:
                value = setting.to_text(value)
            elif kind == "toggle":
                value = bool(value)
            elif value is None:
                value = setting.widget.none_label or Select.NULL
            self._values[wid] = value

    # ------------------------------------------------------------------ building
    def compose(self) -> ComposeResult:
        # The first screen's Selects are LazySelects: drawn by one line until upgrade_selects
        # (right after the first paint) or their first focus builds their drop-downs.
        for row in self._rows("main"):
            yield row
            if row.has_class("task-row"):
                # which task "auto" resolves to (show_task): the input image decides
                yield Static("", id="task_note")
        # The advanced rows are mounted on first expand: fewer widgets to style at start-up.
        yield Collapsible(title="More settings", id="more", collapsed=True)

    def _rows(self, group: str) -> list[Horizontal]:
        """The rows of a group: one per widget, a ``beside`` widget joining the row before."""
        rows: list[list[Any]] = []
        for setting in catalog.form_settings(group):
            if self._settings.get(setting.widget_id) is not setting:
                continue  # the second setting of a shared widget (height after width)
            spec = setting.widget
            if spec.beside and rows:
                rows[-1] += [Label(spec.label, classes="label2"), self._make(setting, group)]
            else:
                rows.append([Label(spec.label, classes="label"), *self._make_all(setting,
                                                                                   group)])
        return [Horizontal(*widgets, classes="row task-row" if any(
            getattr(w, "id", None) == "task" for w in widgets) else "row") for widgets in rows]

    def _make_all(self, setting: catalog.Setting, group: str) -> list[Any]:
        if setting.widget.kind != "size":
            return [self._make(setting, group)]
        return [LazySelect([(p, p) for p in SIZE_PRESETS], value=self._values["size_preset"],
                           allow_blank=False, id="size_preset", compact=True),
                Input(self._values["size"], id="size", compact=True, placeholder="WxH")]

    def _make(self, setting: catalog.Setting, group: str) -> Any:
        """The Textual widget of one setting, holding its current value."""
        spec, wid = setting.widget, setting.widget_id
        value = self._values[wid]
        if spec.kind in _TEXT_KINDS:
            extra: dict[str, Any] = {}
            if spec.placeholder:
                extra["placeholder"] = spec.placeholder
            if setting.name == "model":
                extra["suggester"] = SuggestFromList(BUILTIN_MODELS)
            return Input(value, id=wid, compact=True, **extra)
        select = LazySelect if group == "main" else Select
        options = _options(setting, value, self._profile_options(setting))
        if spec.kind == "profile":
            kwargs: dict[str, Any] = {"value": value} if value is not Select.NULL else {}
            return select(options, prompt=spec.placeholder, id=wid, compact=True, **kwargs)
        return select(options, value=value, allow_blank=False, id=wid, compact=True)

    def _profile_options(self, setting: catalog.Setting) -> tuple:
        is_profile = setting.widget.kind == "profile"
        return tuple((p, p) for p in self._profiles) if is_profile else ()

    def upgrade_selects(self) -> None:
        """Build the drop-downs of the first screen's Selects (see compose)."""
        for select in self.query(LazySelect):
            select.upgrade()

    def on_collapsible_expanded(self, event: Collapsible.Expanded) -> None:
        event.stop()
        if not self._advanced_mounted:
            self._advanced_mounted = True
            contents = self.query_one("#more", Collapsible).query_one(Collapsible.Contents)
            contents.mount_all(self._rows("more"))
            self._widgets.clear()

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
        if widget is None or widget.value == value:
            return
        if isinstance(widget, Select) and value is not Select.NULL and name in self._settings \
                and value not in [v for _, v in widget._options]:
            setting = self._settings[name]  # a valid value the list lacks (cuda:1)
            widget.set_options(_options(setting, value, self._profile_options(setting)))
        if name == "profile":
            with self.prevent(Select.Changed):  # only a user's pick loads a profile
                widget.value = value
        else:
            widget.value = value

    # ------------------------------------------------------------------ reading
    def values(self) -> dict[str, Any]:
        """The form as RunConfig keyword arguments, converted by the catalog's coercion.

        An empty text field leaves its setting at RunConfig's default (prompts take the text
        as typed; an empty integer is an error); the task select's "auto" leaves the task to
        be inferred; the profile select's blank means no profile.

        Raises:
            ConfigError: a field that does not parse, with ``.field`` = its setting.
        """
        out: dict[str, Any] = {}
        for wid, setting in self._settings.items():
            out.update(self._field_values(wid, setting))
        return _without_stale_image(out)

    def _field_values(self, wid: str, setting: catalog.Setting) -> dict[str, Any]:
        """The RunConfig keyword arguments one widget gives (none, one, or width and
        height). Raises ConfigError (``.field`` set) when its text does not parse."""
        kind, value = setting.widget.kind, self._get(wid)
        if kind == "size":
            width, height = parse_size(str(value or ""))
            return {"width": width, "height": height}
        if kind in _TEXT_KINDS:
            text = str(value or "")
            if setting.keep_spaces:  # an empty optional text (negative prompt): none passed
                return {setting.name: text} if text or not setting.optional else {}
            if text.strip() or (kind == "integer" and not setting.optional):
                return {setting.name: catalog.coerce(setting.name, text)}
            return {}
        if kind == "toggle":
            return {setting.name: bool(value)}
        if value is not Select.NULL and value != setting.widget.none_label:
            return {setting.name: value}
        return {}

    def problems(self) -> tuple[Optional[RunConfig], list[ConfigError]]:
        """Every problem of the form at once: each field that does not parse or is out of
        range (one ConfigError each, ``.field`` set); when they all pass, the RunConfig, or
        the one cross-field problem it raises (an img2img task without an input image...).

        Returns:
            (the RunConfig or None, the problems in form order; empty when it builds).
        """
        out: dict[str, Any] = {}
        found: list[ConfigError] = []
        for wid, setting in self._settings.items():
            try:
                out.update(self._field_values(wid, setting))
            except ConfigError as exc:
                found.append(exc)
        for name, value in out.items():
            try:
                catalog.BY_NAME[name].validate(value)
            except ConfigError as exc:
                found.append(exc)
        if found:
            return None, found
        try:
            return RunConfig(**_without_stale_image(out)), []
        except ConfigError as exc:
            return None, [exc]

    def build_config(self) -> RunConfig:
        """A validated RunConfig from the form. Raises ConfigError with a one-line message
        and ``.field`` naming the setting."""
        return RunConfig(**self.values())

    # ------------------------------------------------------------------ writing
    def load(self, data: dict[str, Any], profile: Optional[str] = None) -> None:
        """Fill the form from RunConfig fields (a profile, or a past run's config).

        Fields ``data`` does not name get RunConfig's defaults: a profile is a full spec.
        ``profile``: the profile the settings come from (else ``data``'s own "profile").
        """
        self._loading = True
        try:
            merged = {**self._defaults, **{k: v for k, v in data.items()
                                           if k in self._defaults}}
            if profile is not None:
                merged["profile"] = profile
            before = dict(self._values)
            self._fill_values(merged)
            wanted, self._values = self._values, before
            for wid in ["size_preset", *self._settings]:
                self._set(wid, wanted[wid])
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
        elif event.select.id == "task" and event.value == "t2i" and self._get("input_image"):
            # a text-to-image pick drops the input image a past img2img run left here
            self._set("input_image", "")
        self.post_message(self.Changed())

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if event.input.id == "model" and not self._loading:
            self._follow_model_steps(self._values.get("model"), event.value)
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

    def _follow_model_steps(self, before: Any, after: str) -> None:
        """Steps follow the model card (FLUX.1-dev 28, schnell 4, SD3.5 medium 40) while the
        field still holds the previous model's steps: a value the user typed stays."""
        from diffbench.engine.profiles import model_steps  # reads configs; imports no torch

        default = self._defaults.get("steps")
        old = model_steps(str(before)) if before else None
        new = model_steps(after.strip()) if after.strip() else None
        widget = self._widget("steps")  # the widget's own value: its Changed may be queued
        current = widget.value if widget is not None else self._get("steps")
        if str(current).strip() == str(old or default) and (new or default) != (old or default):
            self._set("steps", str(new or default))

    def show_task(self, task: Optional[str]) -> None:
        """Under the task select, the task the run will have when it says "auto"
        (``task``: RunConfig's resolved task, None while the form is invalid): an input
        image turns "auto" into img2img, which the select alone would hide."""
        note = self._widget("task_note")
        if note is None:
            return
        auto = self._get("task") in (self._settings["task"].widget.none_label, Select.NULL)
        text = ""
        if auto and task:
            why = " (the input image makes it image-to-image)" if task == "i2i" else \
                " (an edit of the input image)" if task == "pix2pix" else ""
            text = f"auto runs {task}{why}"
        note.update(text)
        note.set_class(task not in (None, "t2i"), "warn")
        note.display = bool(text)

    def mark_invalid(self, field: Any) -> None:
        """Highlight the widgets of ``field``: a setting name (as ConfigError.field gives
        it) or a widget id such as "size", an iterable of them, or None; clear the others."""
        fields = [] if field is None else [field] if isinstance(field, str) else list(field)
        wanted = frozenset(catalog.BY_NAME[f].widget_id if f in catalog.BY_NAME else f
                           for f in fields if f)
        if wanted == self._invalid:
            return
        for name in self._invalid - wanted:
            widget = self._widget(name)
            if widget is not None:
                widget.remove_class("invalid")
        for name in wanted - self._invalid:
            widget = self._widget(name)
            if widget is not None:
                widget.add_class("invalid")
        self._invalid = wanted
