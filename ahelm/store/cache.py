"""The answer cache: SQLite in WAL mode, shared by every process of a run and across runs.

Answers are keyed by the hash of everything that determines them (Request.key). Errors are kept
for the run that met them only, so a rerun asks again. A ``claims`` table lets several xdist
workers share one run without asking the model twice for the same key: a worker claims a key
before calling the model and others wait for its answer; claims of dead processes are taken over.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ahelm.core import InstanceError, ModelCallError, Response

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    response TEXT NOT NULL,
    run_id TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS errors (
    key TEXT NOT NULL,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    raw TEXT,
    PRIMARY KEY (key, run_id)
);
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    pid INTEGER NOT NULL,
    created REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Claim:
    run_id: str
    pid: int


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Cache:
    """One connection per Cache object; use it from one thread."""

    STALE_CLAIM_S = 900.0
    """A claim this old is abandoned even if its pid is alive (the pid may have been reused)."""

    def __init__(self, path: Path, run_id: str, *, refresh: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.run_id = run_id
        self.refresh = refresh
        self._pid = os.getpid()
        self._db = sqlite3.connect(path, timeout=60.0, isolation_level=None)
        self._initialise()

    def _initialise(self) -> None:
        """Switch to WAL and create the tables, retrying while another process does the same.

        Changing the journal mode needs an exclusive lock and SQLite does not wait for it, so
        two xdist workers opening a new cache at once would see "database is locked".
        """
        delay = 0.01
        deadline = time.monotonic() + 60.0
        while True:
            try:
                if self._db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(_SCHEMA)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def close(self) -> None:
        self._db.close()

    def get(self, key: str) -> Response | None:
        """A stored answer; with ``refresh``, only one given during this run counts."""
        found = self.lookup(key)
        return found[0] if found else None

    def lookup(self, key: str) -> tuple[Response, bool] | None:
        """A stored answer and whether this run asked for it (False: an earlier run did)."""
        query = "SELECT response, run_id FROM responses WHERE key = ?"
        row = self._db.execute(query, (key,)).fetchone()
        if row is None or (self.refresh and row[1] != self.run_id):
            return None
        return Response.from_json(json.loads(row[0])), row[1] == self.run_id

    def lookup_many(self, keys: Sequence[str]) -> dict[str, tuple[Response, bool]]:
        """:meth:`lookup` for many keys in a few queries (a cached rerun asks for thousands)."""
        found: dict[str, tuple[Response, bool]] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start:start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT key, response, run_id FROM responses WHERE key IN ({marks})", chunk
            ).fetchall()
            for key, response, run_id in rows:
                if self.refresh and run_id != self.run_id:
                    continue
                found[key] = (Response.from_json(json.loads(response)), run_id == self.run_id)
        return found

    def put(self, key: str, model: str, instance_id: str, response: Response) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)",
            (key, model, instance_id, json.dumps(response.to_json()), self.run_id, time.time()),
        )

    def get_error(self, key: str) -> InstanceError | None:
        row = self._db.execute(
            "SELECT kind, message, raw FROM errors WHERE key = ? AND run_id = ?",
            (key, self.run_id),
        ).fetchone()
        if row is None:
            return None
        error = ModelCallError(row[1], raw=row[2])
        error.kind = row[0]
        return error

    def put_error(self, key: str, error: InstanceError) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO errors VALUES (?, ?, ?, ?, ?)",
            (key, self.run_id, error.kind, error.message, error.raw),
        )

    def claim(self, key: str) -> Claim | None:
        """Claim ``key`` for this process; returns the other live owner if it is taken."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute(
                "SELECT run_id, pid, created FROM claims WHERE key = ?", (key,)
            ).fetchone()
            if row is not None and self._held_by_other(row[1], row[2]):
                self._db.execute("COMMIT")
                return Claim(run_id=row[0], pid=row[1])
            self._db.execute(
                "INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?)",
                (key, self.run_id, self._pid, time.time()),
            )
            self._db.execute("COMMIT")
            return None
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def release(self, key: str) -> None:
        self._db.execute("DELETE FROM claims WHERE key = ? AND pid = ?", (key, self._pid))

    def claimed_by_other(self, key: str) -> bool:
        row = self._db.execute("SELECT pid, created FROM claims WHERE key = ?", (key,)).fetchone()
        return row is not None and self._held_by_other(row[0], row[1])

    def _held_by_other(self, pid: int, created: float) -> bool:
        fresh = time.time() - created < self.STALE_CLAIM_S
        return pid != self._pid and fresh and _alive(pid)

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
