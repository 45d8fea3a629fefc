"""TOML export and import of run summaries.

One run is written with top-level sections, as a ticket or a repo would show it::

    format = "diffbench-runs"
    format_version = 2

    [run]          # run_id, status, started_at, image_path, error, notices
    [config]       # the RunConfig as run (nested tables for compiler_config, ...)
    [environment]  # python, torch, CUDA, GPU, ... versions
    [metrics]      # scalar figures (s, GiB, it/s); --repeat: per-call lists and min/max
    [steps]        # step_ms list (ms), first_step_ms, step_ms_p50, step_ms_p90, step_ms_max

Several runs go in one file as an array of tables: each ``[[runs]]`` entry holds the same
five sub-tables (``[runs.run]``, ``[runs.config]``, ...). :func:`read_toml` reads both shapes.

TOML has no null, so None values are omitted. On reading, a missing field of RunResult,
Metrics or a complete RunConfig table gets its None default back; any other None (in
environment, in a nested JSON option such as compiler_config, in a partial config) is listed
by dotted key in ``[run] null_keys``, so the round trip is exact. Written with tomli-w; read
with tomllib (tomli before Python 3.11). Writes are atomic (diffbench.engine.atomic).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any, Iterable

from diffbench.engine.atomic import PathLike, write_text
from diffbench.engine.errors import ConfigError
from diffbench.engine.result import Metrics, RunResult

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

FORMAT = "diffbench-runs"
#: 2: an empty negative prompt is one passed as "" (version 1's "" meant none was passed).
FORMAT_VERSION = 2

#: Metrics fields that live in the [steps] table, with their names there (the same names as
#: in the JSON output and the history).
_STEP_FIELDS = {
    "step_ms": "step_ms",
    "first_step_ms": "first_step_ms",
    "step_ms_p50": "step_ms_p50",
    "step_ms_p90": "step_ms_p90",
    "step_ms_max": "step_ms_max",
}
#: [steps] names of earlier exports -> Metrics field (still read).
_LEGACY_STEP_NAMES = {"p50_ms": "step_ms_p50", "p90_ms": "step_ms_p90", "max_ms": "step_ms_max"}
#: RunResult fields that are tables of their own; every other field goes in [run].
_TABLE_FIELDS = ("config", "environment", "metrics")


def _config_none_fields() -> frozenset[str]:
    # Settings whose default is None (the catalog): a missing key means None without
    # listing it.
    from diffbench.engine import catalog

    return frozenset(s.name for s in catalog.SETTINGS if s.default is None)


def _is_full_config(config: dict) -> bool:
    """True when ``config`` holds every RunConfig field that has a non-None default: then it
    is a RunConfig dict and its None fields can be left implicit. Partial dicts list them."""
    from diffbench.engine import catalog

    return all(s.name in config for s in catalog.SETTINGS if s.default is not None)


# ---------------------------------------------------------------------------- writing
def result_to_tables(result: RunResult) -> dict[str, Any]:
    """One RunResult as the five TOML tables ({"run": ..., "config": ..., ...}), None-free."""
    data = result.to_dict()
    metrics = dict(data.pop("metrics"))
    null_keys: list[str] = []
    run = {k: v for k, v in data.items() if k not in _TABLE_FIELDS and v is not None}
    config = data.get("config") or {}
    implicit = _config_none_fields() if _is_full_config(config) else frozenset()
    config = _strip_none(config, "config", null_keys, implicit=implicit)
    environment = _strip_none(data.get("environment") or {}, "environment", null_keys)
    steps = {name: metrics.pop(field) for field, name in _STEP_FIELDS.items()
             if metrics.get(field) is not None}
    scalars = {k: v for k, v in metrics.items() if v is not None}
    if null_keys:
        run["null_keys"] = null_keys
    return {"run": run, "config": config, "environment": environment, "metrics": scalars,
            "steps": steps}


def _strip_none(table: dict, prefix: str, null_keys: list[str],
                implicit: frozenset[str] = frozenset()) -> dict:
    """Copy ``table`` without None values; record their dotted keys unless ``implicit``."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        key = str(key)
        if value is None:
            if key not in implicit:
                null_keys.append(f"{prefix}.{key}")
        elif isinstance(value, dict):
            out[key] = _strip_none(value, f"{prefix}.{key}", null_keys)
        elif isinstance(value, (list, tuple)) and any(v is None for v in value):
            raise ConfigError(f"cannot export {prefix}.{key}: a list with null items has no "
                              f"TOML form")
        else:
            out[key] = value
    return out


def dumps(results: Iterable[RunResult]) -> str:
    """The TOML text for ``results`` (one run: top-level tables; several: [[runs]]).

    Raises:
        ConfigError: no results, or a value TOML cannot hold.
    """
    import tomli_w

    results = list(results)
    if not results:
        raise ConfigError("nothing to export: no runs given")
    doc: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION}
    tables = [result_to_tables(r) for r in results]
    if len(tables) == 1:
        doc.update(tables[0])
    else:
        doc["runs"] = tables
    try:
        text = tomli_w.dumps(doc)
    except TypeError as exc:
        raise ConfigError(f"cannot export: {exc}") from None
    # Lone surrogates (undecodable bytes in a stored prompt) cannot be written as UTF-8.
    return text.encode("utf-8", "replace").decode("utf-8")


