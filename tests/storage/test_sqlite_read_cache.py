"""SQLite's read cache (storage/sqlite_read_cache.py): a repeated read asks SQLite nothing, and no read
ever answers a row some commit has replaced, whoever made the commit (another store, a raw sqlite3
connection, another process), nor what a transaction has not committed."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest

from fhirserver.storage.base import Write
from fhirserver.storage.sqlite import SqliteStore
from fhirserver.storage.sqlite_read_cache import MISS, ReadCache
from tests._threads import run_clients


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "store.db")


@pytest.fixture
def store(path):
    s = SqliteStore(path)
    yield s
    s.close()


def put(store, id, version, name="a"):
    body = b'{"resourceType":"Patient","id":"%s","name":[{"family":"%s"}]}' % (id.encode(), name.encode())
    with store.transaction() as tx:
        tx.write(Write("Patient", id, version, f"2026-01-01T00:00:0{version}.000000Z", "PUT", body, {}))


def statements(store):
    """The statements the calling thread's connection runs from now on."""
    seen = []
    store._conn().set_trace_callback(seen.append)
    return seen


def test_a_repeated_read_asks_sqlite_nothing(store):
    put(store, "p", 1)
    first = store.read("Patient", "p")
    seen = statements(store)
    assert store.read("Patient", "p") == first
    assert store.read("Patient", "x") is None and store.read("Patient", "x") is None
    assert len(seen) == 1       # the missing one, once


def test_a_commit_by_another_store_is_read_at_once(store, path):
    put(store, "p", 1)
    assert store.read("Patient", "p").version == 1
    assert store.read("Patient", "q") is None
    other = SqliteStore(path)
    put(other, "p", 2, "b")
    put(other, "q", 1)
    other.close()
    assert store.read("Patient", "p").version == 2
    assert b'"b"' in store.read("Patient", "p").body
    assert store.read("Patient", "q").version == 1


def test_a_raw_commit_in_another_process_is_read_at_once(store, path):
    put(store, "p", 1)
    assert store.read("Patient", "p").method == "PUT"
    code = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
            "c.execute(\"UPDATE version SET method = 'POST'\"); c.commit()")
    subprocess.run([sys.executable, "-c", code, path], check=True)
    assert store.read("Patient", "p").method == "POST"


def test_uncommitted_writes_are_never_cached(store):
    put(store, "p", 1)
    assert store.read("Patient", "p").version == 1

    class Undo(Exception):
        pass

    with pytest.raises(Undo):
        with store.unit() as tx:
            tx.write(Write("Patient", "p", 2, "2026-01-01T00:00:02.000000Z", "PUT", b'{"resourceType":"Patient"}', {}))
            assert store.read("Patient", "p").version == 2     # the unit sees its own write
            raise Undo
    assert store.read("Patient", "p").version == 1


def test_a_snapshot_reads_its_own_state_not_a_newer_cached_one(store, path):
    put(store, "p", 1)
    with store.snapshot():
        assert store.read("Patient", "p").version == 1
        other = SqliteStore(path)
        put(other, "p", 2)
        assert other.read("Patient", "p").version == 2        # cached by the other store, newer
        other.close()
        assert store.read("Patient", "p").version == 1
    assert store.read("Patient", "p").version == 2


def test_records_revoked_and_expired_at_once(store, path):
    assert store.get_record("revoked-jti", "j") is None
    other = SqliteStore(path)
    other.put_record("revoked-jti", "j", {"sub": "s"})
    other.close()
    assert store.get_record("revoked-jti", "j") == {"sub": "s"}
    store.put_record("grant", "g", {"n": 1}, expires_at=time.time() + 0.3)
    assert store.get_record("grant", "g") == {"n": 1}
    time.sleep(0.4)
    assert store.get_record("grant", "g") is None      # expired with no commit since it was read


def test_records_read_are_fresh_objects(store):
    store.put_record("k", "a", {"list": [1]})
    store.get_record("k", "a")["list"].append(2)
    assert store.get_record("k", "a") == {"list": [1]}


def test_the_budget_is_kept(path):
    store = SqliteStore(path, read_cache_mib=0.01)      # ~10 KiB
    for i in range(60):
        put(store, f"p{i}", 1, "x" * 300)
        store.read("Patient", f"p{i}")
    cache = store._read_cache
    assert 0 < cache._bytes <= cache.max_bytes
    assert sum(size for _, _, size in cache._rows.values()) == cache._bytes
    store.close()


