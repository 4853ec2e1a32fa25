"""Small records (auth state): expiry, atomic add (replay detection), single-use take."""
from __future__ import annotations

import multiprocessing
import time

from fhirserver.storage.sqlite import SqliteStore


def test_put_get_list_delete_and_expiry(tmp_path):
    s = SqliteStore(str(tmp_path / "r.db"), synchronous="NORMAL")
    s.put_record("client", "app-1", {"name": "Clinic app"})
    s.put_record("client", "app-2", {"name": "Lab"}, expires_at=time.time() - 1)   # already expired
    assert s.get_record("client", "app-1") == {"name": "Clinic app"}
    assert s.get_record("client", "app-2") is None
    assert s.list_records("client") == [("app-1", {"name": "Clinic app"})]
    s.delete_record("client", "app-1")
    assert s.get_record("client", "app-1") is None


def test_add_refuses_a_live_duplicate_but_not_an_expired_one(tmp_path):
    s = SqliteStore(str(tmp_path / "r.db"), synchronous="NORMAL")
    assert s.add_record("jti", "client|abc", {}, expires_at=time.time() + 300)
    assert not s.add_record("jti", "client|abc", {}, expires_at=time.time() + 300)   # a replay
    s.put_record("jti", "old", {}, expires_at=time.time() - 1)
    assert s.add_record("jti", "old", {}, expires_at=time.time() + 300)


def _take(path, out):
    out.put(SqliteStore(path, synchronous="NORMAL").take_record("code", "c1"))


def test_take_is_single_use_across_processes(tmp_path):
    path = str(tmp_path / "r.db")
    SqliteStore(path, synchronous="NORMAL").put_record("code", "c1", {"sub": "asha"}, expires_at=time.time() + 60)
    out = multiprocessing.get_context("spawn").Queue()
    procs = [multiprocessing.get_context("spawn").Process(target=_take, args=(path, out)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join()
    assert results.count({"sub": "asha"}) == 1 and results.count(None) == 3
