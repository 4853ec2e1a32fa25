"""SQLite side journals (storage/sqlite_side_journal.py): appends outside a unit go to the process's own
database, are read and deleted with the store's journal, and a journal whose process is gone is
removed once drained; appends inside a unit stay in the store's table and roll back with it."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from fhirserver.storage.sqlite import SqliteStore
from fhirserver.storage.sqlite_side_journal import DRAIN_LOCK, SUFFIX


@pytest.fixture
def store(tmp_path):
    s = SqliteStore(str(tmp_path / "s.db"))
    yield s
    s.close()


def side_files(store) -> list[str]:
    d = store.path + SUFFIX
    return sorted(f for f in os.listdir(d) if f != DRAIN_LOCK) if os.path.isdir(d) else []


def test_an_append_alone_goes_to_the_process_journal_and_is_read_and_deleted(store):
    store.journal_append([("a", b"1"), ("b", b"2")])
    assert [f for f in side_files(store) if f.endswith(".db")] == [f"{os.getpid()}-" + f.split("-", 1)[1]
                                                                    for f in side_files(store) if f.endswith(".db")]
    assert store._conn().execute("SELECT count(*) FROM journal").fetchone()[0] == 0    # not the store's table
    read = store.journal_read(10)
    assert [(id, body) for _k, id, body in read] == [("a", b"1"), ("b", b"2")]
    store.journal_delete([(k, id) for k, id, _b in read[:1]])
    assert [id for _k, id, _b in store.journal_read(10)] == ["b"]
    store.journal_delete([(k, id) for k, id, _b in read])       # again, and late: no harm
    assert store.journal_read(10) == []
    assert any(f.endswith(".db") for f in side_files(store))    # its process lives: kept for the next append


def test_an_append_in_a_unit_commits_and_rolls_back_with_it(store):
    with store.transaction():
        store.journal_append([("in", b"x")])
    with pytest.raises(RuntimeError), store.transaction():
        store.journal_append([("lost", b"y")])
        raise RuntimeError("the write failed")
    assert [id for _k, id, _b in store.journal_read(10)] == ["in"]
    assert side_files(store) == []


def test_read_takes_the_store_table_first_and_honours_the_limit(store):
    store.journal_append([(f"s{i}", b".") for i in range(3)])
    with store.transaction():
        store.journal_append([("t0", b"."), ("t1", b".")])
    assert [id for _k, id, _b in store.journal_read(10)] == ["t0", "t1", "s0", "s1", "s2"]
    assert [id for _k, id, _b in store.journal_read(3)] == ["t0", "t1", "s0"]
    assert [id for _k, id, _b in store.journal_read(1)] == ["t0"]


_CHILD = textwrap.dedent("""
    import sys
    from fhirserver.storage.sqlite import SqliteStore
    s = SqliteStore(sys.argv[1])
    s.journal_append([("child-1", b"c1"), ("child-2", b"c2")])
    if sys.argv[2] == "stay":
        print("appended", flush=True)
        sys.stdin.read()            # alive until the test closes stdin
""")


def test_a_dead_process_journal_is_drained_then_removed(store):
    subprocess.run([sys.executable, "-c", _CHILD, store.path, "exit"], check=True, timeout=60)
    read = store.journal_read(10)
    assert [id for _k, id, _b in read] == ["child-1", "child-2"]       # nothing appended is lost
    store.journal_delete([(k, id) for k, id, _b in read[:1]])
    assert any(f.endswith(".db") for f in side_files(store))           # not empty yet
    store.journal_delete([(k, id) for k, id, _b in read[1:]])
    assert side_files(store) == []                                      # empty and abandoned: gone


def test_a_live_process_journal_is_kept_when_drained(store):
    child = subprocess.Popen([sys.executable, "-c", _CHILD, store.path, "stay"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "appended"
        read = store.journal_read(10)
        store.journal_delete([(k, id) for k, id, _b in read])
        assert store.journal_read(10) == []
        assert [f for f in side_files(store) if f.endswith(".db")]      # its owner may append again
    finally:
        child.stdin.close()
        child.wait(30)
    store.journal_append([("mine", b"m")])
    store.journal_delete([(k, id) for k, id, _b in store.journal_read(10)])
    assert [f for f in side_files(store) if f.endswith(".db")] == \
        [f for f in side_files(store) if f.startswith(f"{os.getpid()}-") and f.endswith(".db")]


def test_a_forked_child_appends_to_a_journal_of_its_own(store):
    store.journal_append([("parent", b"p")])
    pid = os.fork()
    if pid == 0:                                    # the child: its own journal, the parent's untouched
        try:
            store.journal_append([("child", b"c")])
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len([f for f in side_files(store) if f.endswith(".db")]) == 2
    read = store.journal_read(10)
    assert sorted(id for _k, id, _b in read) == ["child", "parent"]
    store.journal_delete([(k, id) for k, id, _b in read])
    assert len([f for f in side_files(store) if f.endswith(".db")]) == 1     # the child's went with it


_WRITER = textwrap.dedent("""
    import sys
    from fhirserver.storage.sqlite import SqliteStore
    s = SqliteStore(sys.argv[1])
    for i in range(int(sys.argv[3])):
        batch = [(f"{sys.argv[2]}-{i}-{j}", b"e") for j in range(3)]
        s.journal_append(batch)
        print(" ".join(id for id, _ in batch), flush=True)      # committed: the caller may rely on them
""")


def test_writers_dying_while_several_drain_lose_nothing_and_leave_nothing(store):
    """Five processes append while three threads drain (each deletes what it "stored"; a shared set stands
    for the store, which skips an id it holds); four writers are killed part way. Every entry a writer
    saw committed is drained, once; no drain fails; the dead writers' journals are gone at the end."""
    import signal
    import threading
    import time
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, store.path, f"w{k}", "120"],
                                stdout=subprocess.PIPE, text=True) for k in range(5)]
    stored, lock, errors, stop = set(), threading.Lock(), [], threading.Event()

    def drain_once(s) -> int:
        batch = s.journal_read(20)
        with lock:
            stored.update(id for _k, id, _b in batch)
        s.journal_delete([(k, id) for k, id, _b in batch])
        return len(batch)

    def drainer():
        s = SqliteStore(store.path)
        try:
            while not stop.is_set():
                if not drain_once(s):
                    time.sleep(0.005)
        except Exception as e:          # noqa: BLE001 - reported by the assertion below
            errors.append(e)
        finally:
            s.close()
    threads = [threading.Thread(target=drainer) for _ in range(3)]
    for t in threads:
        t.start()
    committed: set[str] = set()
    for k, w in enumerate(writers):
        if k < 4:                       # killed after some appends, maybe in the middle of one
            for _ in range(5 + 10 * k):
                committed.update(w.stdout.readline().split())
            w.send_signal(signal.SIGKILL)
        committed.update(w.stdout.read().split())
        w.wait(60)
    stop.set()
    for t in threads:
        t.join(60)
    while drain_once(store):
        pass
    assert errors == []
    assert committed and committed <= stored
    assert store.journal_read(10) == []
    assert side_files(store) == []
