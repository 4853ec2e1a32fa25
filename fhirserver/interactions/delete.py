"""delete and conditional delete (http://hl7.org/fhir/R4/http.html#delete, #cdelete).

Deleting keeps every version (history shows the deletion); a later read gives 410.
Deleting something absent or already deleted succeeds (204), as the spec allows.
"""
from __future__ import annotations

from ..errors import PreconditionFailed
from .common import Result, check_id, check_if_match, check_type, store_delete
from .conditional import matches


def delete(ctx, type: str, id: str, if_match: int | None = None, provenance: dict | None = None) -> Result:
    check_type(type)
    check_id(id)
    with ctx.repo.transaction(provenance) as tx:
        current = tx.read(type, id, "delete")
        check_if_match(current, if_match, type, id)
        if current is None or current.deleted:
            return Result(current, 204)
        return Result(store_delete(ctx, tx, current), 204)


def conditional_delete(ctx, type: str, criteria: str, provenance: dict | None = None) -> Result:
    """DELETE [type]?criteria: this server supports single matches (conditionalDelete = single)."""
    check_type(type)
    with ctx.repo.transaction(provenance) as tx:
        ctx.repo.allow("delete", type)      # 403 before the criteria are read
        found = matches(ctx, tx, type, criteria, "delete")
        if len(found) > 1:
            raise PreconditionFailed(f"Conditional delete '{criteria}' matches more than one {type}")
        if not found:
            return Result(None, 204)
        return Result(store_delete(ctx, tx, found[0]), 204)
