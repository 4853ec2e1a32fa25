"""The audit journal: where a request's AuditEvents are made durable before its response, cheaply,
and from where they are drained into ordinary AuditEvent resources (docs/audit.md, "Throughput").

Appending is one row per event in one small table (Store.journal_append): a commit touches a page or
two, where storing an indexed resource touches every index it has (about fifteen B-trees), which is
what made auditing each read cost more than the read. drain() then writes the events as AuditEvent
resources, a thousand per transaction, under their ids assigned at append, and only afterwards deletes
them from the journal: a drain that stops half way is finished by the next (an event already stored
is skipped, so it is never stored twice).

Who drains: the audit log's integrator, before each integration (log.py, under its lease); and any
request that reads the audit trail (Repository, before an AuditEvent or system-level read), so a
reader sees every event recorded before its request: read-your-audit.
"""
from __future__ import annotations

import logging
import threading

from .. import jsonio
from ..interactions.common import Prepared, new_id, store_new_version
from ..search.extract import extract
from ..smart_auth.access import UNRESTRICTED

log = logging.getLogger("medport.audit_journal")
DRAIN_BATCH = 1000
_draining = threading.Lock()       # one drain at a time per process (others find the journal drained)


def append(store, events: list[dict]) -> None:
    """Make events durable (each gets its AuditEvent id now)."""
    if not events:
        return
    entries = []
    for event in events:
        event["id"] = new_id()
        entries.append((event["id"], jsonio.dumps(event)))
    store.journal_append(entries)


def drain(store, base: str, limit: int | None = None) -> int:
    """Move journal entries into AuditEvent resources, oldest first; returns how many were moved."""
    moved = 0
    with _draining:
        while limit is None or moved < limit:
            batch = store.journal_read(DRAIN_BATCH if limit is None else min(DRAIN_BATCH, limit - moved))
            if not batch:
                break
            with store.transaction() as tx:
                for _key, id, body in batch:
                    if tx.read("AuditEvent", id) is not None:
                        continue                # stored by a drain that stopped before deleting
                    event = jsonio.loads_stored(body)
                    store_new_version(tx, Prepared("AuditEvent", event, extract(event, base), None, base, None,
                                                   UNRESTRICTED), id, "POST", None)
            store.journal_delete([(key, id) for key, id, _body in batch])
            moved += len(batch)
    return moved


def drain_quietly(store, base: str) -> None:
    """drain(), logging instead of failing: a reader still gets its answer; the events wait."""
    try:
        drain(store, base)
    except Exception:          # noqa: BLE001 - the journal keeps them; the next drain moves them
        log.exception("draining the audit journal failed")
