"""A RunResult as a ``runs`` row and back: the indexed columns, the JSON columns, and the
``extra`` column that keeps every other RunResult field (so a new field needs no migration)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Optional

from diffbench.engine.history_schema import HistoryError
from diffbench.engine.result import RunResult

#: The ``runs`` columns in table order.
COLUMNS = ("run_id", "started_at", "status", "model", "compiler", "task", "height", "width",
           "it_per_s", "inference_s", "warmup_s", "image_path", "error", "config",
           "environment", "metrics", "notices", "extra")
#: RunResult fields with a column of their own; every other field is kept in ``extra``.
_OWN_COLUMNS = ("run_id", "started_at", "status", "image_path", "error", "config",
                "environment", "metrics", "notices")


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def row_from_result(result: RunResult) -> tuple:
    """``result`` as the values of one ``runs`` row, in :data:`COLUMNS` order (ints and floats
    of the wrong type stored as NULL)."""
    data = result.to_dict()
    cfg = data.get("config") or {}
    metrics = data.get("metrics") or {}

    def as_int(value: Any) -> Optional[int]:
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def as_float(value: Any) -> Optional[float]:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return float(value) if ok else None

    return (result.run_id, result.started_at, result.status, cfg.get("model"),
            cfg.get("compiler"), cfg.get("task"), as_int(cfg.get("height")),
            as_int(cfg.get("width")), as_float(metrics.get("it_per_s")),
            as_float(metrics.get("inference_s")), as_float(metrics.get("warmup_s")),
            result.image_path, result.error, _json(cfg), _json(data.get("environment") or {}),
            _json(metrics), _json(list(result.notices or [])),
            _json({k: v for k, v in data.items() if k not in _OWN_COLUMNS}))


def result_from_row(row: sqlite3.Row) -> RunResult:
    """The RunResult stored in ``row``.

    Raises:
        HistoryError: the row's JSON is damaged (the message says how to delete the run).
    """
    try:
        extra = _loads(row["extra"] or "{}")
        return RunResult.from_dict({
            **(extra if isinstance(extra, dict) else {}),
            "run_id": row["run_id"], "status": row["status"], "started_at": row["started_at"],
            "image_path": row["image_path"], "error": _text(row["error"]),
            "config": _loads(row["config"]), "environment": _loads(row["environment"]),
            "metrics": _loads(row["metrics"]), "notices": _loads(row["notices"]),
        })
    except (ValueError, TypeError) as exc:
        raise HistoryError(f"run {row['run_id']} in the history is damaged ({exc}); remove it "
                           f"with: diffbench history --delete {row['run_id']}") from None


def _loads(text: str) -> Any:
    """json.loads, with lone surrogates (undecodable bytes an older diffbench stored, e.g. a
    ``--prompt $'\\xff'``) replaced by "?" so printing and exporting the run cannot fail."""
    value = json.loads(text)
    return _clean(value) if "\\ud" in text.lower() else value


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {_text(k) if isinstance(k, str) else k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode("utf-8")
