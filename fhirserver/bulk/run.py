"""Running one export job: NDJSON files streamed from the store into the blob store.

Consistency (export.html#response---complete-status, transactionTime): every query is bounded by
_lastUpdated <= transactionTime: a resource created while the export runs is absent from it, one changed
meanwhile is exported as it was at transactionTime (_as_of), and the next export with
_since=transactionTime brings both as they are now. Pages are read by the store's cursor, so memory
holds one page whatever the export's size.

Files are split at export_file_max_bytes, at page boundaries; after each file the job records it
and where the next one starts, so a worker that takes over after a crash continues from there.
The client's access is rebuilt from the kick-off token's claims for every run, and the client's
standing (not disabled) is checked again: an export never reads more than the client could search.
"""
from __future__ import annotations

import dataclasses
import time

from .. import jsonio
from ..errors import FhirError
from ..resources.binary_io import json_chunks
from ..search.matcher import matches_alone
from ..search.summary import subset
from ..smart_auth import stored_claims
from . import jobs, plan
from .request import ExportRequest

PAGE = 1000
LOOK_BACK = 20          # versions read back for a resource written again while the export ran
AUDIT = "AuditEvent"


class Stopped(Exception):
    """The job was cancelled or its lease was lost: stop writing, keep nothing half-done."""


def run(base_ctx, job: dict, lease: jobs.Lease) -> dict:
    """Run (or continue) a job to its end; returns the saved job. Raises Stopped when cancelled or
    when the lease was lost."""
    store, settings = base_ctx.store, base_ctx.settings
    ctx = base_ctx.acting_as(stored_claims.access_from(job.get("claims"), settings.sharing_default, store))
    req = ExportRequest.from_json(job["request"])
    job["state"] = "running"
    jobs.save(store, job)
    with ctx.forms():
        progress = job["progress"]
        while progress["type_index"] < len(job["types"]):
            rtype = job["types"][progress["type_index"]]
            query = plan.query(req, rtype, job.get("patients"), ctx.base, ctx.terminology)
            _write_type(ctx, job, req, rtype, query, lease, plan.until(req, job["transaction_time"]))
        if req.since and not progress.get("deleted_done"):
            _write_deleted(ctx, job, req, lease)
    if AUDIT in job["types"]:       # the audit trail with the checkpoint that signs it (docs/bulk-export.md)
        from ..audit_log.export import bulk_extension
        job["audit_log"] = bulk_extension(store, settings, ctx.base, ctx.access)
    job["state"], job["finished"] = "done", time.time()
    job["expires"] = job["finished"] + settings.export_expiry_s
    jobs.save(store, job)
    return job


def fail(store, job: dict, message: str, settings) -> None:
    job["state"], job["finished"], job["message"] = "failed", time.time(), message
    job["expires"] = job["finished"] + settings.export_expiry_s
    jobs.save(store, job)


def _check(store, job, lease) -> None:
    if jobs.cancelled(store, job["id"]) or not lease.renew():
        raise Stopped(job["id"])


def _write_type(ctx, job, req, rtype, query, lease, end: str) -> None:
    """The files of one type, from the saved cursor; moves progress to the next type. A type with
    nothing to export costs one query: no file, no saved progress (a restart asks it again)."""
    store, progress = ctx.store, job["progress"]
    elements = _elements_for(req.elements, rtype)
    while True:
        _check(store, job, lease)
        page = ctx.repo.search(rtype, query, limit=PAGE, cursor=progress["cursor"])
        if not page.items and page.next_cursor is None:
            progress["type_index"], progress["cursor"] = progress["type_index"] + 1, None
            return
        state = {"cursor": progress["cursor"], "count": 0, "end": False}
        info = store.blobs.put(_lines(ctx, job, lease, rtype, query, elements, state, page, end),
                               max_bytes=1 << 62)
        if state["count"]:
            job["output"].append({"type": rtype, "key": info.key, "count": state["count"], "size": info.size})
        else:                       # every version on these pages was written after the export began
            store.blobs.delete(info.key)
        progress["cursor"] = state["cursor"]
        if state["end"]:
            progress["type_index"], progress["cursor"] = progress["type_index"] + 1, None
        jobs.save(store, job)
        if state["end"]:
            return


def _lines(ctx, job, lease, rtype, query, elements, state, page, end):
    """NDJSON lines of one file, from `page` on: whole pages until the file passes max_bytes or the
    type ends. A resource written again after `end` (transactionTime, or _until) comes as it was then."""
    written, max_bytes = 0, ctx.settings.export_file_max_bytes
    while True:
        for v in page.items:
            if v.last_updated > end and (v := _as_of(ctx, v, end, query)) is None:
                continue
            line = _line(ctx, v, elements)
            written += len(line)
            state["count"] += 1
            yield line
        state["cursor"] = page.next_cursor
        if page.next_cursor is None:
            state["end"] = True
            return
        if written >= max_bytes:
            return
        _check(ctx.store, job, lease)       # between pages too: a file of large pages takes a while
        page = ctx.repo.search(rtype, query, limit=PAGE, cursor=state["cursor"])


