"""Rows of a SQLite store kept in memory while no transaction has committed since they were read.

A read through Python's sqlite3 lets go of the interpreter lock three times (two steps and a reset).
On a busy worker each time hands the lock to another request thread and waits to get it back, which
costs more CPU than the read itself (issue 16: ~40 us of a ~270 us GET over HTTP). This cache answers
a repeated read without calling SQLite at all.

It knows whether a row can still be current from the wal-index header, the first bytes of the
`<db>-shm` file every connection to a WAL database maps (https://www.sqlite.org/walformat.html, 2.1):
each commit rewrites both copies of the header (its change counter iChange, mxFrame, the checksums),
and restarting the WAL after a checkpoint changes its salts, so the header never returns to an earlier
value. Every row is kept with the header bytes read *before* its query and answered only while the
header still holds them: a commit between that look and the query changes the header, so such a row
is never answered. The header is read where SQLite itself maps it in this process: no system call.

Only reads outside a transaction are cached (a transaction sees its own writes, and a snapshot its own
state). While the cache lives it holds a connection of its own that has read the database, which keeps
SQLite's mapping of the -shm file in this process, and the file itself: SQLite removes it only when the
last connection closes (walClose takes an EXCLUSIVE lock, which that connection's SHARED lock refuses),
and truncates it only when it is the first to open it (no other process holding its DMS lock). No WAL,
no mapping found (not Linux), or a header not in the format above: nothing is cached.
"""
from __future__ import annotations

import ctypes
import os
import sqlite3
import struct
import threading

HEADER_BYTES = 96           # the two 48-byte copies of WalIndexHdr
WALINDEX_VERSION = 3007000  # WalIndexHdr.iVersion of every SQLite 3.7.0 and later
MISS = object()
_inherited: list = []       # a parent's connections, never closed in a child (SQLite: no use across fork)


class ReadCache:
    """Up to `max_bytes` of rows, by key. get(key, stamp) answers a row put with the same stamp, else
    MISS; stamp() is the current header (None: cache nothing). Safe to share between threads: the GIL
    makes each dict operation atomic, and a put racing a commit only stores a row no stamp will match."""

    def __init__(self, db_path: str, max_bytes: int):
        self.db_path = os.path.abspath(db_path)
        self.max_bytes = max_bytes
        self._rows: dict = {}           # key -> (stamp, value, size), oldest first
        self._bytes = 0
        self._seen = None               # the stamp every row in _rows was read under, mostly
        self._lock = threading.Lock()   # puts only: gets never wait
        self._addr = None               # where SQLite maps the header in this process
        self._keep = None               # the connection that keeps that mapping
        self._keep_pid = None
        self._pid = None                # the process that looked for the header (as the store's connections)

    def through(self, conn, key, load, size):
        """load(conn), answered from the cache when conn is in no transaction and the row read under the
        current header is held; size(value) is what it costs to keep. Outside a transaction a statement
        reads the latest commit only if no statement of conn is left unfinished (an unfinished one keeps
        its snapshot): every statement of the store is read to its end (fetchone, fetchall, or a loop)."""
        stamp = None if conn.in_transaction else self.stamp()
        if stamp is None:
            return load(conn)
        got = self.get(key, stamp)
        if got is MISS:
            got = load(conn)
            self.put(key, stamp, got, size(got))
        return got

    def stamp(self) -> bytes | None:
        if self._pid != os.getpid():
            self._open()
        addr = self._addr
        return None if addr is None else ctypes.string_at(addr, HEADER_BYTES)

    def get(self, key, stamp: bytes):
        hit = self._rows.get(key)
        return hit[1] if hit is not None and hit[0] == stamp else MISS

    def put(self, key, stamp: bytes, value, size: int) -> None:
        if size > self.max_bytes // 8:
            return
        with self._lock:
            if stamp != self._seen:     # a commit since the rows held were read: none is current
                self._rows, self._bytes, self._seen = {}, 0, stamp
            old = self._rows.pop(key, None)
            if old is not None:
                self._bytes -= old[2]
            self._rows[key] = (stamp, value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:     # the oldest first
                self._bytes -= self._rows.pop(next(iter(self._rows)))[2]

    def close(self) -> None:
        """Forget every row and close the connection that holds SQLite's mapping (as Store.close, not
        while another thread reads through this store); the next read finds the header again. A process
        that closes its store holds nothing of it open: `medport serve` closes its store before the
        workers are forked."""
        with self._lock:
            keep = self._keep if self._keep_pid == os.getpid() else None
            self._rows, self._bytes, self._seen, self._addr, self._pid = {}, 0, None, None, None
            if keep is not None:
                self._keep = None
                keep.close()

    def _open(self) -> None:
        """(Once per process.) Find the header in SQLite's own mapping of the -shm file, if it is in the
        format above. A process forked while its parent held the cache open caches nothing: it inherits
        SQLite's record of locks its parent holds and it does not, so its connections would not keep the
        -shm file from being reset under it (SQLite: no connection may cross a fork).

        The header is read where SQLite maps it, not through a file descriptor of this module: closing
        any descriptor of the -shm file would drop every POSIX lock this process holds on it, SQLite's
        included, and another process could then find the file unused and truncate it under the
        workers' mappings (SIGBUS)."""
        with self._lock:
            if self._pid == os.getpid():
                return
            inherited = self._keep is not None and self._keep_pid != os.getpid()
            if inherited:
                _inherited.append(self._keep)       # the parent's: never closed here
                self._keep = None
            self._rows, self._bytes, self._seen, self._addr = {}, 0, None, None
            self._pid = os.getpid()
            if self.max_bytes <= 0 or inherited:
                return
            try:
                keep = sqlite3.connect(self.db_path, check_same_thread=False)
                if keep.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    keep.close()
                    return
                keep.execute("SELECT count(*) FROM sqlite_master").fetchone()     # maps the -shm file
                addr = _mapped(os.path.realpath(self.db_path) + "-shm")
            except (OSError, sqlite3.Error):
                return
            if addr is None or not _known_format(ctypes.string_at(addr, HEADER_BYTES)):
                keep.close()
                return
            self._addr, self._keep, self._keep_pid = addr, keep, os.getpid()


def _known_format(header: bytes) -> bool:
    return struct.unpack_from("=I", header)[0] == WALINDEX_VERSION and header[12] == 1     # iVersion, isInit


def _mapped(path: str) -> int | None:
    """The address where this process maps the first bytes of `path` (/proc/self/maps, Linux), if
    exactly one mapping does."""
    starts = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].rstrip("\n") == path and int(fields[2], 16) == 0 \
                    and fields[1].startswith("r"):
                starts.add(int(fields[0].split("-")[0], 16))
    return starts.pop() if len(starts) == 1 else None
