"""The group commit's waking (audit_log/group_commit.py): the requests of a written batch are woken in a
chain, each with exactly its own outcome, and none is left waiting."""
from __future__ import annotations

import threading

from fhirserver.audit_log import group_commit
from tests._threads import run_clients


class _Held(group_commit.GroupCommit):
    """Its first write waits until `queued` requests wait behind it, so they make one batch; a write
    holding an event named *-bad fails with an error naming that event."""

    def __init__(self, queued: int):
        super().__init__(store=None, base="")
        self.queued, self.writes, self.release = queued, [], threading.Event()

    def _write(self, events):
        if not self.writes:
            self.release.wait(10)
        self.writes.append([e["n"] for e in events])
        bad = [e["n"] for e in events if e["n"].endswith("-bad")]
        if bad:
            raise ValueError(bad[0])


def _submit(committer, name: str, outcomes: dict) -> None:
    try:
        committer.submit([{"n": name}])
        outcomes[name] = None
    except ValueError as e:
        outcomes[name] = str(e)


def test_a_batch_woken_in_a_chain_gives_each_request_its_own_error():
    committer = _Held(queued=6)
    outcomes: dict[str, str | None] = {}
    lead = threading.Thread(target=_submit, args=(committer, "lead", outcomes))
    lead.start()
    while not committer._busy:
        threading.Event().wait(0.001)
    names = ["a", "b-bad", "c", "d-bad", "e", "f"]
    followers = [threading.Thread(target=_submit, args=(committer, n, outcomes)) for n in names]
    for t in followers:
        t.start()
    while len(committer._queue) < len(names):
        threading.Event().wait(0.001)
    committer.release.set()
    for t in [lead, *followers]:
        t.join(10)
    assert not any(t.is_alive() for t in [lead, *followers])
    # the lead's own write, then the six as one shared write (refused), then each alone
    assert committer.writes[:2] == [["lead"], names] and sorted(map(tuple, committer.writes[2:])) == \
        sorted((n,) for n in names)
    assert outcomes == {"lead": None, "a": None, "b-bad": "b-bad", "c": None, "d-bad": "d-bad", "e": None,
                        "f": None}
    assert not committer._busy and not committer._queue


def test_the_chain_wakes_the_first_request_alone_and_each_names_the_next():
    tickets = [group_commit._Ticket([{"n": i}]) for i in range(3)]
    for t in tickets:
        t.done = True
    group_commit._link(tickets).wake()
    awake = [t._wake.acquire(blocking=False) for t in tickets]
    assert awake == [True, False, False]
    assert tickets[0].next is tickets[1] and tickets[1].next is tickets[2] and tickets[2].next is None


def test_every_request_of_many_batches_returns_once_its_own_events_are_written(monkeypatch):
    """Eight threads, batches of at most three events: each submit returns only after a write that
    held its event, and no thread is left waiting (a chain that broke would leave one asleep)."""
    written: set[str] = set()
    lock = threading.Lock()
    late: list[str] = []

    class Recording(group_commit.GroupCommit):
        def _write(self, events):
            with lock:
                written.update(e["n"] for e in events)

    committer = Recording(store=None, base="")
    monkeypatch.setattr(group_commit, "MAX_BATCH", 3)

    def client(k):
        for i in range(200):
            name = f"{k}-{i}"
            committer.submit([{"n": name}])
            with lock:
                if name not in written:
                    late.append(name)
    assert run_clients(client) and late == [] and len(written) == 1600
    assert not committer._busy and not committer._queue



def _interruptible(committer, name: str, outcomes: dict) -> None:
    try:
        committer.submit([{"n": name}])
        outcomes[name] = None
    except KeyboardInterrupt:
        outcomes[name] = "interrupted"


def test_a_request_interrupted_while_it_waits_leaves_no_other_waiting(monkeypatch):
    """A waiting request interrupted (KeyboardInterrupt, an async exception) leaves its events unwritten
    and fails; the requests queued after it are still written and woken (a chain through it would stop)."""
    class Interrupted(group_commit._Ticket):
        __slots__ = ()

        def wait(self):
            if self.events[0]["n"].endswith("-int") and not self.done:
                raise KeyboardInterrupt
            super().wait()

    monkeypatch.setattr(group_commit, "_Ticket", Interrupted)
    for interrupted in ("b-int", "a-int"):          # in the middle of the queue, and first (to lead next)
        committer = _Held(queued=3)
        outcomes: dict = {}
        threads = [threading.Thread(target=_interruptible, args=(committer, "lead", outcomes), daemon=True)]
        threads[0].start()                          # daemon: a failure hangs no exit
        while not committer._busy:
            threading.Event().wait(0.001)
        names = [n if n[0] != interrupted[0] else interrupted for n in ("a", "b", "c")]
        for n in names:
            threads.append(threading.Thread(target=_interruptible, args=(committer, n, outcomes), daemon=True))
            threads[-1].start()
            while n not in outcomes and not any(t.events[0]["n"] == n for t in committer._queue):
                threading.Event().wait(0.001)
        committer.release.set()
        for t in threads:
            t.join(5)
        assert not any(t.is_alive() for t in threads)
        assert outcomes == {"lead": None, **{n: "interrupted" if n == interrupted else None for n in names}}
        assert interrupted not in {n for w in committer.writes for n in w}
        assert not committer._busy and not committer._queue and committer._queued == 0
