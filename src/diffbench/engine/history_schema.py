"""The history database itself: connections, the schema and its migrations, and sqlite3
errors turned into one-line :class:`HistoryError` messages with a way out.

Schema: ``PRAGMA user_version`` holds the schema version (:data:`SCHEMA_VERSION`; 3 reads
earlier versions' empty negative prompt as none: :func:`_empty_negative_prompt_is_none`).
One ``runs`` row per run, with indexed columns for the common filters and sort (run_id, started_at, status,
model, compiler, task, height, width, it_per_s, inference_s, warmup_s) and the full config,
environment, metrics and notices as JSON text, so a new Metrics field needs no migration;
other RunResult fields (log_tail, and any added later) go to the ``extra`` JSON column
(diffbench.engine.history_rows).

Concurrency: every call opens its own short-lived connection (thread- and process-safe), the
database is in WAL mode (readers never block the writer) and waits up to
:data:`BUSY_TIMEOUT_S` for a lock. Each write is one transaction: a crash or kill -9 leaves the
database as before or after the write, never torn (SQLite's journal guarantees it).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Optional

from diffbench.engine.errors import DiffbenchError

SCHEMA_VERSION = 3
BUSY_TIMEOUT_S = 10.0
#: Permission bits of the history database (and its -wal/-shm files) and of the data folder
#: diffbench creates: prompts, model paths and images are the user's own.
PRIVATE_FILE_MODE = 0o600
PRIVATE_FOLDER_MODE = 0o700

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
# v2: ``owner`` (JSON: pid, process start time, host) of a run recorded as "running", so a
# run whose diffbench was killed can be told from one in progress (diffbench.engine.run_owner).
_SCHEMA_V2 = "ALTER TABLE runs ADD COLUMN owner TEXT"


def _empty_negative_prompt_is_none(conn: sqlite3.Connection) -> None:
    """Version 2 -> 3: a run recorded before version 3 never passed an empty negative prompt
    to the pipeline (it was dropped), so its stored "" becomes None, today's "no negative
    prompt"; "" now means an explicitly empty one, passed as "" (OneDiff's script)."""
    rows = conn.execute("SELECT run_id, config FROM runs WHERE config LIKE "
                        "'%\"negative_prompt\": \"\"%'").fetchall()
    for run_id, text in rows:
        try:
            config = json.loads(text)
        except ValueError:
            continue  # a damaged row stays as it is; reading it reports it
        if isinstance(config, dict) and config.get("negative_prompt") == "":
            config["negative_prompt"] = None
            conn.execute("UPDATE runs SET config = ? WHERE run_id = ?",
                         (json.dumps(config, sort_keys=True, default=str), run_id))


#: Schema steps: _MIGRATIONS[v] takes a database from version v to v + 1 (SQL text, or a
#: function of the connection for a step SQL cannot say).
_MIGRATIONS: dict = {0: _SCHEMA_V1, 1: _SCHEMA_V2, 2: _empty_negative_prompt_is_none}


class HistoryError(DiffbenchError):
    """The history database cannot be used; the one-line message says why and what to do."""

    exit_code = 1


class HistoryDatabase:
    """The SQLite file at ``path``: opened (created, upgraded) on first use, one connection
    per operation (:meth:`_connect`). Base of diffbench.engine.history.History.

    Raises :class:`HistoryError` (corrupt, newer schema, unwritable, busy for longer than
    BUSY_TIMEOUT_S) with a one-line message.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ready = False

    def _connect(self, write: bool = False) -> "_Connection":
        return _Connection(self, write)

    def _open(self) -> sqlite3.Connection:
        try:
            make_private_folder(self.path.parent)
        except OSError as exc:
            raise HistoryError(f"cannot create the history folder {self.path.parent}: "
                               f"{exc.strerror or exc} (set DIFFBENCH_HOME to another folder)"
                               ) from None
        if self.path.is_dir():
            raise HistoryError(f"history database {self.path} is a folder; move it aside or "
                               f"set DIFFBENCH_HOME to another folder")
        if not self._ready:
            _make_private_file(self.path)
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
                self._after_prepare(conn)
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
                    step = _MIGRATIONS[version]
                    if callable(step):
                        step(conn)
                    else:
                        for statement in _statements(step):
                            conn.execute(statement)
                    version += 1
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _after_prepare(self, conn: sqlite3.Connection) -> None:
        """Called once per object after the schema is ready (History marks runs whose
        process died here)."""

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

    def __init__(self, history: HistoryDatabase, write: bool) -> None:
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


def make_private_folder(folder: Path) -> None:
    """Create ``folder`` (and missing parents) as 0700; an existing one is left as it is.

    Raises:
        OSError: it cannot be created.
    """
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER_MODE)


def _make_private_file(path: Path) -> None:
    """Create the database file as 0600 if missing (SQLite would make it 0644 and its
    -wal/-shm files copy that mode); tighten an existing one of ours (0644 from an older
    diffbench) and its -wal/-shm files. Best effort: a failure here is left to sqlite3."""
    import os

    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE_MODE))
        return
    except OSError:
        pass  # exists (or cannot be created: connect() says why)
    for name in (str(path), f"{path}-wal", f"{path}-shm"):
        restrict(name, PRIVATE_FILE_MODE)


def restrict(path: "str | Path", mode: int) -> None:
    """Take from ``path`` the permission bits ``mode`` does not have (0644 -> 0600 for 0600,
    a read-only 0444 -> 0400) when this user owns it; never adds a bit, never touches another
    user's file; errors are ignored."""
    import os

    try:
        info = os.stat(path)
        current = info.st_mode & 0o777
        if info.st_uid == os.getuid() and current & ~mode:
            os.chmod(path, current & mode)
    except (OSError, AttributeError):  # gone, not ours, or no uids here
        pass


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
