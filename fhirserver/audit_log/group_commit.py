"""Group commit of AuditEvents: many requests' events in one append to the audit journal (journal.py),
each request waiting until its own are durable (the technique of database logs; docs/audit.md,
"Throughput").

No thread of its own: a request that finds no write in progress leads, writing every event queued so
far (its own included) in one transaction; requests arriving meanwhile queue and wait; when the leader
is done the next waiter leads with what queued up. If a shared transaction fails, each request's
events are retried alone, so only the requests whose events cannot be stored fail.
"""
from __future__ import annotations

import threading
import time

from . import journal

MAX_BATCH = 2000            # events per transaction (a bounded transaction; the rest lead next)
COMMIT_DELAY_S = 0.002      # the longest a leader waits for requests in progress to queue their events


class _Ticket:
    __slots__ = ("events", "done", "error")

    def __init__(self, events: list[dict]):
        self.events, self.done, self.error = events, False, None


class GroupCommit:
    def __init__(self, store, base: str):
        self.store, self.base = store, base
        self._cond = threading.Condition()
        self._queue: list[_Ticket] = []
        self._busy = False
        self._active = 0            # requests in progress that have not queued their events yet

    def begin(self) -> None:
        """A request started that will submit its events (submit(began=True) or end() un-counts it):
        a leader may wait a moment for them."""
        with self._cond:
            self._active += 1

    def end(self) -> None:
        with self._cond:
            self._active -= 1

    def submit(self, events: list[dict], began: bool = False) -> None:
        """Store events durably; returns once they are committed, raises what failed them.
        began: the submitting request was counted by begin() (it stops being waited for now)."""
        ticket = _Ticket(events)
        with self._cond:
            if began:
                self._active -= 1
            self._queue.append(ticket)
            self._cond.notify_all()
            while not ticket.done:
                if self._busy:
                    self._cond.wait()
                    continue
                self._busy = True           # leading from here: others queue and wait
                self._gather()
                batch = self._take()
                self._cond.release()
                try:
                    self._commit(batch)
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()
        if ticket.error is not None:
            raise ticket.error

    def _gather(self) -> None:
        """Commit delay (PostgreSQL's commit_delay/commit_siblings): while requests in progress have
        not queued yet, wait up to COMMIT_DELAY_S for them, so one commit carries more events."""
        deadline = time.monotonic() + COMMIT_DELAY_S
        while self._active > 0 and len(self._queue) < MAX_BATCH:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._cond.wait(left)

    def _take(self) -> list[_Ticket]:
        batch, count = [], 0
        while self._queue and (not batch or count + len(self._queue[0].events) <= MAX_BATCH):
            ticket = self._queue.pop(0)
            batch.append(ticket)
            count += len(ticket.events)
        return batch

    def _commit(self, batch: list[_Ticket]) -> None:
        for t in batch:             # failed until written: an interruption (BaseException) is no success
            t.error = RuntimeError("the audit write was interrupted")
        try:
            try:
                self._write([e for t in batch for e in t.events])
                for t in batch:
                    t.error = None
            except Exception as shared:       # noqa: BLE001 - retried one request at a time below
                if len(batch) == 1:
                    batch[0].error = shared
                else:
                    for t in batch:
                        try:
                            self._write(t.events)
                            t.error = None
                        except Exception as own:  # noqa: BLE001 - that request fails with it
                            t.error = own
        finally:
            for t in batch:
                t.done = True

    def _write(self, events: list[dict]) -> None:
        journal.append(self.store, events)
