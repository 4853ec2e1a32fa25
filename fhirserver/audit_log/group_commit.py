"""Group commit of AuditEvents: many requests' events in one store transaction, each request waiting
until its own are durable (the technique of database logs; docs/audit.md, "Throughput").

No thread of its own: a request that finds no write in progress leads, writing every event queued so
far (its own included) in one transaction; requests arriving meanwhile queue and wait; when the leader
is done the next waiter leads with what queued up. If a shared transaction fails, each request's
events are retried alone, so only the requests whose events cannot be stored fail.
"""
from __future__ import annotations

import threading

from ..interactions.common import Prepared, new_id, store_new_version
from ..search.extract import extract
from ..smart_auth.access import UNRESTRICTED

MAX_BATCH = 2000            # events per transaction (a bounded transaction; the rest lead next)


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

    def submit(self, events: list[dict]) -> None:
        """Store events durably; returns once they are committed, raises what failed them."""
        ticket = _Ticket(events)
        with self._cond:
            self._queue.append(ticket)
            while not ticket.done:
                if self._busy:
                    self._cond.wait()
                    continue
                self._busy, batch = True, self._take()
                self._cond.release()
                try:
                    self._commit(batch)
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()
        if ticket.error is not None:
            raise ticket.error

    def _take(self) -> list[_Ticket]:
        batch, count = [], 0
        while self._queue and (not batch or count + len(self._queue[0].events) <= MAX_BATCH):
            ticket = self._queue.pop(0)
            batch.append(ticket)
            count += len(ticket.events)
        return batch

    def _commit(self, batch: list[_Ticket]) -> None:
        try:
            try:
                self._write([e for t in batch for e in t.events])
            except Exception as shared:       # noqa: BLE001 - retried one request at a time below
                if len(batch) == 1:
                    batch[0].error = shared
                else:
                    for t in batch:
                        try:
                            self._write(t.events)
                        except Exception as own:  # noqa: BLE001 - that request fails with it
                            t.error = own
        finally:
            for t in batch:
                t.done = True

    def _write(self, events: list[dict]) -> None:
        with self.store.transaction() as tx:
            store_events(tx, self.base, events)


def store_events(tx, base: str, events: list[dict]) -> None:
    """Write server-built AuditEvents in tx (not validated again: balp.event builds valid R4; the
    tests validate its every shape)."""
    for event in events:
        store_new_version(tx, Prepared("AuditEvent", event, extract(event, base), None, base, None, UNRESTRICTED),
                          new_id(), "POST", None)


_lock = threading.Lock()
_committers: dict[int, GroupCommit] = {}


def committer(store, base: str) -> GroupCommit:
    """The process's group commit for this store."""
    with _lock:
        found = _committers.get(id(store))
        if found is None or found.store is not store or found.base != base:
            found = _committers[id(store)] = GroupCommit(store, base)
        return found
