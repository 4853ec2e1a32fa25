"""Side journals of a SQLite store: one small SQLite database per process, where journal entries
appended outside a unit of work (a request's audit trail: audit_log/group_commit.py) are made durable.

Why apart from the store's `journal` table: every append there took the store's writer lock, which
is one lock across processes, so each worker's appends queued behind the other worker's and behind
every write and audit drain; on two cores the queueing cost more than the read being audited (docs/
audit.md, "Throughput"). A process's own database has no other writer but the drain.

Layout: `<store>.audit-journal/<pid>-<nonce>.db` (WAL, the store's synchronous setting, so FULL
survives power loss like the store), and `<same>.lock`, flock(2)-ed by the process from its first
append until it exits: the kernel releases it when the process dies, however it dies.

The drain (audit_log/journal.py) reads every side journal with the store's journal table, and
deletes what it stored; a side journal that is empty and whose process is gone is removed. Entries
are keyed (file name, seq). Appends inside a unit still go to the store's table, in the unit's own
transaction: a write's events commit or roll back with it.
"""
from __future__ import annotations

import fcntl
import os
import sqlite3
import threading

SUFFIX = ".audit-journal"
_SCHEMA = "CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, body BLOB NOT NULL)"


class SideJournals:
    def __init__(self, store_path: str, synchronous: str, busy_timeout_s: float):
        self.dir = os.path.abspath(store_path) + SUFFIX
        self.synchronous, self.busy_timeout_s = synchronous, busy_timeout_s
        self._lock = threading.Lock()       # one append at a time per process
        self._own = None                    # (pid, name, connection, lock fd) of this process's journal

    # ---- this process's journal --------------------------------------------------------------
    def append(self, entries: list[tuple[str, bytes]]) -> None:
        """(id, body) entries, durably, all or none."""
        with self._lock:
            _each_in_one_transaction(self._writer(), "INSERT INTO journal (id, body) VALUES (?, ?)", entries)

    def _writer(self) -> sqlite3.Connection:
        own = self._own
        if own is not None and own[0] == os.getpid():
            return own[2]
        if own is not None:         # forked: the parent's connection is not ours to use or close
            os.close(own[3])        # (the parent keeps its lock through its own descriptor)
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        name = f"{os.getpid()}-{os.urandom(4).hex()}"
        fd = os.open(os.path.join(self.dir, name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)     # a fresh name: never held by another
        conn = self._connect(name)
        conn.execute(_SCHEMA)
        _sync_dir(self.dir)         # the new files' names are durable before an entry relies on them
        self._own = (os.getpid(), name, conn, fd)
        return conn

    def _connect(self, name: str) -> sqlite3.Connection:
        conn = sqlite3.connect(os.path.join(self.dir, name + ".db"), timeout=self.busy_timeout_s,
                               isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        return conn

    # ---- the drain's side: every process's journal -------------------------------------------
    def names(self) -> list[str]:
        try:
            return sorted(f[:-3] for f in os.listdir(self.dir) if f.endswith(".db"))
        except FileNotFoundError:
            return []

    def read(self, limit: int) -> list[tuple[tuple[str, int], str, bytes]]:
        """Up to `limit` entries ((name, seq), id, body), each journal's oldest first; an empty journal
        whose process is gone is removed on the way."""
        out: list = []
        for name in self.names():
            if len(out) >= limit:
                break
            with _closing(self._open(name)) as conn:
                if conn is None:
                    continue
                rows = conn.execute("SELECT seq, id, body FROM journal ORDER BY seq LIMIT ?",
                                    (limit - len(out),)).fetchall()
            if not rows:
                self._remove_if_abandoned(name)      # e.g. drained while its process still lived
            out += [((name, seq), id, body) for seq, id, body in rows]
        return out

    def delete(self, keys: list[tuple[tuple[str, int], str]]) -> None:
        """Remove entries read with read(); a journal left empty by a process that is gone goes too."""
        by_name: dict[str, list[tuple[int, str]]] = {}
        for (name, seq), id in keys:
            by_name.setdefault(name, []).append((seq, id))
        for name, rows in by_name.items():
            with _closing(self._open(name)) as conn:
                if conn is None:
                    continue
                _each_in_one_transaction(conn, "DELETE FROM journal WHERE seq = ? AND id = ?", rows)
                empty = conn.execute("SELECT 1 FROM journal LIMIT 1").fetchone() is None
            if empty:
                self._remove_if_abandoned(name)

    def _open(self, name: str) -> sqlite3.Connection | None:
        """A connection to another (or this) process's journal, None if it was removed meanwhile."""
        if not os.path.exists(os.path.join(self.dir, name + ".db")):
            return None
        conn = self._connect(name)
        conn.execute(_SCHEMA)       # a journal whose process died before creating its table
        return conn

    def _remove_if_abandoned(self, name: str) -> None:
        """Remove an empty journal whose process is gone: its lock is free (or was removed already)."""
        own = self._own
        if own is not None and own[1] == name and own[0] == os.getpid():
            return
        base = os.path.join(self.dir, name)
        try:
            fd = os.open(base + ".lock", os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            fd = None
        try:
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return              # its process is alive and may append again
            with _closing(self._open(name)) as conn:      # still empty, now that nobody can append
                if conn is None or conn.execute("SELECT 1 FROM journal LIMIT 1").fetchone() is not None:
                    return
            for suffix in (".db", ".db-wal", ".db-shm", ".lock"):
                try:
                    os.unlink(base + suffix)
                except FileNotFoundError:
                    pass
        finally:
            if fd is not None:
                os.close(fd)

    def close(self) -> None:
        own, self._own = self._own, None
        if own is not None and own[0] == os.getpid():
            own[2].close()
            os.close(own[3])


class _closing:
    """`with` for a connection that may be None."""

    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        return self.conn

    def __exit__(self, *exc):
        if self.conn is not None:
            self.conn.close()


def _each_in_one_transaction(conn: sqlite3.Connection, sql: str, rows: list) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(sql, rows)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _sync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
