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

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
from urllib.parse import quote

log = logging.getLogger("medport.audit_journal")

SUFFIX = ".audit-journal"
DRAIN_LOCK = "drain.lock"     # see "the drain's side" below
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
        if not os.path.isdir(self.dir):
            os.makedirs(self.dir, mode=0o700, exist_ok=True)
            _sync_dir(os.path.dirname(self.dir))
        name = f"{os.getpid()}-{os.urandom(4).hex()}"
        base = os.path.join(self.dir, name)
        fd = os.open(base + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        conn = None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)     # a fresh name: never held by another
            conn = self._connect(base + ".db")
            conn.execute(_SCHEMA)
            _sync_dir(self.dir)     # the new files' names are durable before an entry relies on them
        except BaseException:       # e.g. a full disk: nothing held; the next append tries a new journal,
            if conn is not None:    # and a drain removes this one (a drain may have it open: not unlinked here)
                conn.close()
            os.close(fd)
            raise
        self._own = (os.getpid(), name, conn, fd)
        return conn

    def _connect(self, target: str, uri: bool = False) -> sqlite3.Connection:
        conn = sqlite3.connect(target, timeout=self.busy_timeout_s, isolation_level=None,
                               check_same_thread=False, uri=uri)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
        except BaseException:
            conn.close()
            raise
        return conn

    # ---- the drain's side: every process's journal -------------------------------------------
    # A journal is unlinked only while no connection has it open: SQLite databases unlinked in use
    # corrupt others (a new file can take the inode, and SQLite's per-inode lock and wal-index state
    # with it: sqlite.org/howtocorrupt.html, 2.4). Every drain therefore opens journals under a shared
    # flock of DRAIN_LOCK, and a removal takes it exclusively (never waiting: the next drain removes).
    def read(self, limit: int) -> list[tuple[tuple[str, int], str, bytes]]:
        """Up to `limit` entries ((name, seq), id, body), each journal's oldest first; an empty journal
        whose process is gone is removed after."""
        out: list = []
        empty: list[str] = []
        with self._draining(exclusive=False):
            for name in self._names():
                if len(out) >= limit:
                    break
                try:
                    with _closing(self._open(name)) as conn:
                        if conn is None:
                            continue
                        rows = conn.execute("SELECT seq, id, body FROM journal ORDER BY seq LIMIT ?",
                                            (limit - len(out),)).fetchall()
                except sqlite3.DatabaseError as e:
                    self._unreadable(name, e)
                    continue
                if not rows:
                    empty.append(name)      # e.g. drained while its process still lived
                out += [((name, seq), id, body) for seq, id, body in rows]
        self._remove_abandoned(empty)
        return out

    def delete(self, keys: list[tuple[tuple[str, int], str]]) -> None:
        """Remove entries read with read(); a journal left empty by a process that is gone goes too."""
        by_name: dict[str, list[tuple[int, str]]] = {}
        for (name, seq), id in keys:
            by_name.setdefault(name, []).append((seq, id))
        if not by_name:
            return
        emptied: list[str] = []
        with self._draining(exclusive=False):
            for name, rows in by_name.items():
                try:
                    with _closing(self._open(name)) as conn:
                        if conn is None:
                            continue
                        _each_in_one_transaction(conn, "DELETE FROM journal WHERE seq = ? AND id = ?", rows)
                        if conn.execute("SELECT 1 FROM journal LIMIT 1").fetchone() is None:
                            emptied.append(name)
                except sqlite3.DatabaseError as e:      # its entries are stored: the next drain skips them
                    self._unreadable(name, e)
        self._remove_abandoned(emptied)

    def _names(self) -> list[str]:
        try:
            return sorted(f[:-3] for f in os.listdir(self.dir) if f.endswith(".db"))
        except FileNotFoundError:
            return []

    def _open(self, name: str) -> sqlite3.Connection | None:
        """A connection to another (or this) process's journal, None if it was removed (never created
        again by opening it: mode=rw)."""
        path = os.path.join(self.dir, name + ".db")
        if not os.path.exists(path):
            return None
        try:
            conn = self._connect(f"file:{quote(path)}?mode=rw", uri=True)
        except sqlite3.OperationalError:
            if not os.path.exists(path):
                return None
            raise
        try:
            conn.execute(_SCHEMA)   # a journal whose process died before creating its table
        except BaseException:
            conn.close()
            raise
        return conn

    def _unreadable(self, name: str, error: Exception) -> None:
        """A journal that cannot be read (damaged) is passed over, so it cannot stop every other
        journal's drain; it is reported each time, and kept for an operator."""
        log.error("audit side journal %s cannot be read (%s): passed over", name, error)

    def _remove_abandoned(self, names: list[str]) -> None:
        """Remove those of these journals that are empty and whose process is gone (its lock is free),
        while no drain has any journal open; if one has, the next drain tries again."""
        own = self._own
        names = [n for n in names if not (own is not None and own[1] == n and own[0] == os.getpid())]
        if not names:
            return
        with self._draining(exclusive=True) as held:
            if not held:
                return
            for name in names:
                self._remove_if_abandoned(name)

    def _remove_if_abandoned(self, name: str) -> None:
        """(Under the exclusive drain lock.)"""
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
            try:
                with _closing(self._open(name)) as conn:      # still empty, now that nobody can append
                    if conn is None or conn.execute("SELECT 1 FROM journal LIMIT 1").fetchone() is not None:
                        return
            except sqlite3.DatabaseError:
                return                  # damaged: kept for an operator
            _unlink(base, (".db", ".db-wal", ".db-shm", ".lock"))     # its connection closed above
        finally:
            if fd is not None:
                os.close(fd)

    @contextlib.contextmanager
    def _draining(self, exclusive: bool):
        """flock of DRAIN_LOCK: shared (blocking) while journals are open, exclusive (never waiting) to
        remove some; yields whether it is held."""
        try:
            fd = os.open(os.path.join(self.dir, DRAIN_LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:          # no journal yet
            yield False
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB if exclusive else fcntl.LOCK_SH)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def close(self) -> None:
        with self._lock:
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
        conn.execute("COMMIT")
    finally:
        if conn.in_transaction:     # failed, the COMMIT itself included: nothing stays open
            conn.execute("ROLLBACK")


def _unlink(base: str, suffixes) -> None:
    for suffix in suffixes:
        try:
            os.unlink(base + suffix)
        except FileNotFoundError:
            pass


def _sync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
