"""update, update-as-create and conditional update (http://hl7.org/fhir/R4/http.html#update, #cond-update).

If-None-Match on an update is evaluated as RFC 9110 13.1.2 requires of an origin server: `*` fails (412)
when the resource exists (create only, never overwrite), a list of entity tags fails when the current
version is one of them; on a conditional update against the match, and on a batch or transaction PUT
entry (Bundle.entry.request.ifNoneMatch) as on a single request."""
from __future__ import annotations

from ..errors import BadRequest, PreconditionFailed
from .common import Result, check_id, check_if_match, check_type, new_id, prepare, store_new_version
from .conditional import matches
from .read import none_match_hits
from .references import resolve_conditionals


def update(ctx, type: str, id: str, resource: dict, if_match: int | None = None, blob: str | None = None,
           method: str = "PUT", provenance: dict | None = None, if_none_match: str | None = None) -> Result:
    check_type(type)
    check_id(id)
    if isinstance(resource, dict) and resource.get("id") != id:
        raise BadRequest(f"The id in the body ({resource.get('id')!r}) must equal the id in the URL ('{id}')")
    resource = resolve_conditionals(ctx, resource)
    prepared = prepare(ctx, type, resource, blob)
    with ctx.repo.transaction(provenance) as tx:
        current = tx.read(type, id, "update")     # no update-as-create outside the reach, and no oracle
        check_if_match(current, if_match, type, id)
        check_if_none_match(current, if_none_match, type, id)
        version = store_new_version(tx, prepared, id, method, current)
    created = current is None or current.deleted
    return Result(version, 201 if created else 200, resource, prepared.profile_outcome)


def check_if_none_match(current, header: str | None, type: str, id: str) -> None:
    """If-None-Match on a write (RFC 9110 13.1.2): 412 when it names the current version, or `*` and the
    resource exists (a deleted one does not)."""
    if header is None or not header.strip() or current is None or current.deleted:
        return
    if none_match_hits(current, header):
        raise PreconditionFailed(f"If-None-Match {header.strip()!r}: {type}/{id} exists (version "
                                 f"{current.version}); nothing was written")


def conditional_update(ctx, type: str, criteria: str, resource: dict, if_match: int | None = None,
                       provenance: dict | None = None, blob: str | None = None,
                       if_none_match: str | None = None) -> Result:
    """PUT [type]?criteria: 0 matches create, 1 updates it, more -> 412."""
    check_type(type)
    resource = resolve_conditionals(ctx, resource)
    prepared = prepare(ctx, type, resource, blob)
    with ctx.repo.transaction(provenance) as tx:
        found = matches(ctx, tx, type, criteria, "update")
        if len(found) > 1:
            raise PreconditionFailed(f"Conditional update '{criteria}' matches more than one {type}")
        body_id = resource.get("id")
        if found:
            current = found[0]
            if body_id is not None and body_id != current.id:
                raise BadRequest(f"The id in the body ({body_id!r}) differs from the matched {type}/{current.id}")
            check_if_match(current, if_match, type, current.id)
            check_if_none_match(current, if_none_match, type, current.id)
            return Result(store_new_version(tx, prepared, current.id, "PUT", current), 200, resource,
                          prepared.profile_outcome)
        if body_id is not None:
            check_id(body_id)
            existing = tx.read(type, body_id, "update")
            if existing is not None and not existing.deleted:
                raise PreconditionFailed(f"{type}/{body_id} exists but does not match '{criteria}'")
            return Result(store_new_version(tx, prepared, body_id, "PUT", existing), 201, resource,
                          prepared.profile_outcome)
        return Result(store_new_version(tx, prepared, new_id(), "PUT", None), 201, resource, prepared.profile_outcome)
