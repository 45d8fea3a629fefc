"""Grid values of a sweep: coercion of text values to RunConfig field types, ``--grid``
flags, the TOML sweep file, and the cell key (``"compiler=compile,height=256"``)."""

from __future__ import annotations

import json
from typing import Any, Sequence

from diffbench.engine import catalog
from diffbench.engine.errors import ConfigError

#: Pseudo-field setting height and width at once.
SIZE_KEY = "size"
#: RunConfig fields a sweep may vary (the catalog's sweepable settings); the others
#: control the run, not the pipeline.
SWEEPABLE = frozenset(catalog.sweepable_keys())


# ------------------------------------------------------------------ grid parsing
def coerce_value(name: str, text: Any) -> Any:
    """Convert one grid (or ``--set``) value given as text to the type of RunConfig field
    ``name``, through the catalog's one coercion (diffbench.engine.catalog.coerce).

    ints/floats parse as numbers, bools accept true/false/yes/no/1/0, dict fields parse JSON,
    Optional fields take "none"/"null" as None (string fields keep "none": it is a compiler
    name). Non-string values (from a TOML sweep file) pass through unchanged.

    Raises:
        ConfigError: unknown field, or a value that does not parse, in one line
            (``.field`` = ``name`` for a setting).
    """
    if name == SIZE_KEY:
        return parse_size(text)
    if name not in catalog.BY_NAME:
        raise ConfigError(f"cannot sweep {name!r}: not a run setting (see `diffbench run "
                          f"--help`; 'size' sets height and width together)")
    if name not in SWEEPABLE:
        raise ConfigError(f"cannot sweep {name!r}: it controls the run, not the pipeline",
                          field=name)
    try:
        return catalog.coerce(name, text)
    except ConfigError:
        setting = catalog.BY_NAME[name]
        raise ConfigError(f"grid value {text.strip()!r} for {name} is not a valid "
                          f"{setting.kind_name}", field=name) from None


def parse_size(value: Any) -> str:
    """Normalise a size value to "WxH" text (512 -> "512x512")."""
    text = str(value).strip().lower()
    parts = text.split("x")
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ConfigError(f"size must be N or WIDTHxHEIGHT in pixels, got {value!r}")
    return f"{int(parts[0])}x{int(parts[1])}"


def parse_grid(specs: Sequence[str]) -> dict[str, list]:
    """Parse ``--grid`` flags (``"compiler=none,compile"``, ``"height=256,512"``) to a grid.

    A field given twice has its values appended. Values keep their order; a repeated value
    counts once.

    Raises:
        ConfigError: a spec without ``=``, an empty value list, or a bad value.
    """
    grid: dict[str, list] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise ConfigError(f"--grid wants FIELD=V1,V2,..., got {spec!r}")
        items = [v for v in values.split(",") if v.strip() != ""] if values.strip() else []
        if not items:
            raise ConfigError(f"--grid {name}= has no values")
        for item in items:
            value = coerce_value(name, item)
            bucket = grid.setdefault(name, [])
            if value not in bucket:
                bucket.append(value)
    return grid


def normalise_grid(grid: dict[str, Any]) -> dict[str, list]:
    """Check a grid from a sweep file: every key a sweepable field, values a non-empty list."""
    result: dict[str, list] = {}
    for name, values in grid.items():
        key = name.replace("-", "_")
        if not isinstance(values, list):
            values = [values]
        if not values:
            raise ConfigError(f"grid {key} has no values")
        result[key] = []
        for value in values:
            value = coerce_value(key, value)
            if value not in result[key]:
                result[key].append(value)
    return result


def load_sweep_file(path: str) -> tuple[dict, dict[str, list], dict]:
    """Read a TOML sweep file: ``[base]`` (RunConfig fields), ``[grid]`` (field = [values])
    and optionally ``[sweep]`` (``id``, ``rows``, ``cols``, ``baseline`` like the flags).

    Example::

        [base]
        model = "tiny-sd15"
        steps = 4
        [grid]
        compiler = ["none", "compile"]
        size = [256, 512]
        [sweep]
        rows = ["compiler"]
        cols = ["size"]

    Returns:
        (base fields, grid, sweep options).

    Raises:
        ConfigError: unreadable file, TOML syntax error, unknown table/field, empty grid.
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read sweep file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"sweep file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"base", "grid", "sweep"})
    if unknown:
        raise ConfigError(f"sweep file {path}: unknown table(s) {', '.join(unknown)}; "
                          f"use [base], [grid] and [sweep]")
    grid = normalise_grid(data.get("grid") or {})
    if not grid:
        raise ConfigError(f"sweep file {path} has an empty [grid]")
    options = dict(data.get("sweep") or {})
    extra = sorted(set(options) - {"id", "rows", "cols", "baseline"})
    if extra:
        raise ConfigError(f"sweep file {path}: unknown [sweep] key(s) {', '.join(extra)}")
    return dict(data.get("base") or {}), grid, options


def format_value(value: Any) -> str:
    """A grid value as it appears in a cell key and in tables."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def cell_key(cell: dict) -> str:
    """The cell's identity in its sweep: ``"compiler=compile,height=256"`` (grid order)."""
    return ",".join(f"{k}={format_value(v)}" for k, v in cell.items())
