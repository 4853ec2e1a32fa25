"""Search index tables of the SQLite store: one table per parameter type.

Every row is (rid, param, grp, <kind columns>); `param` is a small integer for
the parameter key ('Observation.code') from the search_param table, `grp` the
element instance for composite components (0 otherwise). Each table has a
lookup index led by (param, value columns...) to drive searches, and one on
(rid, param) for probes, sorting, _include and replacement on update.
Layout and plans: docs/search.md.
"""
from __future__ import annotations

import sqlite3

from ..search.kinds import KIND_MODULES
from ..search.registry import all_params

# Indexes led by (param, ...), from each kind's LOOKUP. The sort columns end in rid (DESC for
# descending sorts, scanned backwards), so a sorted search can walk them in exactly the order it
# returns, ties included.
LOOKUP_INDEXES = {kind: module.LOOKUP for kind, module in KIND_MODULES.items()}
_AFFINITY = {"low": "NUMERIC", "high": "NUMERIC", "lat": "REAL", "lon": "REAL"}


def table(kind: str) -> str:
    return f"idx_{kind}"


def schema() -> str:
    out = ["CREATE TABLE IF NOT EXISTS search_param (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);"]
    for kind, module in KIND_MODULES.items():
        cols = ", ".join(f"{c} {_AFFINITY.get(c, 'TEXT')}" for c in module.COLUMNS)
        t = table(kind)
        out.append(f"CREATE TABLE IF NOT EXISTS {t} (rid INTEGER NOT NULL, param INTEGER NOT NULL, "
                   f"grp INTEGER NOT NULL, {cols});")
        for cols_ in LOOKUP_INDEXES[kind]:
            name = f"{t}_{'_'.join(c.replace(' ', '_').lower() for c in cols_)}"
            out.append(f"CREATE INDEX IF NOT EXISTS {name} ON {t} (param, {', '.join(cols_)});")
        out.append(f"CREATE INDEX IF NOT EXISTS {t}_rid ON {t} (rid, param);")
    return "\n".join(out)


def all_keys() -> list[str]:
    """Every index key any parameter can produce (composite components and modifier rows included)."""
    keys = []
    for params in all_params().values():
        for p in params.values():
            keys.append(p.key)
            if p.kind == "reference":
                keys.append(p.key + ":identifier")
            if p.kind == "token" and p.code == "identifier":
                keys.append(p.key + ":of-type")
            if p.kind == "composite":
                keys += [f"{p.key}#{i}" for i in range(len(p.components))]
    return keys


class ParamIds:
    """The key -> integer mapping, filled once per database and cached per process."""

    def __init__(self):
        self._ids: dict[str, int] | None = None

    def load(self, conn: sqlite3.Connection) -> dict[str, int]:
        if self._ids is None:
            rows = conn.execute("SELECT key, id FROM search_param").fetchall()
            ids = dict(rows)
            missing = [k for k in all_keys() if k not in ids]
            if missing:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany("INSERT OR IGNORE INTO search_param (key) VALUES (?)", [(k,) for k in missing])
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                ids = dict(conn.execute("SELECT key, id FROM search_param").fetchall())
            self._ids = ids
        return self._ids

    def id(self, conn, key: str) -> int:
        """-1 for a key no row can have (the condition then matches nothing)."""
        return self.load(conn).get(key, -1)


def write_rows(conn: sqlite3.Connection, ids: dict[str, int], rid: int, rows: dict, replace: bool) -> None:
    """Replace a resource's index rows (inside the caller's write transaction)."""
    if replace:
        for kind in KIND_MODULES:
            conn.execute(f"DELETE FROM {table(kind)} WHERE rid = ?", (rid,))
    for kind, kind_rows in rows.items():
        module = KIND_MODULES[kind]
        placeholders = ", ".join("?" * (3 + len(module.COLUMNS)))
        conn.executemany(f"INSERT INTO {table(kind)} VALUES ({placeholders})",
                         [(rid, ids[r[0]], r[1]) + tuple(r[2:]) for r in kind_rows if r[0] in ids])

