"""A SQLite store created before quantity rows carried UCUM canonical units (canon, clow, chigh) gets
the columns when opened, filled in place from each row's own columns (sqlite_index.add_columns):
afterwards its rows are exactly those a fresh store writes, and canonical-unit searches find them.
`medport reindex` (Store.reindex) writes them on both stores (how a MongoDB store gets them)."""
from __future__ import annotations

import sqlite3

import pytest

from fhirserver.jsonio import dumps, loads
from fhirserver.search.extract import extract
from fhirserver.search.kinds import quantity_kind
from fhirserver.search.parse import parse_search
from fhirserver.storage import open_store
from fhirserver.storage.base import Write
from fhirserver.storage.sqlite import SqliteStore
from tests.conftest import STORES, make_settings

UCUM = "http://unitsofmeasure.org"
VALUES = [("1500", "mg/dL"), ("0.0054", "g"), ("37", "Cel"), ("5", "[IU]/L"), ("2", "{score}"), ("7", "mg")]


def _observations():
    out = []
    for i, (value, code) in enumerate(VALUES):
        q = {"value": float(value) if "." in value else int(value), "unit": code, "code": code,
             "system": UCUM if i < 5 else "urn:local"}
        out.append({"resourceType": "Observation", "id": f"o{i}", "status": "final",
                    "code": {"text": "x"}, "valueQuantity": q})
    return out


def _store(path) -> SqliteStore:
    store = SqliteStore(str(path), synchronous="NORMAL")
    with store.transaction() as tx:
        for r in _observations():
            tx.write(Write("Observation", r["id"], 1, "2026-01-01T00:00:00.000000Z", "PUT", b"{}", extract(r)))
    return store


def _rows(path):
    with sqlite3.connect(str(path)) as conn:
        return sorted(conn.execute("SELECT q.*, r.id FROM idx_quantity q JOIN resource r ON r.rid = q.rid")
                      .fetchall(), key=repr)


def _ids(store, value):
    parsed = parse_search("Observation", [("value-quantity", value)])
    return sorted(v.id for v in store.search("Observation", parsed.query, limit=100).items)


def test_old_store_gets_canonical_columns_filled_in_place(tmp_path):
    fresh, old = tmp_path / "fresh.db", tmp_path / "old.db"
    _store(fresh).close()
    _store(old).close()
    with sqlite3.connect(str(old)) as conn:       # as written before: no canonical columns at all
        conn.execute("DROP INDEX idx_quantity_canon_clow")
        for c in ("chigh", "clow", "canon"):
            conn.execute(f"ALTER TABLE idx_quantity DROP COLUMN {c}")
    assert _rows(old) != _rows(fresh)
    store = SqliteStore(str(old), synchronous="NORMAL")
    assert _rows(old) == _rows(fresh)
    assert _ids(store, f"gt1|{UCUM}|g/dL") == ["o0"]
    assert _ids(store, f"5.4|{UCUM}|mg") == ["o1"]
    assert _ids(store, f"ap310|{UCUM}|K") == ["o2"]
    assert _ids(store, f"5|{UCUM}|[IU]/L") == ["o3"]
    assert _ids(store, f"7|{UCUM}|mg") == []             # a local system: never converted
    with store.transaction() as tx:                     # and writes go on with the new columns
        r = {**_observations()[0], "id": "o9"}
        tx.write(Write("Observation", "o9", 1, "2026-01-01T00:00:00.000000Z", "PUT", b"{}", extract(r)))
    assert _ids(store, f"gt1|{UCUM}|g/dL") == ["o0", "o9"]
    store.close()
    SqliteStore(str(old), synchronous="NORMAL").close()  # opening again: nothing left to add


@pytest.mark.parametrize("backend", STORES)
def test_reindex_writes_canonical_columns(tmp_path, backend, monkeypatch):
    """A store written before (no canonical columns: extraction without them) is searched in canonical
    units after `medport reindex` (Store.reindex with extract), on both stores."""
    store = open_store(make_settings(tmp_path, backend))
    resources = _observations()
    with monkeypatch.context() as m:        # extraction as it was: no canonical form
        m.setattr(quantity_kind, "canonical_columns", lambda *_a: ("", None, None))
        with store.transaction() as tx:
            for r in resources:
                tx.write(Write("Observation", r["id"], 1, "2026-01-01T00:00:00.000000Z", "PUT", dumps(r), extract(r)))
    assert _ids(store, f"gt1|{UCUM}|g/dL") == []
    assert store.reindex(lambda _type, body: extract(loads(body))) == len(resources)
    assert _ids(store, f"gt1|{UCUM}|g/dL") == ["o0"]
    assert _ids(store, f"5.4|{UCUM}|mg") == ["o1"]
    store.close()
