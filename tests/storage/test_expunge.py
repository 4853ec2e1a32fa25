"""Store.expunge: server maintenance (audit retention) removes versions, and a resource with none left
(its index rows too)."""
from __future__ import annotations

from fhirserver.search import query as q
from fhirserver.search.kinds.token_kind import Code
from fhirserver.storage import open_store
from fhirserver.storage.base import Write


def _write(store, id_, version, code):
    with store.transaction() as tx:
        tx.write(Write("Patient", id_, version, f"2026-01-01T00:00:0{version}.000000Z", "PUT",
                       b'{"resourceType":"Patient"}', {"token": [("Patient.identifier", 0, "http://s", code, None)]}))


def _found(store, code):
    return sorted(v.id for v in store.search("Patient", q.And((q.Match("token", "Patient.identifier",
                                                                        Code("http://s", code)),))).items)


def test_expunge_removes_versions_then_the_resource(settings):
    store = open_store(settings)
    _write(store, "a", 1, "1")
    _write(store, "a", 2, "1")
    _write(store, "b", 1, "1")
    assert store.expunge("Patient", [("a", 1), ("zz", 1)]) == 1
    assert store.vread("Patient", "a", 1) is None and store.read("Patient", "a").version == 2
    assert _found(store, "1") == ["a", "b"]
    assert store.expunge("Patient", [("a", 2)]) == 1
    assert store.read("Patient", "a") is None and _found(store, "1") == ["b"]
    assert [v.id for v in store.history("Patient").items] == ["b"]
    store.close()
