"""transaction: all entries succeed or none does (http://hl7.org/fhir/R4/http.html#transaction).

1. Plan outside the write lock: resolve conditional entries and conditional
   references against the current state, give every new resource its id,
   rewrite references, validate and extract index rows (the costly part, so
   several workers do it in parallel).
2. Under the lock: resolve the conditionals again; if anything changed since
   the plan, plan again (rare). Then apply DELETE, POST, PUT/PATCH, GET in that
   order, one new version per resource, one commit. Any failure rolls back
   everything; the error names the entry.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from ..audit_log import trail
from ..errors import BadRequest, FhirError, PreconditionFailed
from ..search.limits import SearchLimits
from ..storage.base import Version
from . import bundle_entries as be
from .binary_content import externalize_data, pending_blob
from .bundle_results import EntryResult, run_get, run_operation
from .common import (
    check_if_match,
    check_type,
    current_or_raise,
    if_match_version,
    new_id,
    prepare,
    store_delete,
    store_new_version,
)
from .conditional import parse_criteria
from .patch import apply_patch, prepare_entries
from .references import is_conditional, references, resolve_conditional, rewrite
from .update import check_if_none_match


@dataclass(frozen=True)
class Decisions:
    """The outcome of every conditional in the bundle, against one state of the store."""
    existing: tuple = ()          # (entry index, id or None) for POST ifNoneExist
    put_targets: tuple = ()       # (entry index, id or None) for conditional PUT
    delete_targets: tuple = ()    # (entry index, id or None) for conditional DELETE
    refs: tuple = ()              # (conditional reference, "Type/id")


@dataclass
class Plan:
    decisions: Decisions
    ids: dict = field(default_factory=dict)      # entry index -> id it writes
    # conditional PUTs whose id was matched under the guard, or given by the server (no match): read as
    # they are, as update.conditional_update does; any other id is read under the update rights (no oracle)
    as_is: set = field(default_factory=set)


def transaction(ctx, bundle: dict, provenance: dict | None = None) -> list[EntryResult]:
    """provenance: the checked X-Provenance header, merged into the Provenance of every patient touched."""
    entries = be.parse_bundle(bundle, "transaction", ctx.settings.max_bundle_entries,
                              SearchLimits.from_settings(ctx.settings), ctx.terminology)
    new_ids = {e.index: new_id() for e in entries if e.method in ("POST", "PUT") and e.operation is None}
    # the conditional references of each entry, found once: the plan and the check under the lock use them
    conditional = {e.index: tuple(dict.fromkeys(r for r in references(e.resource) if is_conditional(r)))
                   for e in entries if e.index in new_ids}
    blobs: dict[int, str] = {}
    with contextlib.ExitStack() as pending:     # nothing was stored: neither are the entries' Binary contents
        _externalize(ctx, entries, blobs, pending)
        plan = _plan(ctx, entries, _decide(ctx, entries, ctx.repo, conditional), new_ids, blobs)
        prepare_entries(ctx, entries, dict(plan.decisions.put_targets), be.patch_operations)  # before the lock
        with ctx.repo.transaction(provenance) as tx:
            decisions = _decide(ctx, entries, tx, conditional)
            if decisions != plan.decisions:
                plan = _plan(ctx, entries, decisions, new_ids, blobs)
            results = _apply(ctx, tx, entries, plan)
    for index, found in plan.decisions.existing:
        if found is not None and index in blobs:     # a conditional create that matched wrote nothing
            ctx.store.blobs.delete(blobs[index])
    return results


def _externalize(ctx, entries: list[be.Entry], blobs: dict[int, str], pending: contextlib.ExitStack) -> None:
    """Binary entries' data goes to the blob store, as for a single create or update (binary_content.py),
    once, before planning (a plan made again under the lock reuses the keys); each is pending until the
    transaction commits."""
    for e in entries:
        if e.type == "Binary" and e.method in ("POST", "PUT") and e.operation is None and isinstance(e.resource, dict):
            try:
                key = externalize_data(ctx, e.resource)
            except FhirError as err:
                raise e.fail(err) from None
            if key is not None:
                blobs[e.index] = pending.enter_context(pending_blob(ctx, key))


def _decide(ctx, entries: list[be.Entry], reader, conditional: dict) -> Decisions:
    """reader: the request's repository (the plan) or its guarded transaction (under the lock);
    conditional: entry index -> its conditional references."""
    existing, puts, deletes, refs = [], [], [], {}
    for e in entries:
        try:
            if e.method == "POST" and e.if_none_exist:
                existing.append((e.index, _one(ctx, reader, e.type, e.if_none_exist, "If-None-Exist", "create")))
            elif e.method in ("PUT", "PATCH") and e.criteria:
                puts.append((e.index, _one(ctx, reader, e.type, e.criteria, "conditional update", "update")))
            elif e.method == "DELETE" and e.criteria:
                deletes.append((e.index, _one(ctx, reader, e.type, e.criteria, "conditional delete", "delete")))
            for ref in conditional.get(e.index, ()):
                if ref not in refs:
                    refs[ref] = resolve_conditional(ctx, reader, ref)
        except FhirError as err:
            raise e.fail(err) from None
    return Decisions(tuple(existing), tuple(puts), tuple(deletes), tuple(sorted(refs.items())))


def _one(ctx, reader, rtype: str, criteria: str, what: str, interaction: str) -> str | None:
    """The one resource the request may touch that matches a conditional entry (None: no match)."""
    check_type(rtype)
    found = reader.matches(rtype, parse_criteria(rtype, criteria, ctx.base, ctx.terminology), 2, interaction)
    if len(found) > 1:
        raise PreconditionFailed(f"{what} '{criteria}' matches more than one {rtype}")
    return found[0].id if found else None


def _plan(ctx, entries: list[be.Entry], d: Decisions, new_ids: dict, blobs: dict[int, str]) -> Plan:
    plan = Plan(d)
    existing, puts = dict(d.existing), dict(d.put_targets)
    mapping = dict(d.refs)
    for e in entries:
        if e.operation is not None:
            continue
        if e.method == "POST":
            plan.ids[e.index] = existing.get(e.index) or new_ids[e.index]
        elif e.method == "PUT":
            body_id, matched = e.resource.get("id"), None if e.id else puts.get(e.index)
            if matched and body_id is not None and body_id != matched:      # http.html#cond-update
                raise e.fail(BadRequest(f"The id in the body ({body_id!r}) differs from the matched "
                                        f"{e.type}/{matched}"))
            plan.ids[e.index] = e.id or puts.get(e.index) or e.resource.get("id") or new_ids[e.index]
            if e.id is None and (puts.get(e.index) or not e.resource.get("id")):
                plan.as_is.add(e.index)
        else:
            continue
        if e.full_url:
            mapping[e.full_url] = f"{e.type}/{plan.ids[e.index]}"
    written = {**plan.ids, **{i: t for i, t in d.delete_targets if t}, **{i: t for i, t in d.put_targets if t}}
    be.check_resolved_targets(entries, written)
    for e in entries:
        if e.method not in ("POST", "PUT") or e.operation is not None or existing.get(e.index):
            continue
        try:
            left: list[str] = []
            resource = rewrite(e.resource, mapping, left)
            if e.method == "POST":
                resource.pop("id", None)      # http.html#create: the server assigns the id
            else:
                resource["id"] = plan.ids[e.index]
            if left:
                raise PreconditionFailed(f"reference {left[0]!r} names no entry of this transaction")
            e.prepared = prepare(ctx, e.type, resource, blobs.get(e.index))
        except FhirError as err:
            raise e.fail(err) from None
    return plan


ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


def _order(e: be.Entry) -> int:
    """DELETE, POST, PUT/PATCH, then reads; operations run with the reads (after the writes)."""
    return 3 if e.operation is not None else ORDER[e.method]


def _apply(ctx, tx, entries: list[be.Entry], plan: Plan) -> list[EntryResult]:
    results: dict[int, EntryResult] = {}
    deletes = dict(plan.decisions.delete_targets)
    existing = dict(plan.decisions.existing)
    for e in sorted(entries, key=lambda x: (_order(x), x.index)):
        with trail.entry(e.method, e.url) as audited:
            try:
                results[e.index] = _apply_one(ctx, tx, e, plan, deletes, existing)
                audited.status = results[e.index].status
            except FhirError as err:
                failed = e.fail(err)
                audited.fail(err.status, failed.issues[0].diagnostics if failed.issues else None)
                raise failed from None
    return [results[e.index] for e in entries]


def _apply_one(ctx, tx, e: be.Entry, plan: Plan, deletes: dict, existing: dict) -> EntryResult:
    if e.operation is not None:
        return run_operation(ctx, e)
    if e.method == "DELETE":
        target = e.id if e.criteria is None else deletes.get(e.index)
        current = tx.read(e.type, target, "delete") if target else None
        check_if_match(current, if_match_version(e.if_match), e.type, target)
        if current is None or current.deleted:
            return EntryResult(204, current)
        return EntryResult(204, store_delete(ctx, tx, current))
    if e.method == "POST":
        if existing.get(e.index):
            return EntryResult(200, tx.read(e.type, existing[e.index], None))   # matched under the guard
        return EntryResult(201, store_new_version(tx, e.prepared, plan.ids[e.index], "POST", None), created=True)
    if e.method == "PUT":
        target = plan.ids[e.index]
        current = tx.read(e.type, target, None if e.index in plan.as_is else "update")
        if e.criteria and current is not None and not current.deleted and \
                dict(plan.decisions.put_targets).get(e.index) != target:
            raise PreconditionFailed(f"{e.type}/{target} exists but does not match '{e.criteria}'")
        check_if_match(current, if_match_version(e.if_match), e.type, target)
        check_if_none_match(current, e.if_none_match, e.type, target)
        version: Version = store_new_version(tx, e.prepared, target, "PUT", current)
        created = current is None or current.deleted
        return EntryResult(201 if created else 200, version, created=created)
    if e.method == "PATCH":
        target = e.id or dict(plan.decisions.put_targets).get(e.index)
        if target is None:
            raise PreconditionFailed(f"conditional patch '{e.criteria}' matches no {e.type}")
        current = current_or_raise(tx.read(e.type, target, "patch"), e.type, target)
        check_if_match(current, if_match_version(e.if_match), e.type, target)
        return EntryResult(200, apply_patch(ctx, tx, current, be.patch_operations(e), e.patched))
    return run_get(ctx, e)
