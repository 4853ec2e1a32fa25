"""Search index tables of the SQLite store: one table per parameter type.

Every row is (rid, param, grp, <kind columns>); `param` is a small integer for
the parameter key ('Observation.code') from the search_param table, `grp` the
element instance where a composite reads the rows (Observation.component[i] for
component-code-value-quantity), 0 otherwise (search/extract.py). Each table has a
lookup index led by (param, value columns...) to drive searches, and one on
(rid, param) for probes, sorting, _include and replacement on update.
Layout and plans: docs/search.md.
"""
from __future__ import annotations

import sqlite3

from ..search.extract import composite_layout
from ..search.kinds import KIND_MODULES
from ..search.kinds.quantity_kind import canonical_columns
from ..search.registry import all_params, lookup
from ..search.ucum import UCUM

# Indexes led by (param, ...), from each kind's LOOKUP. The sort columns end in rid (DESC for
# descending sorts, scanned backwards), so a sorted search can walk them in exactly the order it
# returns, ties included.
LOOKUP_INDEXES = {kind: module.LOOKUP for kind, module in KIND_MODULES.items()}
_AFFINITY = {"low": "NUMERIC", "high": "NUMERIC", "clow": "NUMERIC", "chigh": "NUMERIC", "lat": "REAL", "lon": "REAL"}


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


def missing_columns(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(kind, column) of the columns a kind gained since this store's tables were created."""
    out = []
    for kind, module in KIND_MODULES.items():
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table(kind)})")}
        out += [(kind, c) for c in module.COLUMNS if have and c not in have]     # no table: schema() makes it
    return out


def add_columns(conn: sqlite3.Connection, missing: list[tuple[str, str]]) -> None:
    """Add the missing columns, inside the caller's write transaction, before schema() indexes them.
    quantity's canon, clow, chigh (UCUM canonical units) are then filled from each row's own columns,
    exactly as extraction fills them (quantity_kind.canonical_columns): no resource is read again."""
    for kind, c in missing:
        conn.execute(f"ALTER TABLE {table(kind)} ADD COLUMN {c} {_AFFINITY.get(c, 'TEXT')}")
    if ("quantity", "canon") in missing:
        rows = conn.execute(f"SELECT rowid, system, code, low, high FROM {table('quantity')} WHERE system = ?",
                            (UCUM,)).fetchall()
        conn.executemany(f"UPDATE {table('quantity')} SET canon = ?, clow = ?, chigh = ? WHERE rowid = ?",
                         [canonical_columns(s, c, lo, hi) + (rowid,) for rowid, s, c, lo, hi in rows])
        conn.execute(f"UPDATE {table('quantity')} SET canon = '' WHERE canon IS NULL")


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


_INSERT = {kind: f"INSERT INTO {table(kind)} VALUES ({', '.join('?' * (3 + len(module.COLUMNS)))})"
           for kind, module in KIND_MODULES.items()}
_DELETE = [f"DELETE FROM {table(kind)} WHERE rid = ?" for kind in KIND_MODULES]


def write_rows(conn: sqlite3.Connection, ids: dict[str, int], rid: int, rows: dict, replace: bool) -> None:
    """Replace a resource's index rows (inside the caller's write transaction)."""
    if replace:
        for sql in _DELETE:
            conn.execute(sql, (rid,))
    for kind, kind_rows in rows.items():
        conn.executemany(_INSERT[kind], [(rid, ids[r[0]], *r[1:]) for r in kind_rows if r[0] in ids])



# store_meta 'index_layout': 1 (or absent) = every composite component copied under key#i, base rows in
# group 0; 2 = components read from their base parameter's rows, numbered by element (search/extract.py)
LAYOUT = 2


def layout(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT value FROM store_meta WHERE key = 'index_layout'").fetchone()
    return row[0] if row else None


def upgrade(conn: sqlite3.Connection, ids: dict[str, int]) -> bool:
    """Bring the index rows of a store written with layout 1 to LAYOUT, inside the caller's write
    transaction; False if there was nothing to do. The copies under key#i hold exactly the base
    parameter's values, numbered by element (tests/search/test_composite_layout.py), so each base
    parameter's rows are replaced by one set of its copies, renamed, and the other copies dropped:
    no resource is read again and nothing else changes."""
    if layout(conn) == LAYOUT:
        return False
    if conn.execute("SELECT 1 FROM resource LIMIT 1").fetchone() is not None:
        for base, copies in sorted(shared_copies().items()):
            t = table(lookup(*base.split(".", 1)).kind)
            conn.execute(f"DELETE FROM {t} WHERE param = ?", (ids[base],))
            conn.execute(f"UPDATE {t} SET param = ? WHERE param = ?", (ids[base], ids[copies[0]]))
            conn.executemany(f"DELETE FROM {t} WHERE param = ?", [(ids[c],) for c in copies[1:]])
    conn.execute("INSERT OR REPLACE INTO store_meta (key, value) VALUES ('index_layout', ?)", (LAYOUT,))
    return True


def shared_copies() -> dict[str, list[str]]:
    """{base key: the key#i copies layout 1 wrote of it} for every component read from base rows."""
    out: dict[str, list[str]] = {}
    for rtype in all_params():
        for ckey, keys in composite_layout(rtype).keys.items():
            for i, key in enumerate(keys):
                if key != f"{ckey}#{i}":
                    out.setdefault(key, []).append(f"{ckey}#{i}")
    return out