def test_zero_caches_nothing(path):
    store = SqliteStore(path, read_cache_mib=0)
    put(store, "p", 1)
    store.read("Patient", "p")
    seen = statements(store)
    store.read("Patient", "p")
    assert len(seen) == 1
    store.close()


def test_no_wal_no_cache(tmp_path):
    db = str(tmp_path / "rollback.db")
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    cache = ReadCache(db, 1 << 20)
    assert cache.stamp() is None
    assert cache.through(conn, "k", lambda c: 1, lambda v: 1) == 1
    assert cache.get("k", b"") is MISS
    conn.close()


def test_the_mapped_file_outlives_every_other_connection(store, path):
    """The cache's own connection keeps SQLite from removing the -shm file it reads (walClose removes
    it only for the last connection): every other connection may close and reopen."""
    put(store, "p", 1)
    store.read("Patient", "p")
    inode = os.stat(path + "-shm").st_ino
    store._conn().close()
    store._local.conn = None
    other = SqliteStore(path)
    put(other, "p", 2)
    other.close()
    assert os.stat(path + "-shm").st_ino == inode
    assert store.read("Patient", "p").version == 2


def test_a_child_forked_with_the_cache_open_caches_nothing_and_reads_fresh(store, path):
    """SQLite's connections may not cross a fork: a child of a process holding the cache open inherits
    its parent's record of locks it does not hold, so it reads every row from SQLite."""
    put(store, "p", 1)
    assert store.read("Patient", "p").version == 1
    pid = os.fork()
    if pid == 0:
        ok = False
        try:
            ok = store.read("Patient", "p").version == 1 and store._read_cache.stamp() is None
            other = SqliteStore(path)
            put(other, "p", 2)
            ok = ok and store.read("Patient", "p").version == 2
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.read("Patient", "p").version == 2


def test_a_closed_store_holds_none_of_its_files_open(path):
    """`medport serve` opens the store, initialises it and closes it before gunicorn forks the workers:
    nothing of it may stay open across the fork (the cache's own connection included)."""
    store = SqliteStore(path)
    put(store, "p", 1)
    store.read("Patient", "p")
    store.get_record("k", "a")
    assert store._read_cache.stamp() is not None
    store.close()
    held = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
            if os.path.exists(f"/proc/self/fd/{fd}")]
    assert not [name for name in held if name in (path, path + "-wal", path + "-shm")]   # SQLite's files
    with open("/proc/self/maps") as maps:
        assert path + "-shm" not in maps.read()
    assert store.read("Patient", "p").version == 1       # reopened on use


def test_readers_never_see_a_version_older_than_one_committed_before_they_asked(store, path):
    """Threads read while another store commits version after version: a read started after version n
    was committed answers n or later (a stale cached row would answer less)."""
    put(store, "p", 1)
    committed = [1]
    stale = []

    def client(k):
        if k == 0:
            writer = SqliteStore(path, synchronous="NORMAL")
            for version in range(2, 60):
                put(writer, "p", version)
                committed[0] = version
            writer.close()
            return
        while committed[0] < 59:
            known = committed[0]
            got = store.read("Patient", "p").version
            if got < known:
                stale.append((known, got))
            time.sleep(0)       # let the writer have the interpreter lock too

    assert run_clients(client, count=4)
    assert stale == []
    assert store.read("Patient", "p").version == 59


def test_this_process_keeps_its_lock_on_the_shm_file(store, path):
    """Reading the header must not drop SQLite's POSIX locks (closing any descriptor of a file drops them
    all): another process would then find the -shm file unused and truncate it under the mappings."""
    put(store, "p", 1)
    store.read("Patient", "p")
    assert store._read_cache.stamp() is not None
    code = ("import fcntl, sys; f = open(sys.argv[1], 'rb+'); "
            "fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)")     # os_unix.c UNIX_SHM_DMS: byte 128
    taken = subprocess.run([sys.executable, "-c", code, path + "-shm"], capture_output=True)
    assert taken.returncode != 0
    assert b"BlockingIOError" in taken.stderr or b"PermissionError" in taken.stderr     # EAGAIN or EACCES
