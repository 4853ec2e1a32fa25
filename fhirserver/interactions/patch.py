"""patch with JSON Patch (http://hl7.org/fhir/R4/http.html#patch, RFC 6902).

The patch is applied to the current version inside the write transaction, so
concurrent patches never lose each other's changes. A result that is not a
valid resource is refused with 422 (http.html#patch), a malformed patch with 400.
"""
from __future__ import annotations

import jsonpatch
import jsonpointer

from .. import jsonio
from ..errors import BadRequest, InvalidResource, Unprocessable
from ..storage.base import Version
from .binary_content import externalize_data, pending_blob
from .common import Result, check_id, check_if_match, check_type, current_or_raise, prepare, store_new_version
from .conditional import tx_visible
from .references import resolve_conditionals


def patch(ctx, type: str, id: str, operations, if_match: int | None = None) -> Result:
    check_type(type)
    check_id(id)
    compiled = compile_patch(operations)
    with ctx.store.transaction() as tx:
        ctx.access.check_visible(tx_visible(tx), "patch", type, id)
        current = current_or_raise(tx.read(type, id), type, id)
        check_if_match(current, if_match, type, id)
        version = apply_patch(ctx, tx, current, compiled)
    return Result(version, 200, jsonio.loads(version.body))


def compile_patch(operations) -> jsonpatch.JsonPatch:
    if isinstance(operations, jsonpatch.JsonPatch):
        return operations
    if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
        raise BadRequest("A JSON Patch document must be an array of operation objects")
    try:
        return jsonpatch.JsonPatch(operations)
    except (jsonpatch.InvalidJsonPatch, jsonpointer.JsonPointerException, TypeError) as e:
        raise BadRequest(f"Invalid JSON Patch: {e}") from None


def apply_patch(ctx, tx, current, operations) -> Version:
    """Apply a JSON Patch to the current version inside the caller's write transaction."""
    type, id = current.type, current.id
    compiled = compile_patch(operations)
    try:
        result = compiled.apply(jsonio.loads(current.body), in_place=True)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, KeyError) as e:
        raise Unprocessable(f"JSON Patch could not be applied: {e}") from None
    if not isinstance(result, dict) or result.get("id") != id or result.get("resourceType") != type:
        raise Unprocessable("A patch must not change the resource's type or id")
    result = resolve_conditionals(ctx, result)      # a reference patched in as Patient?identifier=...
    new_blob = externalize_data(ctx, result) if type == "Binary" and "data" in result else None
    with pending_blob(ctx, new_blob):
        try:
            prepared = prepare(ctx, type, result, new_blob or current.blob)
        except InvalidResource as e:
            raise Unprocessable("The patched resource is not valid", issues=e.issues) from None
        return store_new_version(tx, prepared, id, "PATCH", current)
