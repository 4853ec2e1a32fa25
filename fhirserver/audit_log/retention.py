"""`medport audit prune`: audit retention (docs/audit.md, Retention; setting audit_retention_days).

The log is append-only: its batch records (and so every leaf hash, compact range and checkpoint) are
never rewritten. Retention removes only the AuditEvent versions behind a prefix of the log: the
entries [0, below) that are older than the horizon (now - audit_retention_days) AND inside the tree
of a signed checkpoint. The marker record `audit-log`/`pruned` = {"below", "horizon", "at",
"expunged"} is written before the deletion, and "expunged" = below after it (a pass cut short is
finished by the next). Verify counts an entry below it, older than its horizon and without its
AuditEvent, as pruned; above it a missing AuditEvent is still a deleted entry. Before deleting
anything the stored tree must give the checkpoint's signed root and each AuditEvent must still hash
to its leaf: retention never destroys the evidence of a tamper.
"""
from __future__ import annotations

import datetime
import time

from . import log as audit_log
from . import merkle
from .keys import AuditKeys
from .verify import pruned_marker

CHUNK = 500


class RetentionError(RuntimeError):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def _instant(t: float) -> str:
    """The store's fixed-width UTC instant (interactions.common.now_instant), so strings compare as times."""
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def prune(store, settings, now: float | None = None) -> tuple[int, int]:
    """Remove what retention allows; returns (entries pruned now, the marker's below)."""
    days = settings.audit_retention_days
    if days <= 0:
        raise RetentionError("audit retention is off (MEDPORT_AUDIT_RETENTION_DAYS = 0: keep forever); "
                             "nothing is pruned", 2)
    now = time.time() if now is None else now
    horizon = _instant(now - days * 86400)
    latest = store.get_record(audit_log.STATE_KIND, "checkpoint")
    if latest is None:
        return 0, pruned_marker(store)["below"]
    signed = AuditKeys(store).verify(latest["text"])
    entries = audit_log.all_entries(store)[:signed.size]
    if len(entries) < signed.size or merkle.root([e.leaf for e in entries]) != signed.root:
        raise RetentionError("the stored log is not the tree its latest checkpoint signed: run medport audit "
                             "verify; nothing pruned", 1)
    old = pruned_marker(store)
    below = old["below"]
    while below < len(entries) and entries[below].at < horizon:
        below += 1
    start = old.get("expunged", old["below"])      # a pass cut short left [expunged, below) to finish
    todo = entries[start:below]
    for e in todo:                         # still the logged content: else it is evidence, kept
        v = store.vread("AuditEvent", e.id, e.version)
        if v is None and e.index < old["below"]:
            continue
        if v is None or v.body is None or audit_log.leaf_of(v.body) != e.leaf:
            raise RetentionError(f"FAILED at index {e.index}: AuditEvent/{e.id}/_history/{e.version} is gone "
                                 "or changed: run medport audit verify; nothing pruned", 1)
    marker = {"below": below, "horizon": max(horizon, old["horizon"]), "at": _instant(now), "expunged": start}
    if todo:
        store.put_record(audit_log.STATE_KIND, "pruned", marker)
    for k in range(0, len(todo), CHUNK):
        store.expunge("AuditEvent", [(e.id, e.version) for e in todo[k:k + CHUNK]])
    if todo:
        store.put_record(audit_log.STATE_KIND, "pruned", {**marker, "expunged": below})
    return below - old["below"], below
