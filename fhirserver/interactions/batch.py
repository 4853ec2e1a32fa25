"""batch: every entry on its own (http://hl7.org/fhir/R4/http.html#transaction).

Each entry goes through the same interaction as a single request; a failure
is reported in that entry's response and the others are still applied. The search entries
share a query-node budget (search entries past it fail) and one time budget (search/limits.py).
"""
from __future__ import annotations

from ..audit_log import trail
from ..errors import FhirError
from ..search import limits
from . import bundle_entries as be
from . import create as create_i
from . import delete as delete_i
from . import patch as patch_i
from . import update as update_i
from .binary_content import externalize_data, pending_blob
from .bundle_results import EntryResult, run_get, run_operation
from .common import if_match_version


def batch(ctx, bundle: dict, provenance: dict | None = None) -> list[EntryResult]:
    """provenance: the checked X-Provenance header, merged into each entry's own Provenance."""
    entries: list = []
    raw = be.raw_entries(bundle, "batch", ctx.settings.max_bundle_entries)
    be.check_shell(bundle, entries=False)
    for index, item in enumerate(raw):
        try:
            entry = be.parse_entry(index, item)
            be.check_entry(index, item, "batch")
            entries.append(entry)
        except FhirError as err:
            entries.append(err)
    too_costly = be.search_cost([e for e in entries if isinstance(e, be.Entry)],
                                limits.SearchLimits.from_settings(ctx.settings), ctx.terminology)
    results = []
    with limits.shared_time_limit(ctx.settings.search_time_limit_ms):
        for e in entries:
            parsed = isinstance(e, be.Entry)
            with trail.entry(e.method if parsed else "POST", e.url if parsed else "") as audited:
                try:
                    if not parsed:
                        raise e
                    if e.index in too_costly:
                        raise too_costly[e.index]
                    results.append(_one(ctx, e, provenance))
                    audited.status = results[-1].status
                except FhirError as err:
                    results.append(EntryResult(err.status, error=err))
                    audited.fail(err.status, err.issues[0].diagnostics if err.issues else None)
    return results


def _one(ctx, e: be.Entry, provenance: dict | None = None) -> EntryResult:
    if e.operation is not None:
        return run_operation(ctx, e)
    if_match = if_match_version(e.if_match)
    if e.method in ("POST", "PUT"):
        # a Binary's data goes to the blob store, as for a single create or update (binary_content.py)
        blob = externalize_data(ctx, e.resource) if e.type == "Binary" and isinstance(e.resource, dict) else None
        with pending_blob(ctx, blob):
            return _write(ctx, e, if_match, blob, provenance)
    if e.method == "DELETE":
        r = (delete_i.delete(ctx, e.type, e.id, if_match, provenance) if e.id
             else delete_i.conditional_delete(ctx, e.type, e.criteria, provenance))
        return EntryResult(204, r.version)
    if e.method == "PATCH":
        r = (patch_i.patch(ctx, e.type, e.id, be.patch_operations(e), if_match, provenance) if e.id
             else patch_i.conditional_patch(ctx, e.type, e.criteria, be.patch_operations(e), if_match, provenance))
        return EntryResult(200, r.version)
    return run_get(ctx, e)


def _write(ctx, e: be.Entry, if_match: int | None, blob: str | None, provenance: dict | None) -> EntryResult:
    if e.method == "POST":
        r = create_i.create(ctx, e.type, e.resource, e.if_none_exist, blob=blob, provenance=provenance)
        return EntryResult(r.status, r.version, created=r.status == 201)
    r = (update_i.update(ctx, e.type, e.id, {**e.resource, "id": e.resource.get("id", e.id)}, if_match, blob=blob,
                         provenance=provenance, if_none_match=e.if_none_match)
         if e.id else update_i.conditional_update(ctx, e.type, e.criteria, e.resource, if_match, provenance, blob,
                                                  e.if_none_match))
    return EntryResult(r.status, r.version, created=r.status == 201)