def write_toml(results: Iterable[RunResult], path: PathLike) -> str:
    """Write ``results`` to ``path`` as TOML, atomically; return the absolute path.

    Raises:
        ConfigError: no results, a missing or unwritable folder, ``path`` is a folder — one
            line; an existing file at ``path`` is left as it was.
    """
    return write_text(path, dumps(results))


# ---------------------------------------------------------------------------- reading
def read_toml(path: PathLike) -> list[RunResult]:
    """Read runs written by :func:`write_toml` (either shape).

    Raises:
        ConfigError: unreadable file, not TOML, or not a diffbench export — one line naming
            the file and the problem.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise ConfigError(f"export file not found: {name}") from None
    except IsADirectoryError:
        raise ConfigError(f"{name} is a folder, not an export file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {name}: {exc.strerror or exc}") from None
    return loads(raw, source=name)


def loads(text: "str | bytes", source: str = "<string>") -> list[RunResult]:
    """Parse TOML text from :func:`dumps` into RunResults. Same errors as :func:`read_toml`."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{source} is not UTF-8 text") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None
    version = doc.get("format_version")
    if doc.get("format") != FORMAT:
        raise ConfigError(f"{source} is not a diffbench export (no format = \"{FORMAT}\")")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ConfigError(f"{source} has export format_version {version!r}; this diffbench "
                          f"reads up to {FORMAT_VERSION} — upgrade diffbench")
    if "runs" in doc:
        entries = doc["runs"]
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ConfigError(f"{source}: 'runs' must be an array of tables ([[runs]])")
    else:
        entries = [doc]
    results = []
    for number, entry in enumerate(entries, 1):
        where = source if len(entries) == 1 else f"{source} run {number}"
        result = tables_to_result(entry, where)
        if version < 2 and result.config.get("negative_prompt") == "":
            result.config["negative_prompt"] = None  # version 1 never passed an empty one
        results.append(result)
    return results


def tables_to_result(entry: dict[str, Any], where: str = "export") -> RunResult:
    """Inverse of :func:`result_to_tables`.

    Raises:
        ConfigError: a missing [run] table or run_id, a table of the wrong type, a bad status.
    """
    tables = {}
    for name in ("run", "config", "environment", "metrics", "steps"):
        table = entry.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{name}] must be a table")
        tables[name] = dict(table)
    run = tables["run"]
    if not isinstance(run.get("run_id"), str) or not run["run_id"]:
        raise ConfigError(f"{where}: [run] has no run_id")
    null_keys = run.pop("null_keys", [])
    if not isinstance(null_keys, list) or not all(isinstance(k, str) for k in null_keys):
        raise ConfigError(f"{where}: [run] null_keys must be a list of dotted keys")
    config = tables["config"]
    if _is_full_config(config):
        for key in _config_none_fields():
            config.setdefault(key, None)
    for dotted in null_keys:
        _set_dotted(tables, dotted, where)
    metrics = dict(tables["metrics"])
    for name, field in _LEGACY_STEP_NAMES.items():
        if name in tables["steps"]:
            metrics[field] = tables["steps"][name]
    for field, name in _STEP_FIELDS.items():
        if name in tables["steps"]:
            metrics[field] = tables["steps"][name]
    data = {k: v for k, v in run.items() if k not in _TABLE_FIELDS}
    data.update(config=config, environment=tables["environment"], metrics=metrics)
    _check_run_types(run, where)
    _check_metric_types(metrics, where)
    try:
        return RunResult.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _set_dotted(tables: dict, dotted: str, where: str) -> None:
    parts = dotted.split(".")
    if len(parts) < 2 or parts[0] not in ("config", "environment"):
        raise ConfigError(f"{where}: bad null key {dotted!r}")
    node = tables
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{where}: bad null key {dotted!r}")
    node[parts[-1]] = None


def _check_run_types(run: dict, where: str) -> None:
    for key in ("run_id", "status", "started_at", "image_path", "error", "log_tail"):
        if key in run and not isinstance(run[key], str):
            raise ConfigError(f"{where}: [run] {key} must be a string")
    notices = run.get("notices", [])
    if not isinstance(notices, list) or not all(isinstance(n, str) for n in notices):
        raise ConfigError(f"{where}: [run] notices must be a list of strings")


def _check_metric_types(metrics: dict, where: str) -> None:
    # A hand-edited file could hold strings where numbers belong; say which field.
    types = {f.name: f.type for f in dataclasses.fields(Metrics)}
    for key, value in metrics.items():
        kind = str(types.get(key, ""))
        if value is None or not kind:
            continue
        if "float" in kind and "list" not in kind:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif "int" in kind:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif "list" in kind:
            ok = isinstance(value, list) and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        else:
            ok = isinstance(value, str)
        if not ok:
            raise ConfigError(f"{where}: metric {key} has the wrong type "
                              f"({type(value).__name__})")

