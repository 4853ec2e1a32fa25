"""A MongoDB server away is a 503 with Retry-After (StoreUnavailable) on records and blobs, as on
resources (issue 13: PyMongoError from records and GridFS was a 500)."""
from __future__ import annotations

import pytest
from pymongo.errors import AutoReconnect

from fhirserver.errors import StoreUnavailable
from fhirserver.storage import open_store
from tests.conftest import make_settings


class Away:
    """A collection whose server is gone."""

    def __getattr__(self, name):
        def fail(*_a, **_k):
            raise AutoReconnect("connection refused")
        return fail


@pytest.fixture
def store(tmp_path):
    s = open_store(make_settings(tmp_path, "mongo"))
    yield s
    s.close()


@pytest.mark.parametrize("call", [
    lambda s: s.put_record("k", "a", {}), lambda s: s.add_record("k", "a", {}), lambda s: s.get_record("k", "a"),
    lambda s: s.take_record("k", "a"), lambda s: s.delete_record("k", "a"), lambda s: s.list_records("k"),
    lambda s: s.any_record([("k", "a"), ("k", "b")]),
])
def test_records(store, call):
    store.records = Away()
    with pytest.raises(StoreUnavailable) as e:
        call(store)
    assert e.value.status == 503 and e.value.headers["Retry-After"]


@pytest.mark.parametrize("call", [
    lambda b: b.put(iter([b"x"]), 10), lambda b: b.put(iter([b"x" * 300_000]), 10 ** 6), lambda b: b.open("iabc"),
    lambda b: b.open("gabc"), lambda b: b.size("iabc"), lambda b: b.size("gabc"), lambda b: b.delete("gabc"),
    lambda b: list(b.keys()),
])
def test_blobs(store, call):
    store.blobs.inline = store.blobs.files = store.blobs.chunks = Away()
    store.blobs.bucket = Away()
    with pytest.raises(StoreUnavailable):
        call(store.blobs)