def _as_of(ctx, v, end: str, query):
    """The version of v's resource that was current at `end`, when it was written again after `end`
    (transactionTime: the export "SHALL include any matching resources modified up to and including this
    instant"), if it matched the export's query then; None when the resource did not exist or was deleted
    at `end`, its versions are outside the client's access, or more than LOOK_BACK versions came after.
    A resource that matches the query only in its older version is not found (the search reads current
    versions); the next export with _since=transactionTime brings its current state."""
    for version in range(v.version - 1, max(v.version - 1 - LOOK_BACK, 0), -1):
        try:
            older = ctx.repo.vread(v.type, v.id, version)
        except FhirError:
            return None
        if older is None or older.deleted:
            return None
        if older.last_updated <= end:
            return older if matches_alone(jsonio.loads_stored(older.body), ctx.base, query) else None
    return None


def _line(ctx, v, elements) -> bytes:
    body = b"".join(json_chunks(v, ctx.store.blobs)) if v.blob else v.body
    if elements:
        body = jsonio.dumps(subset(jsonio.loads_stored(body), None, elements))
    return body + b"\n"


def _elements_for(elements: list[str], rtype: str) -> tuple[str, ...] | None:
    """export.html#_elements: `name` applies to every type, `Type.name` to that type only (subset() keeps
    the type's mandatory elements too, as the spec asks)."""
    mine = [e.partition(".")[2] if "." in e else e for e in elements
            if "." not in e or e.partition(".")[0] == rtype]
    return tuple(mine) or None


def _write_deleted(ctx, job, req, lease) -> None:
    """With _since: the resources deleted in (_since, transactionTime], as transaction Bundles of
    DELETE entries, one Bundle a line (export.html#response---complete-status, `deleted`)."""
    store, counted = ctx.store, {"lines": 0}
    info = store.blobs.put(_deleted_lines(ctx, job, req, lease, counted), max_bytes=1 << 62)
    if counted["lines"]:
        job["deleted"].append({"type": "Bundle", "key": info.key, "count": counted["lines"], "size": info.size})
    else:
        store.blobs.delete(info.key)
    job["progress"]["deleted_done"] = True
    jobs.save(store, job)


def _deleted_lines(ctx, job, req, lease, counted):
    end = plan.until(req, job["transaction_time"])
    for rtype in job["types"]:
        _check(ctx.store, job, lease)
        criteria = _criteria(ctx, req, rtype, job.get("patients"))
        cursor = None
        while True:
            try:
                page = ctx.repo.history(rtype, None, since=req.since, limit=PAGE, cursor=cursor, max_total=0)
            except FhirError:          # no history rights on the type: nothing to report for it
                break
            gone = [v for v in page.items
                    if v.deleted and v.last_updated <= end and _was_selected(ctx, v, criteria, end)]
            if gone:
                counted["lines"] += 1
                yield jsonio.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [
                    {"request": {"method": "DELETE", "url": f"{v.type}/{v.id}"}} for v in gone]}) + b"\n"
            cursor = page.next_cursor
            if cursor is None:
                break


def _criteria(ctx, req, rtype: str, patients):
    """What a deleted resource of rtype must have matched to be listed: the kick-off's criteria but
    _since (the level's patients, the type's _typeFilter queries); None when every one is listed."""
    if req.level == "system" and rtype not in req.type_filters:
        return None
    return plan.query(dataclasses.replace(req, since=None), rtype, patients, ctx.base, ctx.terminology)


def _was_selected(ctx, v, criteria, end: str) -> bool:
    """export.html#response---complete-status, `deleted`: the resources that "match the kick-off request
    criteria" and were deleted, never one in `output` too. Judged by the version before the deletion
    (a deletion has no content): in a Group export, a non-member's deleted record is not listed."""
    try:
        current = ctx.repo.read(v.type, v.id)
        if current is not None and not current.deleted and current.last_updated <= end:
            return False            # written again since, and exported as it is now
        if criteria is None:
            return True
        before = ctx.repo.vread(v.type, v.id, v.version - 1) if v.version > 1 else None
    except FhirError:               # no vread right: nothing to judge it by, so not listed
        return False
    if before is None or before.deleted:
        return False
    return matches_alone(jsonio.loads_stored(before.body), ctx.base, criteria)
