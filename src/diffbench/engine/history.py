"""Durable run history: a SQLite database (stdlib sqlite3, WAL) shared by the CLI and dashboard.

Where: ``$DIFFBENCH_HOME/history.sqlite`` when DIFFBENCH_HOME is set, else the platformdirs
user data dir (``~/.local/share/diffbench/history.sqlite`` on Linux).

:class:`History` holds the queries (add, get, list, delete, the baseline finder, reset); the
schema, migrations, connections and error messages are diffbench.engine.history_schema's, the
row <-> RunResult mapping diffbench.engine.history_rows'.

A run is recorded when it starts (:meth:`History.begin`, status "running", with its owner
process) and replaced by its result when it ends. A "running" row whose owner is gone (a
diffbench killed by SIGKILL, a machine that went down) is marked "interrupted" with the reason
the first time a History object opens the database (diffbench.engine.run_owner).

The data folder it creates is private (0700), and so are the database files (0600); older
files of this user are tightened on open (history_schema.restrict).

A corrupt database, or one written by a newer diffbench, raises :class:`HistoryError` with a
way out: :meth:`History.reset` (``diffbench history --reset``) moves the file aside to
``<file>.bak-<UTC timestamp>``; a backup is never overwritten.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Optional, Union

from diffbench.engine.history_rows import COLUMNS, result_from_row, row_from_result
from diffbench.engine.history_schema import (PRIVATE_FILE_MODE, PRIVATE_FOLDER_MODE,
                                             HistoryDatabase, HistoryError, restrict)
from diffbench.engine.result import RunResult

DB_NAME = "history.sqlite"
#: Status of a run recorded at its start and not finished yet, and of one whose process died.
RUNNING, INTERRUPTED = "running", "interrupted"


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


class History(HistoryDatabase):
    """The run store. Cheap to construct: the file is opened (and created) on first use.

    Args:
        path: database file; None = :func:`default_path`.

    Every method may raise :class:`HistoryError` (corrupt, newer schema, unwritable, busy for
    longer than history_schema.BUSY_TIMEOUT_S) with a one-line message.
    """

    def __init__(self, path: Union[str, os.PathLike, None] = None) -> None:
        super().__init__(Path(path) if path is not None else default_path())

    # ------------------------------------------------------------------ public API
    def add(self, result: RunResult) -> str:
        """Insert ``result``, or replace the stored run with the same run_id. Returns run_id."""
        self.add_many([result])
        return result.run_id

    def add_many(self, results: Iterable[RunResult]) -> int:
        """:meth:`add` for many runs in one transaction (all or none). Returns the count."""
        rows = [row_from_result(r) for r in results]
        placeholders = ", ".join("?" for _ in COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
        sql = (f"INSERT INTO runs ({', '.join(COLUMNS)}) VALUES ({placeholders}) "
               f"ON CONFLICT(run_id) DO UPDATE SET {updates}")
        with self._connect(write=True) as conn:
            conn.executemany(sql, rows)
        return len(rows)

    def begin(self, result: RunResult, owner: Optional[dict] = None) -> str:
        """Record ``result`` (status "running") as a run in progress, owned by ``owner``
        (diffbench.engine.run_owner.current(); default: this process). Its final result
        replaces the row through :meth:`add`. Returns run_id."""
        import json

        from diffbench.engine import run_owner

        owner = owner if owner is not None else run_owner.current()
        row = row_from_result(result)
        placeholders = ", ".join("?" for _ in COLUMNS)
        with self._connect(write=True) as conn:
            conn.execute(f"INSERT INTO runs ({', '.join(COLUMNS)}, owner) VALUES "
                         f"({placeholders}, ?)", (*row, json.dumps(owner)))
        return result.run_id

    def mark_interrupted(self, run_id: str, reason: str) -> bool:
        """Mark the "running" run ``run_id`` as "interrupted" with ``reason`` (one line).
        Returns False when it is not running (it ended, or is not stored)."""
        with self._connect(write=True) as conn:
            changed = conn.execute(
                "UPDATE runs SET status = ?, error = ?, owner = NULL WHERE run_id = ? AND "
                "status = ?", (INTERRUPTED, reason, run_id, RUNNING)).rowcount
        return changed > 0

    def _after_prepare(self, conn: sqlite3.Connection) -> None:
        """Mark runs whose process died as interrupted; make our data folder private."""
        import json

        from diffbench.engine import run_owner

        self._tighten_folders()
        try:
            rows = conn.execute("SELECT run_id, owner FROM runs WHERE status = ?",
                                (RUNNING,)).fetchall()
            for row in rows:
                try:
                    owner = json.loads(row["owner"]) if row["owner"] else None
                except ValueError:
                    owner = None
                if run_owner.is_alive(owner):
                    continue
                pid = owner.get("pid") if isinstance(owner, dict) else None
                reason = (f"the diffbench process{f' (pid {pid})' if pid else ''} that ran "
                          f"it ended without finishing it (SIGKILL, out of memory, or the "
                          f"machine went down)")
                conn.execute("UPDATE runs SET status = ?, error = ?, owner = NULL WHERE "
                             "run_id = ? AND status = ?",
                             (INTERRUPTED, reason, row["run_id"], RUNNING))
        except sqlite3.Error:
            pass  # read-only or busy: the next open tries again; reading still works

    def _tighten_folders(self) -> None:
        # The platform data folder and our images folder are diffbench's own: make them
        # private. A DIFFBENCH_HOME the user chose is theirs to set.
        if not os.environ.get("DIFFBENCH_HOME") and self.path == default_path():
            restrict(self.path.parent, PRIVATE_FOLDER_MODE)
        images = self.path.parent / "images"
        try:
            loose = images.is_dir() and os.stat(images).st_mode & 0o077
        except OSError:
            loose = False
        if loose:  # once: an older diffbench left it and its images readable by others
            restrict(images, PRIVATE_FOLDER_MODE)
            try:
                for image in images.iterdir():
                    restrict(image, PRIVATE_FILE_MODE)
            except OSError:
                pass

    def get(self, run_id: str) -> RunResult:
        """The run whose id is ``run_id`` or starts with it (a unique prefix).

        Raises:
            RunNotFoundError: no match, or the prefix matches several runs (names them).
        """
        return result_from_row(self._match(run_id))

    def list(self, model: Optional[str] = None, compiler: Optional[str] = None,
             status: Optional[str] = None, limit: Optional[int] = None,
             task: Optional[str] = None, sweep_id: Optional[str] = None,
             accel: Optional[str] = None) -> list[RunResult]:
        """Runs matching every given filter, newest first; ``limit`` caps the count.

        ``sweep_id`` matches the config key of that name (set by `diffbench sweep`).
        ``accel`` matches the compiler, the full accelerator label or one of its parts
        (diffbench.engine.baseline.matches_accel: "deepcache" or "none+deepcache").
        """
        if accel is not None:  # the label is built from the config, so filter in Python
            from diffbench.engine.baseline import matches_accel

            runs = [r for r in self.list(model=model, compiler=compiler, status=status,
                                         task=task, sweep_id=sweep_id)
                    if matches_accel(r.config or {}, accel)]
            return runs if limit is None else runs[:max(0, int(limit))]
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
        return [result_from_row(r) for r in rows]

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
        return pick(result, (result_from_row(row) for row in rows), image=image)

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
