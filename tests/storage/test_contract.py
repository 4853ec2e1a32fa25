"""Every store honours the storage contract (fhirserver/storage/base.py): the same tests run on
SQLite and on MongoDB (the `backend` fixture in tests/conftest.py)."""
from __future__ import annotations

import time

import pytest

from fhirserver.errors import BadRequest, PayloadTooLarge, VersionConflict
from fhirserver.search import query as q
from fhirserver.search.kinds.token_kind import Code
from fhirserver.storage import open_store
from fhirserver.storage.base import Write


@pytest.fixture
def store(settings):
    s = open_store(settings)
    yield s
    s.close()


def write(store, id, version, method="PUT", body=b'{"resourceType":"Patient"}', tokens=()):
    with store.transaction() as tx:
        return tx.write(Write("Patient", id, version, f"2026-01-01T00:00:0{version}.000000Z", method,
                              None if method == "DELETE" else body, {"token": list(tokens)}))


def tok(system, code):
    return q.Match("token", "Patient.identifier", Code(system, code))


def test_versions_are_consecutive_and_history_keeps_all(store):
    write(store, "a", 1)
    write(store, "a", 2, body=b'{"resourceType":"Patient","active":true}')
    assert store.read("Patient", "a").version == 2
    assert store.vread("Patient", "a", 1).body == b'{"resourceType":"Patient"}'
    page = store.history("Patient", "a")
    assert [v.version for v in page.items] == [2, 1] and page.total == 2


def test_expected_version_is_enforced(store):
    write(store, "a", 1)
    with pytest.raises(VersionConflict):
        write(store, "a", 1)       # a second "first version"
    with pytest.raises(VersionConflict):
        write(store, "a", 3)       # skipping a version
    assert store.read("Patient", "a").version == 1


def test_failed_transaction_leaves_nothing(store):
    with pytest.raises(VersionConflict):
        with store.transaction() as tx:
            tx.write(Write("Patient", "x", 1, "2026-01-01T00:00:00.000000Z", "PUT", b"{}", {}))
            tx.write(Write("Patient", "y", 5, "2026-01-01T00:00:00.000000Z", "PUT", b"{}", {}))
    assert store.read("Patient", "x") is None
    assert store.history().total == 0


def test_delete_is_a_version_and_hides_from_search(store):
    write(store, "a", 1, tokens=[("Patient.identifier", 0, "http://s", "1", None)])
    write(store, "a", 2, method="DELETE")
    current = store.read("Patient", "a")
    assert current.deleted and current.body is None
    assert store.search("Patient", q.And((tok("http://s", "1"),))).items == []
    write(store, "a", 3)   # update-as-create after delete continues the version chain
    assert store.read("Patient", "a").version == 3


def test_token_search_forms(store):
    write(store, "a", 1, tokens=[("Patient.identifier", 0, "http://s", "1", None)])
    write(store, "b", 1, tokens=[("Patient.identifier", 0, "", "1", None)])
    ids = lambda node: sorted(v.id for v in store.search("Patient", q.And((node,))).items)
    assert ids(tok(None, "1")) == ["a", "b"]
    assert ids(tok("http://s", "1")) == ["a"]
    assert ids(tok("", "1")) == ["b"]
    assert ids(tok("http://s", None)) == ["a"]
    assert ids(q.IdIn(("b", "zz"))) == ["b"]


def test_hostile_values_are_data(store):
    write(store, "a", 1, tokens=[("Patient.identifier", 0, "s", "x' OR '1'='1", None)])
    assert [v.id for v in store.search("Patient", q.And((tok(None, "x' OR '1'='1"),))).items] == ["a"]
    assert store.search("Patient", q.And((q.IdIn(("' OR 1=1 --",)),))).items == []


def test_history_paging_is_stable_under_writes(store):
    for i in range(5):
        write(store, f"p{i}", 1)
    first = store.history(limit=2)
    write(store, "late", 1)   # a write between pages must not shift the next page
    second = store.history(limit=2, cursor=first.next_cursor)
    assert [v.id for v in first.items] == ["p4", "p3"]
    assert [v.id for v in second.items] == ["p2", "p1"]
    with pytest.raises(BadRequest):
        store.history(cursor="nonsense")


def test_history_since(store):
    write(store, "a", 1)
    write(store, "a", 2)
    assert [v.version for v in store.history(since="2026-01-01T00:00:02.000000Z").items] == [2]


