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

import hashlib
import logging
import threading

from .. import jsonio
from ..interactions.common import new_id, store_server_written

log = logging.getLogger("medport.audit_journal")
DRAIN_BATCH = 1000
SET_ASIDE = "audit-set-aside"      # record kind: journal entries that could not be stored (see _store_or_set_aside)
MAX_KEPT = 64 * 1024               # of a set-aside entry's body, kept beside its digest
READER_DRAIN = 10000               # the most a request that reads the trail drains before it reads
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
    """Move journal entries into AuditEvent resources, oldest first; returns how many were moved.
    limit: at most about this many (a reader's drain is bounded: what keeps coming waits for the next)."""
    moved = 0
    with _draining:
        while limit is None or moved < limit:
            batch = store.journal_read(DRAIN_BATCH if limit is None else min(DRAIN_BATCH, limit - moved))
            if not batch:
                break
            try:
                _store(store, base, batch)
            except Exception:       # noqa: BLE001 - one by one: only an entry that cannot be stored waits
                for entry in batch:
                    _store_or_set_aside(store, base, entry)
            store.journal_delete([(key, id) for key, id, _body in batch])
            moved += len(batch)
    return moved


def _store(store, base: str, batch) -> None:
    with store.transaction() as tx:
        for _key, id, body in batch:
            if tx.read("AuditEvent", id) is not None:
                continue                # stored by a drain that stopped before deleting
            store_server_written(tx, base, jsonio.loads_stored(body), id)


def _store_or_set_aside(store, base: str, entry) -> None:
    """Store one entry; one that cannot be stored (a bug, a document over the store's size limit) is
    kept as a record of kind SET_ASIDE, with its SHA-256, and logged as an error, instead of stopping
    every later event from reaching the log. `medport audit verify` reports set-aside entries."""
    try:
        _store(store, base, [entry])
    except Exception as e:     # noqa: BLE001 - kept and reported, never dropped silently
        _key, id, body = entry
        log.error("audit journal entry %s cannot be stored as an AuditEvent (%s): set aside", id, e)
        store.put_record(SET_ASIDE, id, {"sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body),
                                         "error": str(e)[:1000], "body": body[:MAX_KEPT].decode("utf-8", "replace")})


def drain_quietly(store, base: str) -> None:
    """drain(), logging instead of failing: a reader still gets its answer; the events wait."""
    try:
        drain(store, base, limit=READER_DRAIN)
    except Exception:          # noqa: BLE001 - the journal keeps them; the next drain moves them
        log.exception("draining the audit journal failed")
