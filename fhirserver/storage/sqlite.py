"""The embedded store: one SQLite file in WAL mode.

Safe under several server processes: every write transaction starts with
BEGIN IMMEDIATE (one writer at a time, others wait up to busy_timeout), so the
version check and the write happen under one lock. With synchronous=FULL a
commit is on disk before the client hears about it.

Layout: `resource` holds one row per logical resource (its current version),
`version` every version ever written (bodies live only there), and `idx_*`
the search index rows of current versions. Layout and indexes: docs/storage.md.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time

from ..bounds import parse_int
from ..errors import NestedUnitOfWork, StoreUnavailable
from ..search import limits as search_limits
from ..search.kinds.special_kind import haversine_km
from . import sqlite_quality, sqlite_search
from .base import Page, Store, Transaction, Version, Write, check_expected
from .blobs import FileBlobStore
from .sqlite_index import LAYOUT as INDEX_LAYOUT
from .sqlite_index import ParamIds, add_columns, missing_columns, write_rows
from .sqlite_index import layout as index_layout
from .sqlite_index import schema as index_schema
from .sqlite_index import upgrade as upgrade_index
from .sqlite_read_cache import ReadCache
from .sqlite_records import SCHEMA as RECORDS_SCHEMA
from .sqlite_records import Records
from .sqlite_side_journal import SideJournals
from .sqlite_stats import SCHEMA as STATS_SCHEMA
from .sqlite_stats import Statistics

SCHEMA = """
CREATE TABLE IF NOT EXISTS resource (
    rid INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    last_updated TEXT NOT NULL,
    UNIQUE (type, id)
);
CREATE TABLE IF NOT EXISTS version (
    seq INTEGER PRIMARY KEY,          -- global write order: history paging key
    rid INTEGER NOT NULL REFERENCES resource(rid),
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    last_updated TEXT NOT NULL,
    method TEXT NOT NULL,
    body BLOB,
    blob TEXT,
    UNIQUE (rid, version)
);
CREATE TABLE IF NOT EXISTS claim (    -- unique keys bound for good (Transaction.claim)
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    owner TEXT NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal (  -- appended durably, drained into resources (Store.journal_*)
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    body BLOB NOT NULL
);
-- a type's live resources in rid order (rowid ends every index entry): an unsorted search or an
-- export pages through a type by rid without sorting all of it (0.6 s -> 0.5 ms a page at 1M)
CREATE INDEX IF NOT EXISTS resource_type_rid ON resource (type, deleted);
CREATE INDEX IF NOT EXISTS version_type_seq ON version (type, seq);
CREATE INDEX IF NOT EXISTS version_time ON version (last_updated);
"""

# each connection's page cache, at most: index-heavy writes (a batch of AuditEvents, a transaction
# Bundle) touch many B-trees; the 2 MiB default made them re-read pages (issue 16: 1.10x on ingest).
# Measured on a store grown to 110k resources (bench_ingest.py --cache-mib 2,256, synchronous=FULL,
# the variants taking turns): 64 MiB 2,333 resources/s, 256 MiB 1,995/s, 2 MiB 1,991/s; kept at 64 MiB
PAGE_CACHE_KIB = 64 * 1024
READ_CACHE_MIB = 16
_VERSION_COLS = "r.type, r.id, v.version, v.last_updated, v.method, v.body, v.blob"
_CURRENT = f"SELECT {_VERSION_COLS} FROM resource r JOIN version v ON v.rid = r.rid AND v.version = r.version"


def _row(row) -> Version:
    return Version(row[0], row[1], row[2], row[3], row[4], row[5], row[6])


def _current(conn, type, id) -> Version | None:
    row = conn.execute(_CURRENT + " WHERE r.type = ? AND r.id = ?", (type, id)).fetchone()
    return _row(row) if row else None


def _version_size(v: Version | None) -> int:
    return 200 + (len(v.body) if v is not None and v.body else 0)


def path_from_url(url: str) -> str:
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not a sqlite URL: {url!r} (expected sqlite:///path/to/file.db)")
    return url[len("sqlite:///"):] or "var/medport.db"


class SqliteStore(Store):
    def __init__(self, path: str, blob_dir: str = "", synchronous: str = "FULL", busy_timeout_s: float = 30.0,
                 page_cache_kib: int = 0, read_cache_mib: float = READ_CACHE_MIB):
        """page_cache_kib: each connection's page cache, PAGE_CACHE_KIB unless given (bench/bench_ingest.py);
        read_cache_mib: what each process keeps of current versions and records read
        (sqlite_read_cache.py; 0: nothing)."""
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"sqlite synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        self.path = path = os.path.abspath(path)     # every connection, in every thread, opens this file
        self.synchronous = synchronous.upper()
        self.busy_timeout_s = busy_timeout_s
        self.page_cache_kib = page_cache_kib or PAGE_CACHE_KIB
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.blobs = FileBlobStore(blob_dir or os.path.join(os.path.dirname(path), "blobs"))
        self._local = threading.local()
        self._writer_lock = WriterLock(path + ".writer-lock", busy_timeout_s)
        self._side = SideJournals(path, self.synchronous, busy_timeout_s)
        self._read_cache = ReadCache(path, int(read_cache_mib * 1024 * 1024))
        self._param_ids = ParamIds()
        self._stats = Statistics()
        conn = self._conn()
        self._add_columns(conn)
        conn.executescript(SCHEMA + index_schema() + STATS_SCHEMA + RECORDS_SCHEMA + sqlite_quality.SCHEMA)
        self._records = Records(self)
        self._param_ids.load(conn)
        self._upgrade_index(conn)

    def _add_columns(self, conn) -> None:
        """A store from before a kind gained columns (quantity's UCUM canonical units) gets them, filled,
        in one write transaction (sqlite_index.add_columns)."""
        if not missing_columns(conn):
            return
        with self._writer_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                add_columns(conn, missing_columns(conn))      # again under the lock: another process may have
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _upgrade_index(self, conn) -> None:
        """A store written with an earlier index layout is brought to the current one when opened, in
        one write transaction (sqlite_index.upgrade); its planner statistics are refreshed after."""
        if index_layout(conn) == INDEX_LAYOUT:
            return
        with self._writer_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                changed = upgrade_index(conn, self._param_ids.load(conn))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            if changed:
                self._stats.refresh(conn)

    def init(self) -> None:
        """The schema is created when the store is opened (CREATE ... IF NOT EXISTS, idempotent); the
        statistics the planner needs are refreshed here."""
        conn = self._conn()
        with self._writer_lock:
            self._stats.refresh_if_grown(conn)

    def describe(self) -> list[str]:
        conn = self._conn()
        resources = conn.execute("SELECT count(*) FROM resource").fetchone()[0]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        return [f"SQLite store ready at {self.path} ({mode}, synchronous={self.synchronous}, "
                f"{resources} resources)", f"blobs: {self.blobs.root}"]

    def put_record(self, kind, key, value, expires_at=None):
        self._records.put(kind, key, value, expires_at)

    def add_record(self, kind, key, value, expires_at=None):
        return self._records.add(kind, key, value, expires_at)

    def get_record(self, kind, key):
        return self._records.get(kind, key)

    def commit_stamp(self):
        return None if self._conn().in_transaction else self._read_cache.stamp()

    def take_record(self, kind, key):
        return self._records.take(kind, key)

    def delete_record(self, kind, key):
        self._records.delete(kind, key)

    def list_records(self, kind):
        return self._records.list(kind)

    def expunge(self, type, versions):
        n = 0
        with self.transaction() as tx:
            for id_, version in versions:
                row = tx.conn.execute("SELECT rid FROM resource WHERE type = ? AND id = ?", (type, id_)).fetchone()
                if row is None:
                    continue
                n += tx.conn.execute("DELETE FROM version WHERE rid = ? AND version = ?", (row[0], version)).rowcount
                if tx.conn.execute("SELECT 1 FROM version WHERE rid = ? LIMIT 1", (row[0],)).fetchone() is None:
                    write_rows(tx.conn, tx.param_ids, row[0], {}, replace=True)
                    tx.conn.execute("DELETE FROM resource WHERE rid = ?", (row[0],))
        return n

    def quality_counts(self, custodian=None, type=None):
        return sqlite_quality.counts(self._conn(), custodian, type)

    def quality_clear(self):
        with self.unit() as tx:
            sqlite_quality.clear(tx.conn)

    def referenced_blobs(self) -> set[str]:
        return {k for (k,) in self._conn().execute("SELECT DISTINCT blob FROM version WHERE blob IS NOT NULL")}

    def analyze(self) -> None:
        """Refresh planner statistics now (after bulk loads)."""
        with self._writer_lock:
            self._stats.refresh(self._conn())

    # Connections are per thread and per process (gunicorn forks after import).
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None,
                                   check_same_thread=True)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute(f"PRAGMA cache_size=-{self.page_cache_kib}")     # grows only as pages are used
            conn.execute("PRAGMA foreign_keys=ON")
            conn.create_function("haversine_km", 4, haversine_km, deterministic=True)
            # a search's statements stop at its deadline (search/limits.py); no deadline, no effect
            conn.set_progress_handler(search_limits.progress_check, search_limits.PROGRESS_STEPS)
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @contextlib.contextmanager
    def transaction(self):
        if self.open_unit() is not None:      # the writer lock is not reentrant: waiting would hang
            raise NestedUnitOfWork("A second store transaction was opened inside an open one")
        if getattr(self._local, "snapshot", False):
            raise NestedUnitOfWork("A store transaction was opened inside a read snapshot (reads only)")
        conn = self._conn()
        with self._writer_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                raise StoreUnavailable(f"The store is busy: {e}") from None
            tx = _SqliteTransaction(conn, self._param_ids.load(conn), self)
            self._local.unit = tx
            try:
                yield tx
            except BaseException:
                self._local.unit = None
                conn.execute("ROLLBACK")
                raise
            self._local.unit = None
            conn.execute("COMMIT")
            self._stats.after_write(conn, tx.writes)

    def journal_append(self, entries):
        tx = self.open_unit()
        if tx is None:          # alone: the process's side journal, no queue behind other writers
            self._side.append(entries)
        else:                   # in a unit: committed or rolled back with its writes
            tx.conn.executemany("INSERT INTO journal (id, body) VALUES (?, ?)", entries)

    def journal_read(self, limit):
        rows = self._conn().execute("SELECT seq, id, body FROM journal ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return rows + self._side.read(limit - len(rows)) if len(rows) < limit else rows

    def journal_delete(self, keys):
        own = [k for k in keys if not isinstance(k[0], tuple)]
        if own:
            with self.unit() as tx:
                tx.conn.executemany("DELETE FROM journal WHERE seq = ? AND id = ?", own)
        self._side.delete([k for k in keys if isinstance(k[0], tuple)])

    def last_write(self, type):
        return self._conn().execute("SELECT max(seq) FROM version WHERE type = ?", (type,)).fetchone()[0]

    def open_unit(self):
        unit = getattr(self._local, "unit", None)
        return unit if unit is not None and self._local.pid == os.getpid() else None

    @contextlib.contextmanager
    def snapshot(self):
        """BEGIN ... COMMIT on this thread's connection: WAL gives every statement inside one state
        (the first read fixes it); inside a write transaction, its own state."""
        conn = self._conn()
        if conn.in_transaction:
            yield
            return
        conn.execute("BEGIN")
        self._local.snapshot = True
        try:
            yield
        finally:
            self._local.snapshot = False
            if conn.in_transaction:
                conn.execute("COMMIT")

    def read(self, type, id):
        return self._read_cache.through(self._conn(), ("resource", type, id),
                                        lambda conn: _current(conn, type, id), _version_size)

    def vread(self, type, id, version):
        row = self._conn().execute(
            f"SELECT {_VERSION_COLS} FROM resource r JOIN version v ON v.rid = r.rid "
            "WHERE r.type = ? AND r.id = ? AND v.version = ?", (type, id, version)).fetchone()
        return _row(row) if row else None

    def history(self, type=None, id=None, *, since=None, limit=50, cursor=None, guard=None):
        where, args = [], []
        if type is not None:
            where.append("v.type = ?")
            args.append(type)
        if id is not None:
            where.append("r.id = ?")
            args.append(id)
        if since is not None:
            where.append("v.last_updated >= ?")
            args.append(since)
        conn = self._conn()
        with _snapshot(conn):
            if guard is not None:
                s, a = sqlite_search.guarded_rids(conn, self._param_ids.load(conn), guard, type)
                where.append(f"r.rid IN ({s})")
                args += a
            cond = " AND ".join(where) or "1"
            base = f"FROM version v JOIN resource r ON r.rid = v.rid WHERE {cond}"
            total = conn.execute(f"SELECT count(*) {base}", args).fetchone()[0]
            page_args = list(args)
            if cursor is not None:
                base += " AND v.seq < ?"
                page_args.append(_int_cursor(cursor))
            rows = conn.execute(
                f"SELECT r.type, r.id, v.version, v.last_updated, v.method, v.body, v.blob, v.seq {base} "
                "ORDER BY v.seq DESC LIMIT ?", page_args + [limit + 1]).fetchall()
        return _page(rows, limit, total)

    def type_history(self, type, *, since=None, limit=50, cursor=None, bodies=True):
        """history(type) without count. With `since`, the window is found by its time (version_time) and
        sorted: a look-back window costs its own size (the planner would rather walk version_type_seq or
        the whole table back from the newest, filtering every older row)."""
        where, args, using = ["v.type = ?"], [type], ""
        if since is not None:
            where.append("v.last_updated >= ?")
            args.append(since)
            using = " INDEXED BY version_time"
        if cursor is not None:
            where.append("v.seq < ?")
            args.append(_int_cursor(cursor))
        conn = self._conn()
        with _snapshot(conn):
            rows = conn.execute(
                f"SELECT r.type, r.id, v.version, v.last_updated, v.method, NULL, NULL, v.seq FROM version v{using} "
                f"JOIN resource r ON r.rid = v.rid WHERE {' AND '.join(where)} ORDER BY v.seq DESC LIMIT ?",
                args + [limit + 1]).fetchall()
            if bodies:          # read after the sort, by seq: sorting rows with their bodies cost more
                found: dict = {}
                for i in range(0, len(rows), 500):
                    seqs = [r[7] for r in rows[i:i + 500]]
                    found.update((seq, (body, blob)) for seq, body, blob in conn.execute(
                        f"SELECT seq, body, blob FROM version WHERE seq IN ({', '.join('?' * len(seqs))})", seqs))
                rows = [r[:5] + found[r[7]] + r[7:] for r in rows]
        return _page(rows, limit, None)

    def search(self, type, query, *, sort=(), limit=50, cursor=None, total="accurate", guard=None):
        conn = self._conn()
        with _snapshot(conn):
            return sqlite_search.search(conn, self._param_ids.load(conn), type, query, sort=sort, limit=limit,
                                        cursor=cursor, total=total, row_to_version=_row, guard=guard)

    def includes(self, items, specs, guard=None):
        conn = self._conn()
        with _snapshot(conn):      # every round of :iterate sees one state (the search's, inside snapshot())
            return sqlite_search.includes(conn, self._param_ids.load(conn), items, specs, _row, guard)

    def reindex(self, rows_for, batch=500, progress=None):
        conn, done, last = self._conn(), 0, 0
        ids = self._param_ids.load(conn)
        while True:
            rows = conn.execute(
                "SELECT r.rid, r.type, v.body FROM resource r JOIN version v ON v.rid = r.rid "
                "AND v.version = r.version WHERE r.deleted = 0 AND r.rid > ? ORDER BY r.rid LIMIT ?",
                (last, batch)).fetchall()
            if not rows:
                return done
            prepared = [(rid, rows_for(rtype, body)) for rid, rtype, body in rows]
            with self.transaction():   # one batch at a time: writers are never blocked for long
                for rid, index in prepared:
                    write_rows(conn, ids, rid, index, replace=True)
            done += len(rows)
            last = rows[-1][0]
            if progress:
                progress(done)

    def ping(self):
        try:
            self._conn().execute("SELECT 1").fetchone()
        except sqlite3.Error as e:
            raise StoreUnavailable(f"SQLite store unavailable: {e}") from None

    def close(self):
        self._side.close()
        self._read_cache.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class WriterLock:
    """Queues writers fairly: a thread lock within the process, flock(2) across processes.

    SQLite's own busy handler polls with sleeps of up to 100 ms, which gives
    contended writers long tail latencies; a kernel lock wakes the next writer
    at once. The kernel drops the lock if its process dies.
    """

    def __init__(self, path: str, timeout_s: float = 30.0):
        self.path = path
        self.timeout_s = timeout_s
        self._thread_lock = threading.Lock()
        self._fd = None
        self._pid = None

    def __enter__(self):
        deadline = time.monotonic() + self.timeout_s
        if not self._thread_lock.acquire(timeout=self.timeout_s):
            raise StoreUnavailable(f"The store's writer was busy for {self.timeout_s:g} s; try again")
        try:
            if self._pid != os.getpid():   # a forked worker needs its own open file
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                self._pid = os.getpid()
            self._flock(deadline)
        except BaseException:
            self._thread_lock.release()
            raise
        return self

    def _flock(self, deadline: float) -> None:
        """The cross-process lock, waited for until the deadline (a stuck process answers 503, never a hang)."""
        pause = 0.0005
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreUnavailable(f"The store's writer was busy for {self.timeout_s:g} s; try again") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.002)

    def __exit__(self, *exc):
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()


class _SqliteTransaction(Transaction):
    def __init__(self, conn: sqlite3.Connection, param_ids: dict[str, int], store: Store):
        self.conn = conn
        self.store = store      # the store it belongs to (Transaction.store)
        self.param_ids = param_ids
        self.writes = 0

    def read(self, type, id):
        row = self.conn.execute(_CURRENT + " WHERE r.type = ? AND r.id = ?", (type, id)).fetchone()
        return _row(row) if row else None

    def vread(self, type, id, version):
        row = self.conn.execute(f"SELECT {_VERSION_COLS} FROM resource r JOIN version v ON v.rid = r.rid "
                                "WHERE r.type = ? AND r.id = ? AND v.version = ?", (type, id, version)).fetchone()
        return _row(row) if row else None

    def existing(self, type, ids):
        found: set[str] = set()
        for i in range(0, len(ids), 500):        # well under SQLite's bound on parameters
            chunk = list(ids[i:i + 500])
            found.update(r[0] for r in self.conn.execute(
                f"SELECT id FROM resource WHERE type = ? AND id IN ({', '.join('?' * len(chunk))})", [type, *chunk]))
        return found

    def search(self, type, query, limit, guard=None):
        return sqlite_search.matches_in_tx(self.conn, self.param_ids, type, query, limit, _row, guard)

    def write(self, w: Write) -> Version:
        current = self.conn.execute("SELECT rid, version FROM resource WHERE type = ? AND id = ?",
                                    (w.type, w.id)).fetchone()
        check_expected(current[1] if current else 0, w)
        deleted = 1 if w.method == "DELETE" else 0
        if current:
            rid = current[0]
            self.conn.execute("UPDATE resource SET version = ?, deleted = ?, last_updated = ? WHERE rid = ?",
                              (w.version, deleted, w.last_updated, rid))
        else:
            rid = self.conn.execute(
                "INSERT INTO resource (type, id, version, deleted, last_updated) VALUES (?, ?, ?, ?, ?)",
                (w.type, w.id, w.version, deleted, w.last_updated)).lastrowid
        self.conn.execute(
            "INSERT INTO version (rid, version, type, last_updated, method, body, blob) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (rid, w.version, w.type, w.last_updated, w.method, w.body, w.blob))
        write_rows(self.conn, self.param_ids, rid, {} if deleted else w.index, replace=current is not None)
        self.writes += 1
        return Version(w.type, w.id, w.version, w.last_updated, w.method, w.body, w.blob)

    def quality_row(self, type, id):
        return sqlite_quality.get(self.conn, type, id)

    def put_quality_row(self, type, id, row):
        sqlite_quality.put(self.conn, type, id, row)

    def quality_referrers(self, patient_id):
        return sqlite_quality.referrers(self.conn, patient_id)

    def claim(self, kind, key, owner):
        # the writer lock serialises transactions: no other claim can slip between these statements
        self.conn.execute("INSERT OR IGNORE INTO claim (kind, key, owner) VALUES (?, ?, ?)", (kind, key, owner))
        return self.conn.execute("SELECT owner FROM claim WHERE kind = ? AND key = ?", (kind, key)).fetchone()[0]


@contextlib.contextmanager
def _snapshot(conn: sqlite3.Connection):
    """Several statements that must see one state: a read transaction, unless this thread is already
    inside a write transaction (reads in a transaction Bundle see its own writes)."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def _page(rows, limit: int, total) -> Page:
    """rows were fetched with LIMIT limit+1; the extra row only says that a next page exists."""
    items = rows[:limit]
    more = len(rows) > limit and items
    return Page([_row(r) for r in items], str(items[-1][7]) if more else None, total)


def _int_cursor(cursor: str) -> int:
    """A history cursor: the seq of the last version shown (bounded: bounds.py)."""
    return parse_int(cursor, "The paging cursor _cursor")
