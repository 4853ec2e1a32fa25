"""create and conditional create (http://hl7.org/fhir/R4/http.html#create, #ccreate)."""
from __future__ import annotations

from ..errors import PreconditionFailed
from .common import Result, check_type, new_id, prepare, store_new_version
from .conditional import matches
from .references import resolve_conditionals


def create(ctx, type: str, resource: dict, if_none_exist: str | None = None, blob: str | None = None,
           provenance: dict | None = None) -> Result:
    """Store a new resource under a server-assigned id (a client id in the body is ignored), with its
    Provenance in the same transaction (provenance: the checked X-Provenance header, if any). blob: a
    Binary's uploaded content; when If-None-Exist matches nothing is written, so it is deleted."""
    check_type(type)
    ctx.repo.allow("create", type)      # before any work on the content (profile validation costs up to 10 s)
    resource = resolve_conditionals(ctx, resource)
    prepared = prepare(ctx, type, resource, blob)
    with ctx.repo.transaction(provenance) as tx:
        if if_none_exist:
            found = matches(ctx, tx, type, if_none_exist, "create")
            if len(found) > 1:
                raise PreconditionFailed(f"If-None-Exist '{if_none_exist}' matches more than one {type}")
            if found:
                if blob is not None:
                    ctx.store.blobs.delete(blob)
                return Result(found[0], 200)
        version = store_new_version(tx, prepared, new_id(), "POST", None)
    return Result(version, 201, resource, prepared.profile_outcome)
