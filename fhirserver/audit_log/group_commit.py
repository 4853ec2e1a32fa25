"""Group commit of AuditEvents: many requests' events in one append to the audit journal (journal.py),
each request waiting until its own are durable (the technique of database logs; docs/audit.md,
"Throughput").

No thread of its own: a request that finds no write in progress leads, writing every event queued so
far (its own included) in one transaction; requests arriving meanwhile queue and wait; when the leader
is done it hands the lead to the first request still waiting, with what queued up. If a shared
transaction fails, each request's events are retried alone, so only the requests whose events cannot
be stored fail. The append is the store's journal_append outside any unit of work: for SQLite, the
process's own side journal (storage/sqlite_side_journal.py), so workers do not queue behind each
other or behind the store's writers.

Waking is targeted: each waiting request sleeps on a lock of its own, released once its events are
written (or when it is to lead next), and a leader gathering requests in progress is woken only when
none is left to wait for; no request is woken to find that nothing concerns it. The requests of a
written batch are woken in a chain: the leader wakes the first, each the next as soon as it runs. Woken
all at once, they would each wake on a free CPU only to find the interpreter lock taken, sleep on it
and be woken again; a chain wakes each when the one before has it (docs/audit.md, "Throughput":
fewer context switches per request, a little less CPU while the process competes for the CPUs). A
request interrupted while it waits leaves the queue, or the chain, so no other waits on it (_abandon).
"""
from __future__ import annotations

import collections
import threading
import time

from . import journal

MAX_BATCH = 2000            # events per transaction (a bounded transaction; the rest lead next)
COMMIT_DELAY_S = 0.002      # the longest a leader waits for requests in progress to queue their events


class _Ticket:
    __slots__ = ("events", "done", "error", "lead", "next", "gone", "_wake")

    def __init__(self, events: list[dict]):
        self.events, self.done, self.error, self.lead = events, False, None, False
        self.next: _Ticket | None = None    # the request of the same batch this one wakes once woken
        self.gone = False                   # its request was interrupted while it waited (_abandon)
        self._wake = threading.Lock()
        self._wake.acquire()

    def wait(self) -> None:
        self._wake.acquire()

    def wake(self) -> None:
        self._wake.release()


