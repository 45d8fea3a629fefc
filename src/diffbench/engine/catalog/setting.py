"""What one run setting declares, and the one text-to-value coercion every entry point uses.

A :class:`Setting` says everything the rest of diffbench needs to know about one RunConfig
field: its type, range or choices, default and help, its ``diffbench run`` flag (and the
argparse shape of that flag), whether a profile may hold it, its widget in the dashboard's
form, whether it is part of a baseline's identity (``affects_image``) and whether a sweep may
vary it. Pure Python: importing this costs no torch, no textual.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Optional

from diffbench.engine.errors import ConfigError

#: Words that mean "no value" for an optional number/bool given as text (grid, --set, form).
NONE_WORDS = ("none", "null", "")
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")
#: argparse.SUPPRESS ("not given"), spelled out so the dashboard need not import argparse.
NOT_GIVEN = "==SUPPRESS=="
_KIND_NAMES = {str: "str", int: "int", float: "float", bool: "bool", dict: "dict"}


@dataclass(frozen=True)
class Cli:
    """The ``diffbench run`` flag of a setting and its argparse shape.

    ``action`` ("store_true"), ``nargs``/``const`` (``--quantize`` alone) and a ``default``
    other than "not given" (:data:`NOT_GIVEN`, argparse.SUPPRESS) are passed to
    ``add_argument`` as they are; a flag with any of them is registered after the plain value flags (see :attr:`rank`).
    """

    flag: str
    metavar: Optional[str] = None
    action: Optional[str] = None
    nargs: Optional[str] = None
    const: Any = None
    default: Any = NOT_GIVEN

    @property
    def rank(self) -> int:
        """Where the flag goes in ``--help``: 0 a plain ``--flag VALUE``, 1 a switch or an
        optional value, 2 a flag with its own default (--profile)."""
        if self.default != NOT_GIVEN:
            return 2
        return 1 if (self.action or self.nargs) else 0


@dataclass(frozen=True)
class Widget:
    """How the dashboard's settings form shows a setting.

    ``kind``: "text", "integer", "number", "json", "select", "toggle", "profile" (the list of
    shipped profiles) or "size" (one WxH field for width and height). ``group``: "main" (the
    first screen) or "more" (the collapsible "More settings", mounted on first expand).
    ``order`` sorts the widgets of a group; ``beside`` puts the widget on the previous one's
    row after a short label. ``options``: (label, value) pairs of a select (default: the
    setting's choices); ``none_label`` the option meaning None (task "auto"). ``id``: the
    widget's DOM id, shared by settings edited together (width, height -> "size").
    """

    kind: str
    group: str
    order: int
    label: str
    placeholder: str = ""
    beside: bool = False
    options: tuple = ()
    none_label: Optional[str] = None
    id: Optional[str] = None


@dataclass(frozen=True)
class Setting:
    """One run setting, declared once (see the module docstring).

    ``kind`` is the value type (str, int, float, bool or dict); ``optional`` allows None.
    ``low``/``high`` bound an int (inclusive). ``choices`` is the closed set of a string
    setting (checked with ``check`` when its message is special). ``check(value)`` returns the
    one-line message of an invalid value, or None. ``keep_spaces``: text is taken as typed
    (prompts), never stripped. ``affects_image``: part of the identity of the image the eager
    pipeline makes, so a baseline must share it; False for run control and for the
    accelerator choices a baseline differs in exactly. ``auto_word``: the text "auto" means
    None (an optional number resolved at run time, e.g. ``--repeat auto``).
    """

    name: str
    kind: type
    default: Any
    help: str
    widget: Widget
    cli: Optional[Cli] = None
    optional: bool = False
    low: Optional[int] = None
    high: Optional[int] = None
    choices: tuple = ()
    check: Optional[Callable[[Any], Optional[str]]] = None
    in_profiles: bool = True
    affects_image: bool = True
    sweepable: bool = True
    keep_spaces: bool = False
    auto_word: bool = False

    @property
    def kind_name(self) -> str:
        """"int", "float", "str", "bool" or "dict"."""
        return _KIND_NAMES[self.kind]

    @property
    def widget_id(self) -> str:
        """The DOM id of the form widget that edits this setting."""
        return self.widget.id or self.name

    @property
    def profile_types(self) -> tuple[type, ...]:
        """Python types a profile (TOML) value may have: a float takes an int (TOML ``1``),
        a dict takes a JSON string (as the CLI), an ``auto_word`` setting the text "auto"."""
        extra = {float: (int,), dict: (str,)}.get(self.kind, ())
        if self.auto_word:  # repeat = "auto"
            extra += (str,)
        return (self.kind,) + extra

    def error(self, message: str) -> ConfigError:
        """A ConfigError about this setting (``.field`` = its name)."""
        return ConfigError(message, field=self.name)

    def validate(self, value: Any) -> None:
        """Check a value already of the right kind (RunConfig's per-field rules).

        Raises:
            ConfigError: with ``.field`` = this setting's name and the one-line message.
        """
        if value is None and self.optional:
            return
        if self.kind is int and self.low is not None:
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.error(f"{self.name} must be an integer, got {value!r}")
            if not self.low <= value <= self.high:
                raise self.error(f"{self.name} must be between {self.low} and {self.high}, "
                                 f"got {value}")
        if self.kind is str and self.keep_spaces and not isinstance(value, str):
            raise self.error(f"{self.name} must be a string")
        if self.choices and self.check is None and value not in self.choices:
            raise self.error(f"{self.name} must be one of {', '.join(self.choices)}, "
                             f"got {value!r}")
        if self.check is not None:
            message = self.check(value)
            if message:
                raise self.error(message)

    def from_text(self, text: str, none_words: bool = True) -> Any:
        """The value a text means (flag, ``--set``/``--grid`` value, form field).

        ints and floats parse as numbers, bools take true/false/yes/no/on/off/1/0, dicts parse
        a JSON object ("" -> {}). Text is stripped unless ``keep_spaces``. An optional setting
        takes "" as None, and (``none_words``) an optional number/bool "none"/"null" too; a
        string keeps "none" (it is a compiler and a scheduler name).

        Raises:
            ConfigError: ``.field`` = the name; "steps must be an integer, got 'x'",
                "strength must be a number, got 'x'", "steps is empty", or the JSON message.
        """
        raw = text if self.keep_spaces else text.strip()
        if self.kind is str:
            return None if (self.optional and raw == "") else raw
        if self.kind is dict:
            return parse_json_object(raw, self.name)
        if self.optional and (raw == "" or (none_words and raw.lower() in NONE_WORDS)
                              or (self.auto_word and raw.lower() == "auto")):
            return None
        if raw == "":
            raise self.error(f"{self.name} is empty")
        if self.kind is bool:
            if raw.lower() in TRUE_WORDS:
                return True
            if raw.lower() in FALSE_WORDS:
                return False
            raise self.error(f"{self.name} must be true or false, got {raw!r}")
        try:
            return self.kind(raw)
        except ValueError:
            what = "an integer" if self.kind is int else "a number"
            raise self.error(f"{self.name} must be {what}, got {raw!r}") from None

    def to_text(self, value: Any) -> str:
        """Inverse of :meth:`from_text` for a form field: None -> "", {} -> "", a dict ->
        JSON, anything else -> str."""
        if value is None:
            return ""
        if isinstance(value, dict):
            return json.dumps(value) if value else ""
        return str(value)


def parse_json_object(value: Any, name: str) -> dict:
    """Accept a dict, a JSON object string, or None/"" (-> {}).

    Raises:
        ConfigError: ``.field`` = ``name``; not JSON, or JSON that is not an object.
    """
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{name} is not valid JSON ({exc.msg} at column {exc.colno}): "
                              f"{value!r}", field=name) from None
        if not isinstance(parsed, dict):
            raise ConfigError(f"{name} must be a JSON object like '{{\"key\": 1}}', got "
                              f"{value!r}", field=name)
        return parsed
    raise ConfigError(f"{name} must be a JSON object, got {type(value).__name__}", field=name)
