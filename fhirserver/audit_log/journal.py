"""The audit journal: where a request's AuditEvents are made durable before its response, cheaply,
and from where they are drained into ordinary AuditEvent resources (docs/audit.md, "Throughput").

Appending is one row per event in one small table (Store.journal_append): a commit touches a page or
two, where storing an indexed resource touches every index it has (about fifteen B-trees), which is
what made auditing each read cost more than the read. drain() then writes the events as AuditEvent
resources, a thousand per transaction, under their ids assigned at append, and only afterwards deletes
them from the journal: a drain that stops half way is finished by the next (an event already stored
is skipped, found by one query per batch: Transaction.existing; so it is never stored twice).

Who drains: the audit log's integrator, before each integration (log.py, under its lease); and any
request that reads the audit trail (Repository, before an AuditEvent or system-level read), so a
reader sees every event recorded before its request: read-your-audit.

What a drain costs is mostly the store's B-tree inserts and index extraction. Extraction is memoised
item by item (search/extract_memo.py): the rows of each item events repeat (type, subtype, action,
outcome, meta, source, the agents, a patient's entities, patient included) are made once; those of
recorded and of the X-Request-Id entity each time. Each event is parsed and
extracted just before its write, inside the batch's transaction: preparing the whole batch first would
hold the writer lock shorter, but keeps a thousand events' rows alive at once, and the garbage
collector's full passes over a server's heap cost more than that saved (measured in a process holding
300,000 other objects: 247 against 212 us of CPU per event).
"""
from __future__ import annotations

import hashlib
import logging
import threading

import orjson

from .. import jsonio
from ..interactions.common import new_id, store_server_written
from ..search.extract_memo import ExtractMemo
from . import log as audit_log

log = logging.getLogger("medport.audit_journal")
DRAIN_BATCH = 1000
SET_ASIDE = "audit-set-aside"      # record kind: journal entries that could not be stored (see _store_or_set_aside)
MAX_KEPT = 64 * 1024               # of a set-aside entry's body, kept beside its digest
READER_DRAIN = 10000               # the most a request that reads the trail drains before it reads
_draining = threading.Lock()       # one drain at a time per process (others find the journal drained)
_memo = ExtractMemo()              # the drain's index rows of the elements events repeat (used under _draining)


def append(store, events: list[dict]) -> None:
    """Make events durable (each gets its AuditEvent id now, once: an append retried after a failure that
    may have committed after all keeps the ids, and the drain stores each id once)."""
    if not events:
        return
    entries = []
    for event in events:
        event.setdefault("id", new_id())
        entries.append((event["id"], jsonio.dumps(event)))
    store.journal_append(entries)


def drain(store, base: str, limit: int | None = None, leaves: dict | None = None) -> int:
    """Move journal entries into AuditEvent resources, oldest first; returns how many were moved.
    limit: at most about this many (a reader's drain is bounded: what keeps coming waits for the next).
    leaves: filled with {(id, version): leaf hash hex} of the AuditEvents stored (the log's integrator
    then hashes none of them again)."""
    moved = 0
    with _draining:
        while limit is None or moved < limit:
            batch = store.journal_read(DRAIN_BATCH if limit is None else min(DRAIN_BATCH, limit - moved))
            if not batch:
                break
            try:
                stored = _store(store, base, batch)
            except Exception:       # noqa: BLE001 - one by one: only an entry that cannot be stored waits
                stored = []
                for entry in batch:
                    stored += _store_or_set_aside(store, base, entry)
            store.journal_delete([(key, id) for key, id, _body in batch])
            if leaves is not None:
                leaves.update(stored)
            moved += len(batch)
    return moved


def parse(body: bytes) -> tuple[dict, bool]:
    """(a stored body as jsonio.loads_stored reads it, whether it holds no number). Through orjson
    (several times faster) when it holds none: the two parsers differ only on numbers (jsonio keeps a
    decimal's written form). Whether it does is read from orjson's compact form of what it parsed,
    where a number can only follow ':', '[' or ',' directly: cheaper searches than on any body."""
    try:
        parsed = orjson.loads(body)
        if not audit_log.holds_number(orjson.dumps(parsed), compact=True):
            return parsed, True
    except orjson.JSONDecodeError:
        pass                            # e.g. a lone surrogate escape: the json module decides
    return jsonio.loads_stored(body), False


def _store(store, base: str, batch) -> list:
    """The batch's events in one transaction (an event already stored is skipped): [((id, version), leaf
    hex)]. Each is written as store_server_written (interactions/common.py) writes what the server built:
    unvalidated (balp.py builds valid R4). Nothing of an event is kept past its write but that (a batch
    of live rows would cost the garbage collector more than its write)."""
    stored = []
    with store.transaction() as tx:
        skip = tx.existing("AuditEvent", [id for _key, id, _body in batch])
        for _key, id, body in batch:
            if id in skip:
                continue                # stored by a drain that stopped before deleting (or twice in the batch)
            skip.add(id)
            event, plain = parse(body)
            version = store_server_written(tx, base, event, id, rows=_memo.extract(event, base))
            stored.append(((id, version.version), _leaf(version, event, plain).hex()))
    return stored


def _leaf(version, event: dict, plain: bool) -> bytes:
    """The log's leaf of a version just stored: from the event as written (store_server_written stamps
    its id and meta in place) when it holds no number (plain), else from the body."""
    if plain:
        try:
            return audit_log.plain_leaf(event)
        except orjson.JSONEncodeError:
            pass
    return audit_log.leaf_of(version.body)


def _store_or_set_aside(store, base: str, entry) -> list:
    """Store one entry; one that cannot be stored (a bug, a document over the store's size limit) is
    kept as a record of kind SET_ASIDE, with its SHA-256, and logged as an error, instead of stopping
    every later event from reaching the log. `medport audit verify` reports set-aside entries."""
    try:
        return _store(store, base, [entry])
    except Exception as e:     # noqa: BLE001 - kept and reported, never dropped silently
        _key, id, body = entry
        log.error("audit journal entry %s cannot be stored as an AuditEvent (%s): set aside", id, e)
        store.put_record(SET_ASIDE, id, {"sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body),
                                         "error": str(e)[:1000], "body": body[:MAX_KEPT].decode("utf-8", "replace")})
        return []


def drain_quietly(store, base: str) -> None:
    """drain(), logging instead of failing: a reader still gets its answer; the events wait."""
    try:
        drain(store, base, limit=READER_DRAIN)
    except Exception:          # noqa: BLE001 - the journal keeps them; the next drain moves them
        log.exception("draining the audit journal failed")