def test_type_history_is_history_of_a_type_with_or_without_bodies(store):
    for i in range(7):
        write(store, f"p{i}", 1)
    write(store, "p2", 2)
    write(store, "p2", 3, method="DELETE")
    with store.transaction() as tx:
        tx.write(Write("Observation", "o", 1, "2026-01-01T00:00:09.000000Z", "PUT", b"{}", {}))
    for since, n in ((None, 9), ("2026-01-01T00:00:02.000000Z", 2)):
        want, cursor = [], None
        while True:
            page = store.history("Patient", since=since, limit=3, cursor=cursor)
            want += [(v.type, v.id, v.version, v.last_updated, v.method) for v in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        for bodies in (False, True):
            got, cursor = [], None
            while True:
                page = store.type_history("Patient", since=since, limit=3, cursor=cursor, bodies=bodies)
                got += [(v.type, v.id, v.version, v.last_updated, v.method) for v in page.items]
                if bodies:
                    assert [v.body for v in page.items] == [
                        None if v.method == "DELETE" else store.vread("Patient", v.id, v.version).body for v in page.items]
                else:
                    assert all(v.body is None for v in page.items)
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            assert got == want and len(got) == n, since
        assert got[0] == ("Patient", "p2", 3, "2026-01-01T00:00:03.000000Z", "DELETE")


def test_blobs_stream_and_limit(store):
    info = store.blobs.put(iter([b"abc", b"def"]), max_bytes=10)
    assert info.size == 6 and store.blobs.open(info.key).read() == b"abcdef"
    with pytest.raises(PayloadTooLarge):
        store.blobs.put(iter([b"x" * 8, b"y" * 8]), max_bytes=10)
    assert info.key in set(store.blobs.keys())


def test_large_blobs_stream_in_chunks_and_seek(store):
    chunk = bytes(range(256)) * 1024                      # 256 KiB per chunk, 1.25 MiB in all
    info = store.blobs.put(iter([chunk] * 5), max_bytes=10 * 1024 * 1024)
    assert info.size == 5 * len(chunk) and store.blobs.size(info.key) == info.size
    f = store.blobs.open(info.key)
    f.seek(len(chunk) * 3 + 7)
    assert f.read(3) == chunk[7:10]
    store.blobs.delete(info.key)
    assert info.key not in set(store.blobs.keys())


def test_records_expire_and_are_single_use(store):
    store.put_record("code", "c1", {"v": 1}, expires_at=__import__("time").time() + 60)
    assert store.get_record("code", "c1") == {"v": 1}
    assert store.add_record("code", "c1", {"v": 2}) is False          # an unexpired record is kept
    assert store.take_record("code", "c1") == {"v": 1} and store.take_record("code", "c1") is None
    store.put_record("code", "old", {"v": 3}, expires_at=1.0)         # long expired
    assert store.get_record("code", "old") is None and store.add_record("code", "old", {"v": 4}) is True
    assert [k for k, _v in store.list_records("code")] == ["old"]


def test_any_record_answers_for_every_pair_at_once(store):
    soon = time.time() + 60
    store.put_record("revoked-jti", "j1", {}, expires_at=soon)
    store.put_record("revoked-grant", "g1", {}, expires_at=soon)
    store.put_record("revoked-grant", "gone", {}, expires_at=1.0)      # long expired
    assert store.any_record([("revoked-jti", "j1"), ("revoked-grant", "nope")])
    assert store.any_record([("revoked-jti", "nope"), ("revoked-grant", "g1")])
    assert not store.any_record([("revoked-jti", "g1"), ("revoked-grant", "j1")])     # keys are per kind
    assert not store.any_record([("revoked-jti", "nope"), ("revoked-grant", "gone")])
    assert store.any_record([("revoked-jti", "j1")]) and not store.any_record([])


def test_claims_are_unique_permanent_and_part_of_the_transaction(store):
    with store.transaction() as tx:
        assert tx.claim("uhid", "11-1111-1111-1111", "p1") == "p1"
        assert tx.claim("uhid", "11-1111-1111-1111", "p1") == "p1"        # already theirs
        assert tx.claim("uhid", "11-1111-1111-1111", "p2") == "p1"        # in the same unit too
    with store.transaction() as tx:
        assert tx.claim("uhid", "11-1111-1111-1111", "p2") == "p1"        # never released
        assert tx.claim("other-kind", "11-1111-1111-1111", "p2") == "p2"  # keys are per kind
    with pytest.raises(VersionConflict):
        with store.transaction() as tx:
            assert tx.claim("uhid", "22-2222-2222-2222", "p3") == "p3"
            tx.write(Write("Patient", "x", 2, "2026-01-01T00:00:00.000000Z", "PUT", b"{}"))   # fails: no v1
    with store.transaction() as tx:                                       # the failed unit's claim is gone
        assert tx.claim("uhid", "22-2222-2222-2222", "p4") == "p4"


def test_vread_inside_a_transaction_sees_its_writes(store):
    write(store, "a", 1)
    with store.transaction() as tx:
        tx.write(Write("Patient", "a", 2, "2026-01-01T00:00:02.000000Z", "PUT", b'{"resourceType":"Patient","v":2}'))
        assert tx.vread("Patient", "a", 1).body == b'{"resourceType":"Patient"}'
        assert tx.vread("Patient", "a", 2).body == b'{"resourceType":"Patient","v":2}'
        assert tx.vread("Patient", "a", 3) is None
