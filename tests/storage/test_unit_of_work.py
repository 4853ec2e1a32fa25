"""One unit of work per request, on every store (fhirserver/storage/base.py Store): a second transaction
opened inside an open one raises at once (the SQLite writer lock is not reentrant: it hung), records
written inside an open unit join it (they commit and roll back with it), and the SQLite writer lock
waits at most its timeout (503 with Retry-After), never forever."""
from __future__ import annotations

import os
import threading

import pytest

from fhirserver.errors import NestedUnitOfWork, StoreUnavailable
from fhirserver.storage import open_store
from fhirserver.storage.base import Write
from fhirserver.storage.sqlite import SqliteStore, WriterLock
from tests.storage.test_contract import write


@pytest.fixture
def store(settings):
    s = open_store(settings)
    yield s
    s.close()


def test_a_nested_transaction_raises_at_once(store):
    with store.transaction() as tx:
        assert store.open_unit() is tx
        with pytest.raises(NestedUnitOfWork):
            with store.transaction():
                pass
    assert store.open_unit() is None
    write(store, "after", 1)                      # the writer is free again
    assert store.read("Patient", "after").version == 1


def test_unit_joins_the_open_transaction_or_opens_one(store):
    with store.unit() as tx:                      # none open: its own
        tx.write(Write("Patient", "own", 1, "2026-01-01T00:00:00Z", "PUT", b'{"resourceType":"Patient","id":"own"}'))
    assert store.read("Patient", "own") is not None
    with store.transaction() as outer:
        with store.unit() as joined:
            assert joined is outer


def test_records_inside_a_unit_roll_back_with_it_on_sqlite(tmp_path):
    store = SqliteStore(str(tmp_path / "m.db"))
    with pytest.raises(RuntimeError):
        with store.transaction():
            assert store.add_record("claim-code", "k1", {"v": 1})
            assert store.get_record("claim-code", "k1") == {"v": 1}     # seen inside the unit
            raise RuntimeError("the request failed")
    assert store.get_record("claim-code", "k1") is None
    with store.transaction():
        store.put_record("claim-code", "k2", {"v": 2})
    assert store.get_record("claim-code", "k2") == {"v": 2}


def test_the_writer_lock_gives_up_after_its_timeout(tmp_path):
    path = str(tmp_path / "w.lock")
    holder, waiter = WriterLock(path, timeout_s=5), WriterLock(path, timeout_s=0.2)
    held, release = threading.Event(), threading.Event()

    def hold():                                   # another process's lock: flock on its own open file
        with holder:
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    try:
        with pytest.raises(StoreUnavailable) as e:
            with waiter:
                pass
        assert e.value.status == 503 and "Retry-After" in (e.value.headers or {})
    finally:
        release.set()
        t.join()
    with waiter:                                  # free again
        assert os.path.exists(path)
