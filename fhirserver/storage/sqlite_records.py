"""Small JSON records in the SQLite store (auth state and jobs), shared by every worker process.

Expired records are invisible at once and swept opportunistically on writes.
"""
from __future__ import annotations

import json
import time

SCHEMA = """
CREATE TABLE IF NOT EXISTS record (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    expires_at REAL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS record_expiry ON record (expires_at) WHERE expires_at IS NOT NULL;
"""

_LIVE = "(expires_at IS NULL OR expires_at > ?)"


def _row_size(row) -> int:
    return 100 + (len(row[0]) if row is not None else 0)


class Records:
    """Record operations on an SQLite store; writes join the thread's open unit of work (they commit or
    roll back with it) or run in a transaction of their own."""

    def __init__(self, store):
        self.store = store

    def put(self, kind, key, value, expires_at=None):
        with self.store.unit() as tx:
            tx.conn.execute("INSERT OR REPLACE INTO record VALUES (?, ?, ?, ?)",
                            (kind, key, json.dumps(value), expires_at))
            _sweep(tx.conn)

    def add(self, kind, key, value, expires_at=None) -> bool:
        with self.store.unit() as tx:
            now = time.time()
            tx.conn.execute("DELETE FROM record WHERE kind = ? AND key = ? AND expires_at <= ?", (kind, key, now))
            cur = tx.conn.execute("INSERT OR IGNORE INTO record VALUES (?, ?, ?, ?)",
                                  (kind, key, json.dumps(value), expires_at))
            _sweep(tx.conn)
            return cur.rowcount == 1

    def get(self, kind, key):
        row = self.store._read_cache.through(self.store._conn(), ("record", kind, key), lambda conn: conn.execute(
            "SELECT value, expires_at FROM record WHERE kind = ? AND key = ?", (kind, key)).fetchone(), _row_size)
        if row is None or (row[1] is not None and row[1] <= time.time()):     # _LIVE: expired is absent
            return None
        return json.loads(row[0])

    def take(self, kind, key):
        with self.store.unit() as tx:
            row = tx.conn.execute(f"SELECT value FROM record WHERE kind = ? AND key = ? AND {_LIVE}",
                                  (kind, key, time.time())).fetchone()
            tx.conn.execute("DELETE FROM record WHERE kind = ? AND key = ?", (kind, key))
            return json.loads(row[0]) if row else None

    def delete(self, kind, key):
        with self.store.unit() as tx:
            tx.conn.execute("DELETE FROM record WHERE kind = ? AND key = ?", (kind, key))

    def list(self, kind):
        rows = self.store._conn().execute(
            f"SELECT key, value FROM record WHERE kind = ? AND {_LIVE} ORDER BY key", (kind, time.time()))
        return [(k, json.loads(v)) for k, v in rows]


def _sweep(conn, limit: int = 100) -> None:
    """Delete a few expired records (bounded, so a write never pays for a large backlog)."""
    conn.execute("DELETE FROM record WHERE (kind, key) IN "
                 "(SELECT kind, key FROM record WHERE expires_at <= ? LIMIT ?)", (time.time(), limit))
