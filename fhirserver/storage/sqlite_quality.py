"""The SQLite store's quality facts (fhirserver/quality/, docs/data-quality.md): one facts row per current
resource, the Patients each row refers to, and counters per (custodian, type, dimension, key), all
written on the write transaction's own connection (they commit or roll back with the change).

The diff rule (storage/base.py Transaction.put_quality_row) is the same in both stores: quality_diff.
"""
from __future__ import annotations

import json
import sqlite3

from .quality_diff import counter_deltas, subject_changes

SCHEMA = """
CREATE TABLE IF NOT EXISTS quality_fact (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    row TEXT NOT NULL,                -- the facts row (JSON: quality/facts.py)
    PRIMARY KEY (type, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quality_subject (   -- the Patients a facts row refers to (its "subjects")
    patient TEXT NOT NULL,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (patient, type, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quality_count (
    custodian TEXT NOT NULL,
    type TEXT NOT NULL,
    dim TEXT NOT NULL,
    key TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (custodian, type, dim, key)
) WITHOUT ROWID;
"""


def get(conn: sqlite3.Connection, rtype: str, id: str) -> dict | None:
    found = conn.execute("SELECT row FROM quality_fact WHERE type = ? AND id = ?", (rtype, id)).fetchone()
    return json.loads(found[0]) if found else None


def put(conn: sqlite3.Connection, rtype: str, id: str, row: dict | None) -> None:
    old = get(conn, rtype, id)
    for (custodian, type_, dim, key), n in counter_deltas(old, row).items():
        conn.execute("INSERT INTO quality_count (custodian, type, dim, key, n) VALUES (?, ?, ?, ?, ?) "
                     "ON CONFLICT (custodian, type, dim, key) DO UPDATE SET n = n + excluded.n",
                     (custodian, type_, dim, key, n))
        if n < 0:
            conn.execute("DELETE FROM quality_count WHERE custodian = ? AND type = ? AND dim = ? AND key = ? "
                         "AND n <= 0", (custodian, type_, dim, key))
    gone, added = subject_changes(old, row)
    conn.executemany("DELETE FROM quality_subject WHERE patient = ? AND type = ? AND id = ?",
                     [(p, rtype, id) for p in gone])
    conn.executemany("INSERT OR IGNORE INTO quality_subject (patient, type, id) VALUES (?, ?, ?)",
                     [(p, rtype, id) for p in added])
    if row is None:
        conn.execute("DELETE FROM quality_fact WHERE type = ? AND id = ?", (rtype, id))
    else:
        conn.execute("INSERT OR REPLACE INTO quality_fact (type, id, row) VALUES (?, ?, ?)",
                     (rtype, id, json.dumps(row, separators=(",", ":"))))


def referrers(conn: sqlite3.Connection, patient: str) -> list[tuple[str, str, dict]]:
    rows = conn.execute("SELECT f.type, f.id, f.row FROM quality_subject s JOIN quality_fact f "
                        "ON f.type = s.type AND f.id = s.id WHERE s.patient = ?", (patient,)).fetchall()
    return [(t, i, json.loads(r)) for t, i, r in rows]


def counts(conn: sqlite3.Connection, custodian: str | None, rtype: str | None) -> list[tuple]:
    where, args = [], []
    if custodian is not None:
        where.append("custodian = ?")
        args.append(custodian)
    if rtype is not None:
        where.append("type = ?")
        args.append(rtype)
    sql = "SELECT custodian, type, dim, key, n FROM quality_count" + (" WHERE " + " AND ".join(where) if where else "")
    return [tuple(r) for r in conn.execute(sql, args) if r[4] > 0]


def clear(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM quality_fact")
    conn.execute("DELETE FROM quality_subject")
    conn.execute("DELETE FROM quality_count")
