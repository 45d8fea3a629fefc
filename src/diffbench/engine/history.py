"""Durable run history: a SQLite database (stdlib sqlite3, WAL) shared by the CLI and dashboard.

Where: ``$DIFFBENCH_HOME/history.sqlite`` when DIFFBENCH_HOME is set, else the platformdirs
user data dir (``~/.local/share/diffbench/history.sqlite`` on Linux).

Schema: ``PRAGMA user_version`` holds the schema version (:data:`SCHEMA_VERSION`). One ``runs``
row per run, with indexed columns for the common filters and sort (run_id, started_at, status,
model, compiler, task, height, width, it_per_s, inference_s, warmup_s) and the full config,
environment, metrics and notices as JSON text, so a new Metrics field needs no migration;
other RunResult fields (log_tail, and any added later) go to the ``extra`` JSON column.

Concurrency: every call opens its own short-lived connection (thread- and process-safe), the
database is in WAL mode (readers never block the writer) and waits up to
:data:`BUSY_TIMEOUT_S` for a lock. Each write is one transaction: a crash or kill -9 leaves the
database as before or after the write, never torn (SQLite's journal guarantees it).

A corrupt database, or one written by a newer diffbench, raises :class:`HistoryError` with a
way out: :meth:`History.reset` (``diffbench history --reset``) moves the file aside to
``<file>.bak-<UTC timestamp>``; a backup is never overwritten.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Optional, Union

from diffbench.engine.errors import DiffbenchError
from diffbench.engine.result import RunResult

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 10.0
DB_NAME = "history.sqlite"

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    started_at  TEXT NOT NULL,
    status      TEXT NOT NULL,
    model       TEXT,
    compiler    TEXT,
    task        TEXT,
    height      INTEGER,
    width       INTEGER,
    it_per_s    REAL,
    inference_s REAL,
    warmup_s    REAL,
    image_path  TEXT,
    error       TEXT,
    config      TEXT NOT NULL,
    environment TEXT NOT NULL,
    metrics     TEXT NOT NULL,
    notices     TEXT NOT NULL,
    extra       TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS runs_started_at ON runs (started_at);
CREATE INDEX IF NOT EXISTS runs_model ON runs (model, compiler);
CREATE INDEX IF NOT EXISTS runs_compiler ON runs (compiler);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
"""
#: Schema steps: _MIGRATIONS[v] takes a database from version v to v + 1.
_MIGRATIONS = {0: _SCHEMA_V1}

_COLUMNS = ("run_id", "started_at", "status", "model", "compiler", "task", "height", "width",
            "it_per_s", "inference_s", "warmup_s", "image_path", "error", "config",
            "environment", "metrics", "notices", "extra")
#: RunResult fields with a column of their own; every other field is kept in ``extra``.
_OWN_COLUMNS = ("run_id", "started_at", "status", "image_path", "error", "config",
                "environment", "metrics", "notices")


class HistoryError(DiffbenchError):
    """The history database cannot be used; the one-line message says why and what to do."""

    exit_code = 1


class RunNotFoundError(HistoryError):
    """No run (or more than one run) matches the given id or id prefix."""

    exit_code = 2


def default_path() -> Path:
    """The history database path: $DIFFBENCH_HOME/history.sqlite or the user data dir's."""
    home = os.environ.get("DIFFBENCH_HOME")
    if home:
        return Path(home).expanduser() / DB_NAME
    import platformdirs

    return Path(platformdirs.user_data_dir("diffbench", appauthor=False)) / DB_NAME


