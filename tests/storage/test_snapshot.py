"""Store.snapshot(): a search and its _include / _revinclude see one committed state (issue 13.8),
on every store; a write between them cannot make an include point at something the page did not
see. (SQLite: one read transaction; MongoDB: a snapshot session on a replica set, and under
mongomock no unit commits meanwhile.)"""
from __future__ import annotations

import threading

import pytest

from fhirserver.errors import NestedUnitOfWork
from fhirserver.search import query as q
from fhirserver.search.results import Include
from fhirserver.storage import open_store
from fhirserver.storage.base import Write

SUBJECT = "Observation.subject"
INCLUDE = Include("Observation", SUBJECT, None, False, False)


@pytest.fixture
def store(settings):
    s = open_store(settings)
    yield s
    s.close()


def put(store, rtype, id, version, index=None):
    with store.transaction() as tx:
        tx.write(Write(rtype, id, version, f"2026-01-01T00:00:0{version}.000000Z", "PUT",
                       b'{"resourceType":"%s"}' % rtype.encode(), index or {}))


def observation_of(store, patient, version):
    put(store, "Observation", "o", version, {"reference": [(SUBJECT, 0, "Patient", patient, None)]})


def test_includes_see_the_state_of_their_search(store, backend):
    put(store, "Patient", "a", 1)
    put(store, "Patient", "b", 1)
    observation_of(store, "a", 1)
    writer = threading.Thread(target=observation_of, args=(store, "b", 2))
    with store.snapshot():
        page = store.search("Observation", q.MATCH_ALL)
        writer.start()              # another request refiles the observation to Patient/b ...
        writer.join(0.5)            # (SQLite commits it now; under mongomock it waits for the snapshot)
        if backend == "sqlite":
            assert not writer.is_alive()        # committed while the snapshot reads on
        included = store.includes(page.items, [INCLUDE])
    writer.join()
    assert [(v.id, v.version) for v in page.items] == [("o", 1)]
    assert [v.id for v in included] == ["a"]        # ... the page's own subject, not Patient/b
    assert store.read("Observation", "o").version == 2
    assert [v.id for v in store.includes(store.search("Observation", q.MATCH_ALL).items, [INCLUDE])] == ["b"]


def test_a_snapshot_is_for_reads(store):
    with store.snapshot():
        with pytest.raises(NestedUnitOfWork):
            with store.transaction():
                pass
        assert store.read("Patient", "a") is None
    put(store, "Patient", "a", 1)       # the thread is free again
    with store.transaction():
        with store.snapshot():          # inside a unit: joins it, sees its writes
            assert store.read("Patient", "a").version == 1