class GroupCommit:
    def __init__(self, store, base: str):
        self.store, self.base = store, base
        self._lock = threading.Lock()
        self._queue: collections.deque[_Ticket] = collections.deque()
        self._queued = 0            # events in the queue
        self._busy = False          # a leader is gathering or writing
        self._active = 0            # requests in progress that have not queued their events yet
        self._gatherer: threading.Lock | None = None    # held by the leader while it gathers

    def begin(self) -> None:
        """A request started that will submit its events (submit(began=True) or end() un-counts it):
        a leader may wait a moment for them."""
        with self._lock:
            self._active += 1

    def end(self) -> None:
        with self._lock:
            self._active -= 1
            self._nudge()

    def submit(self, events: list[dict], began: bool = False) -> None:
        """Store events durably; returns once they are committed, raises what failed them.
        began: the submitting request was counted by begin() (it stops being waited for now)."""
        ticket = _Ticket(events)
        with self._lock:
            if began:
                self._active -= 1
            self._queue.append(ticket)
            self._queued += len(events)
            lead = not self._busy
            if lead:
                self._busy = True           # leading from here: others queue and wait
            else:
                self._nudge()
        while not lead:
            try:
                ticket.wait()
            except BaseException:
                self._abandon(ticket)
                raise
            if ticket.done:
                if ticket.next is not None:     # pass the wake-up on (see _link)
                    ticket.next.wake()
                break
            lead = ticket.lead              # handed the lead (its events not written yet)
        if lead:
            self._lead(ticket)
        if ticket.error is not None:
            raise ticket.error

    def _abandon(self, ticket: _Ticket) -> None:
        """Its request was interrupted while it waited (KeyboardInterrupt, an async exception): no one
        else may wait on it. Still queued: it leaves the queue (its events are not written), handing on
        the lead if it was handed it; taken into a batch: it is skipped by the chain, or, once linked
        into it, passes the wake-up on now."""
        with self._lock:
            ticket.gone = True
            if ticket in self._queue:
                first = self._queue[0] is ticket
                self._queue.remove(ticket)
                self._queued -= len(ticket.events)
                ticket.error = RuntimeError("the audit write was interrupted")
                if first and ticket.lead:           # it was to lead next
                    if self._queue:
                        self._queue[0].lead = True
                        self._queue[0].wake()
                    else:
                        self._busy = False
            elif ticket.next is not None:           # linked: woken or about to be, but not running
                ticket.next.wake()
                ticket.next = None

    def _nudge(self) -> None:
        """(Under the lock.) Wake a gathering leader once nothing is left to wait for."""
        if self._gatherer is not None and (self._active <= 0 or self._queued >= MAX_BATCH):
            self._gatherer.release()
            self._gatherer = None

    def _lead(self, ticket: _Ticket) -> None:
        """Write batches until `ticket`'s events are written (its ticket is the queue's first: the
        first batch), then hand the lead to the first request still waiting."""
        try:
            while not ticket.done:
                batch: list[_Ticket] = []
                try:
                    self._gather()
                    self._commit_queued(batch)
                finally:
                    with self._lock:
                        waiting = _link([t for t in batch if t is not ticket and not t.gone])
                    if waiting:
                        waiting.wake()
        finally:
            with self._lock:
                if not ticket.done:             # interrupted before its events were taken
                    self._queue.remove(ticket)
                    self._queued -= len(ticket.events)
                    ticket.done, ticket.error = True, RuntimeError("the audit write was interrupted")
                if self._queue:
                    nxt = self._queue[0]
                    nxt.lead = True
                    nxt.wake()
                else:
                    self._busy = False

    def _gather(self) -> None:
        """Commit delay (PostgreSQL's commit_delay/commit_siblings): while requests in progress have
        not queued yet, wait up to COMMIT_DELAY_S for them, so one commit carries more events."""
        deadline = time.monotonic() + COMMIT_DELAY_S
        with self._lock:
            while self._active > 0 and self._queued < MAX_BATCH:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                wake = threading.Lock()
                wake.acquire()
                self._gatherer = wake
                self._lock.release()
                try:
                    wake.acquire(timeout=left)
                finally:
                    self._lock.acquire()
                    self._gatherer = None

    def _take(self) -> list[_Ticket]:
        """(Under the lock.) The tickets of the next transaction, oldest first."""
        batch, count = [], 0
        while self._queue and (not batch or count + len(self._queue[0].events) <= MAX_BATCH):
            ticket = self._queue.popleft()
            batch.append(ticket)
            count += len(ticket.events)
        self._queued -= count
        return batch

    def _commit_queued(self, batch: list[_Ticket]) -> None:
        """Write what is queued, into `batch` (the tickets taken), in one append."""
        with self._lock:
            batch += self._take()
        self._commit(batch)

    def _commit(self, batch: list[_Ticket]) -> None:
        """Write the tickets' events in one transaction, else each request's alone."""
        for t in batch:             # failed until written: an interruption (BaseException) is no success
            t.error = RuntimeError("the audit write was interrupted")
        try:
            try:
                self._write([e for t in batch for e in t.events])
                for t in batch:
                    t.error = None
            except Exception as shared:       # noqa: BLE001 - retried one request at a time below
                self._each(batch, shared)
        finally:
            for t in batch:
                t.done = True

    def _each(self, batch: list[_Ticket], shared: Exception) -> None:
        """After a shared write failed: each request's events alone, so only those that fail fail."""
        if len(batch) == 1:
            batch[0].error = shared
            return
        for t in batch:
            try:
                self._write(t.events)
                t.error = None
            except Exception as own:  # noqa: BLE001 - that request fails with it
                t.error = own

    def _write(self, events: list[dict]) -> None:
        journal.append(self.store, events)


def _link(waiting: list[_Ticket]) -> _Ticket | None:
    """(Under the lock, so that _abandon sees a ticket either linked or skipped.) Chain the requests of
    a written batch, each naming the next it wakes once it runs (submit); the first, to be woken now.
    Every ticket of a batch is done before this (_commit), so none is woken to wait again."""
    for ticket, following in zip(waiting, waiting[1:], strict=False):
        ticket.next = following
    return waiting[0] if waiting else None