class History:
    """The run store. Cheap to construct: the file is opened (and created) on first use.

    Args:
        path: database file; None = :func:`default_path`.

    Every method may raise :class:`HistoryError` (corrupt, newer schema, unwritable, busy for
    longer than BUSY_TIMEOUT_S) with a one-line message.
    """

    def __init__(self, path: Union[str, os.PathLike, None] = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self._ready = False

    # ------------------------------------------------------------------ public API
    def add(self, result: RunResult) -> str:
        """Insert ``result``, or replace the stored run with the same run_id. Returns run_id."""
        self.add_many([result])
        return result.run_id

    def add_many(self, results: Iterable[RunResult]) -> int:
        """:meth:`add` for many runs in one transaction (all or none). Returns the count."""
        rows = [_row_from_result(r) for r in results]
        placeholders = ", ".join("?" for _ in _COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
        sql = (f"INSERT INTO runs ({', '.join(_COLUMNS)}) VALUES ({placeholders}) "
               f"ON CONFLICT(run_id) DO UPDATE SET {updates}")
        with self._connect(write=True) as conn:
            conn.executemany(sql, rows)
        return len(rows)

    def get(self, run_id: str) -> RunResult:
        """The run whose id is ``run_id`` or starts with it (a unique prefix).

        Raises:
            RunNotFoundError: no match, or the prefix matches several runs (names them).
        """
        return _result_from_row(self._match(run_id))

    def list(self, model: Optional[str] = None, compiler: Optional[str] = None,
             status: Optional[str] = None, limit: Optional[int] = None,
             task: Optional[str] = None, sweep_id: Optional[str] = None) -> list[RunResult]:
        """Runs matching every given filter, newest first; ``limit`` caps the count.

        ``sweep_id`` matches the config key of that name (set by `diffbench sweep`).
        """
        where, params = [], []
        for column, value in (("model", model), ("compiler", compiler), ("status", status),
                              ("task", task)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if sweep_id is not None:
            where.append("json_extract(config, '$.sweep_id') = ?")
            params.append(sweep_id)
        sql = "SELECT * FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(0, int(limit)))
        with self._connect() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [_result_from_row(r) for r in rows]

    def count(self) -> int:
        """Number of stored runs."""
        with self._connect() as conn:
            return conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def delete(self, run_id: str) -> str:
        """Delete the run with this id (or unique prefix); return the full id deleted.

        Raises:
            RunNotFoundError: no match, or an ambiguous prefix (nothing is deleted).
        """
        full_id = self._match(run_id)["run_id"]
        with self._connect(write=True) as conn:
            conn.execute("DELETE FROM runs WHERE run_id = ?", (full_id,))
        return full_id

    def find_baseline(self, result: RunResult, image: bool = False) -> Optional[RunResult]:
        """The newest run that ``result`` should be compared with, or None.

        The rule is diffbench.engine.baseline's (finished, eager, equal
        diffbench.engine.quality.baseline_key — model, steps, prompts, seed, size, guidance,
        LoRA, ControlNet, ... —, not ``result`` itself; runs on the same GPU model preferred);
        SQL only narrows the candidates to finished runs of the model with compiler none.

        Args:
            image: only runs whose image file exists (for PSNR/SSIM).
        """
        from diffbench.engine.baseline import pick

        cfg = result.config or {}
        if not cfg.get("model"):
            return None
        sql = ("SELECT * FROM runs WHERE model = ? AND compiler = 'none' AND status = 'finished'"
               " AND run_id != ? ORDER BY started_at DESC, rowid DESC")
        with self._connect() as conn:
            rows = conn.execute(sql, (cfg["model"], result.run_id)).fetchall()
        return pick(result, (_result_from_row(row) for row in rows), image=image)

    def check(self) -> int:
        """Open the database (creating or upgrading it); return the number of runs.

        Raises:
            HistoryError: corrupt, newer schema, unwritable folder.
        """
        return self.count()

    def reset(self) -> Optional[Path]:
        """Move the database (and its -wal/-shm files) aside; return the backup path.

        The backup is ``<file>.bak-<UTC timestamp>`` (a counter is added if that exists: a
        backup is never overwritten). Returns None when there was no database. The next use
        starts an empty history.
        """
        if not self.path.exists():
            return None
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        for n in range(1000):
            backup = Path(f"{self.path}.bak-{stamp}" + (f"-{n}" if n else ""))
            if any(Path(str(backup) + s).exists() for s in ("", "-wal", "-shm")):
                continue
            try:
                # link() fails if the name exists: no race can make us overwrite a backup.
                os.link(self.path, backup)
            except FileExistsError:
                continue
            except OSError as exc:
                raise HistoryError(f"cannot move {self.path} aside: {exc.strerror}") from None
            os.unlink(self.path)
            for suffix in ("-wal", "-shm"):
                side = Path(str(self.path) + suffix)
                if side.exists():
                    os.replace(side, Path(str(backup) + suffix))
            self._ready = False
            return backup
        raise HistoryError(f"cannot move {self.path} aside: too many backups")

    # ------------------------------------------------------------------ internals
    def _match(self, run_id: str) -> sqlite3.Row:
        if not isinstance(run_id, str) or not run_id.strip():
            raise RunNotFoundError("run id must be a non-empty string")
        run_id = run_id.strip()
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is not None:
                return row
            rows = conn.execute(
                "SELECT * FROM runs WHERE substr(run_id, 1, ?) = ? ORDER BY started_at DESC"
                " LIMIT 6", (len(run_id), run_id)).fetchall()
        if not rows:
            raise RunNotFoundError(f"no run {run_id!r} in the history at {self.path} "
                                   f"(list them with: diffbench history)")
        if len(rows) > 1:
            names = ", ".join(r["run_id"] for r in rows[:5])
            raise RunNotFoundError(f"run id {run_id!r} is ambiguous: it matches {names}"
                                   f"{' ...' if len(rows) > 5 else ''}; give more characters")
        return rows[0]

    def _connect(self, write: bool = False) -> "_Connection":
        return _Connection(self, write)

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HistoryError(f"cannot create the history folder {self.path.parent}: "
                               f"{exc.strerror or exc} (set DIFFBENCH_HOME to another folder)"
                               ) from None
        if self.path.is_dir():
            raise HistoryError(f"history database {self.path} is a folder; move it aside or "
                               f"set DIFFBENCH_HOME to another folder")
        try:
            conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S,
                                   isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        conn.row_factory = sqlite3.Row
        try:
            if not self._ready:
                self._prepare(conn)
                self._ready = True
        except BaseException:
            conn.close()
            raise
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Set WAL mode and bring the schema to SCHEMA_VERSION (one transaction)."""
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            self._refuse_newer(version)
            if version == SCHEMA_VERSION:
                return
            # Answers "wal", or "delete" where WAL is unsupported (still correct, slower).
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                self._refuse_newer(version)
                if version == 0:
                    tables = {r[0] for r in conn.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table'")}
                    if tables - {"runs"}:
                        raise HistoryError(
                            f"{self.path} is an SQLite database but not a diffbench history; "
                            f"set DIFFBENCH_HOME to another folder, or move it aside with: "
                            f"diffbench history --reset")
                while version < SCHEMA_VERSION:
                    # execute() per statement: executescript() would COMMIT our transaction.
                    for statement in _statements(_MIGRATIONS[version]):
                        conn.execute(statement)
                    version += 1
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"history database {self.path} has schema version {version}, newer than this "
                f"diffbench knows ({SCHEMA_VERSION}); upgrade diffbench, or start a new history "
                f"with: diffbench history --reset (moves it to {self.path.name}.bak-<time>)")

    def _error(self, exc: sqlite3.Error) -> HistoryError:
        """Turn an sqlite3 error into a one-line HistoryError with the way out."""
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        low = text.lower()
        if "locked" in low or "busy" in low:
            return HistoryError(f"history database {self.path} is busy (locked by another "
                                f"diffbench for over {BUSY_TIMEOUT_S:.0f} s); try again")
        if "readonly" in low or "read-only" in low:
            return HistoryError(f"history database {self.path} is read-only; make it writable "
                                f"or set DIFFBENCH_HOME to another folder")
        if "unable to open" in low:
            return HistoryError(f"cannot open history database {self.path}: {text}; set "
                                f"DIFFBENCH_HOME to a writable folder")
        if "disk is full" in low or "disk i/o" in low:
            return HistoryError(f"history database {self.path}: {text}")
        if isinstance(exc, sqlite3.OperationalError) and "no such" not in low:
            return HistoryError(f"history database {self.path}: {text}")
        return HistoryError(f"history database {self.path} is damaged ({text}); move it aside "
                            f"with: diffbench history --reset (keeps it as "
                            f"{self.path.name}.bak-<time>)")


class _Connection:
    """Context manager: one connection per operation; writes run in BEGIN IMMEDIATE."""

    def __init__(self, history: History, write: bool) -> None:
        self.history, self.write = history, write
        self.conn: Optional[sqlite3.Connection] = None

    def __enter__(self) -> sqlite3.Connection:
        self.conn = self.history._open()
        if self.write:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                self.conn.close()
                raise self.history._error(exc) from None
        return self.conn

    def __exit__(self, kind, exc, tb) -> bool:
        assert self.conn is not None
        try:
            if self.write:
                self.conn.execute("COMMIT" if kind is None else "ROLLBACK")
        except sqlite3.Error as error:
            if kind is None:
                raise self.history._error(error) from None
        finally:
            self.conn.close()
        if kind is not None and issubclass(kind, sqlite3.Error):
            raise self.history._error(exc) from None
        return False


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _row_from_result(result: RunResult) -> tuple:
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


def _result_from_row(row: sqlite3.Row) -> RunResult:
    try:
        extra = json.loads(row["extra"] or "{}")
        return RunResult.from_dict({
            **(extra if isinstance(extra, dict) else {}),
            "run_id": row["run_id"], "status": row["status"], "started_at": row["started_at"],
            "image_path": row["image_path"], "error": row["error"],
            "config": json.loads(row["config"]), "environment": json.loads(row["environment"]),
            "metrics": json.loads(row["metrics"]), "notices": json.loads(row["notices"]),
        })
    except (ValueError, TypeError) as exc:
        raise HistoryError(f"run {row['run_id']} in the history is damaged ({exc}); remove it "
                           f"with: diffbench history --delete {row['run_id']}") from None

