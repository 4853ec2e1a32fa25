"""A SQLite store written with the earlier index layout (every composite component copied under
`<composite>#<i>`) is brought to the current one when opened (sqlite_index.upgrade): afterwards it
answers every search as a store written with the current layout does, and nothing else changed."""
from __future__ import annotations

import glob
import json
import os

from fhirserver.search.extract import extract
from fhirserver.search.matcher import Matcher
from fhirserver.search.parse import parse_search
from fhirserver.storage import sqlite_index
from fhirserver.storage.base import Write
from fhirserver.storage.sqlite import SqliteStore

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "synthea")
BASE = "http://fhir.test/fhir"
QUERIES = [
    [("component-code-value-quantity", "http://loinc.org|8480-6$gt120")],
    [("component-code-value-quantity", "http://loinc.org|8462-4$lt80")],
    [("component-code-value-quantity", "8480-6$lt80")],           # a diastolic value: only across components
    [("combo-code-value-quantity", "http://loinc.org|8480-6$gt120")],
    [("combo-code-value-quantity", "http://loinc.org|8302-2$gt150")],
    [("combo-code-value-quantity", "http://loinc.org|8302-2$gt150"), ("code", "http://loinc.org|8302-2")],
    [("code-value-quantity", "http://loinc.org|8302-2$gt150")],
    [("code-value-concept", "http://loinc.org|72166-2$http://snomed.info/sct|266919005")],
    [("code-value-string", "http://loinc.org|72166-2$never")],
    [("component-code-value-quantity:missing", "false")],
    [("code-value-date:missing", "true")],
    [("component-code", "8480-6")],
    [("code", "http://loinc.org|8302-2")],
    [("value-quantity", "gt100"), ("_sort", "-value-quantity")],
    [("combo-code", "8462-4"), ("_sort", "date")],
]


def _observations():
    out = []
    for path in sorted(glob.glob(os.path.join(DATA, "*.json")))[:3]:
        with open(path, encoding="utf-8") as f:
            for n, e in enumerate(json.load(f)["entry"]):
                r = e["resource"]
                if r["resourceType"] == "Observation":
                    out.append({**r, "id": f"{os.path.basename(path)[:6].lower()}-{n}"})
    return out


def _write(store, resources, legacy):
    with store.transaction() as tx:
        for r in resources:
            tx.write(Write("Observation", r["id"], 1, "2026-01-01T00:00:00.000000Z", "PUT", b"{}",
                           extract(r, BASE, legacy=legacy)))


def _ids(store, params):
    parsed = parse_search("Observation", params, base=BASE)
    return [v.id for v in store.search("Observation", parsed.query, sort=parsed.results.sort, limit=10000).items]


def test_old_layout_is_upgraded_on_open(tmp_path):
    resources = _observations()
    old = SqliteStore(str(tmp_path / "old.db"), synchronous="NORMAL")
    _write(old, resources, legacy=True)
    conn = old._conn()
    conn.execute("DELETE FROM store_meta WHERE key = 'index_layout'")      # as a store made before layouts
    copies = [old._param_ids.id(conn, c) for cs in sqlite_index.shared_copies().values() for c in cs]
    marks = ", ".join("?" * len(copies))
    assert conn.execute(f"SELECT count(*) FROM idx_token WHERE param IN ({marks})", copies).fetchone()[0] > 0
    old.close()

    upgraded = SqliteStore(str(tmp_path / "old.db"), synchronous="NORMAL")
    conn = upgraded._conn()
    assert sqlite_index.layout(conn) == sqlite_index.LAYOUT
    for kind in ("token", "quantity", "date"):
        assert conn.execute(f"SELECT count(*) FROM idx_{kind} WHERE param IN ({marks})", copies).fetchone()[0] == 0
    assert not sqlite_index.upgrade(conn, upgraded._param_ids.load(conn))      # once only

    fresh = SqliteStore(str(tmp_path / "new.db"), synchronous="NORMAL")
    _write(fresh, resources, legacy=False)
    matcher = Matcher(BASE)
    for r in resources:
        matcher.put(r)
    found = 0
    some = ",".join(r["id"] for r in resources[:60])       # _id drives: the composites below are probes
    probes = [[("component-code-value-quantity", "8480-6$gt100"), ("_id", some)],
              [("code-value-quantity", "http://loinc.org|8302-2$gt100"), ("_id", some)]]
    for params in QUERIES + probes:
        parsed = parse_search("Observation", params, base=BASE)
        want = matcher.search("Observation", parsed.query, parsed.results.sort)
        assert _ids(upgraded, params) == want, params
        assert _ids(fresh, params) == want, params
        found += bool(want)
    assert found >= 12
    # the rows are the new layout's, row for row (group numbers included)
    for kind in ("token", "quantity", "date", "string"):
        rows = f"SELECT r.id, i.param, i.grp, i.* FROM idx_{kind} i JOIN resource r ON r.rid = i.rid"
        a = sorted(map(repr, (x[:3] + x[6:] for x in upgraded._conn().execute(rows))))
        b = sorted(map(repr, (x[:3] + x[6:] for x in fresh._conn().execute(rows))))
        assert a == b, kind


def test_a_new_store_has_the_current_layout(tmp_path):
    store = SqliteStore(str(tmp_path / "s.db"), synchronous="NORMAL")
    assert sqlite_index.layout(store._conn()) == sqlite_index.LAYOUT
