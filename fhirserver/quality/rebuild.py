"""`medport quality rebuild`: recompute every facts row and counter from the stored resources
(docs/data-quality.md, "Rebuild"): for a store written before data quality was recorded, or after the
profiles or the required profiles changed (conformance is judged again, as a write would judge it now).

The counters are cleared, then each type's current resources are read page by page and their facts
recorded with the write path's own rule (record.note), one transaction per page. A write meanwhile is
safe on SQLite (a facts row is always replaced by difference, so a record written before its page is
rebuilt is counted once); on MongoDB the clear is not one transaction: run it while writes are quiet.
"""
from __future__ import annotations

from .. import jsonio
from ..definitions import resource_types
from ..search import query as q
from ..search.extract import extract
from ..validation import write_policy
from . import facts, record


def rebuild(ctx, batch: int = 500, progress=None) -> int:
    """Returns how many resources were recorded; progress(n) after each page."""
    store, done = ctx.store, 0
    store.quality_clear()
    for rtype in sorted(resource_types()):
        if not facts.tracked(rtype):
            continue
        cursor = None
        while True:
            page = store.search(rtype, q.MATCH_ALL, limit=batch, cursor=cursor, total="none")
            with store.transaction() as tx:
                for v in page.items:
                    current = tx.read(rtype, v.id)      # as it is now: a write since the page was read wins
                    if current is None or current.deleted:
                        continue
                    resource = jsonio.loads_stored(current.body)
                    record.note(tx, current, resource, extract(resource, ctx.base), outcome_of(ctx, rtype, resource),
                                ctx.uhid_system)
                    done += 1
            if progress:
                progress(done)
            cursor = page.next_cursor
            if not cursor:
                break
    return done


def outcome_of(ctx, rtype: str, resource: dict):
    """The ProfileOutcome a write of this content would record now (validation/write_policy.py: its
    claimed and required profiles), without refusing anything: None when nothing is checked."""
    if write_policy.mode_of(ctx.settings) == "off":
        return None
    claims = write_policy.claimed(resource)
    required = write_policy.required_profiles(ctx.settings.required_profiles).get(rtype, ())
    if not claims and not required:
        return None
    return write_policy.evaluate(ctx, resource, [(c, False) for c in claims] + [(c, True) for c in required])
