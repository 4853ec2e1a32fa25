"""patch with JSON Patch (http://hl7.org/fhir/R4/http.html#patch, RFC 6902) or FHIRPath Patch
(a Parameters resource, http://hl7.org/fhir/R4/fhirpatch.html; interactions/fhirpath_patch.py), and
conditional patch, PATCH [type]?criteria (`conditional_patch`: one match is patched, none 404, several 412).

The patch is applied, and the result validated and indexed, BEFORE the write lock is taken, to the
version current at that moment; under the lock the write goes ahead only if that version is still
the current one (otherwise the patch is applied again to the newer version, at most ATTEMPTS times,
then 409). So concurrent patches never lose each other's changes, and no patch holds up other
writers while it is being applied.

Applying is bounded, op by op (RFC 6902 section 4.5, "copy", makes a document grow without the
request growing: `add /x ["a"]` then N times `copy /x -> /x/-` doubles it each time):
- at most MAX_OPERATIONS operations (413);
- every byte a patch adds comes from the request (add, replace) except what "copy" duplicates: all
  copies together may duplicate at most MAX_COPIED_BYTES (measured as JSON before each copy is
  made), so a patched document is at most the current one + the request + that (422, too-costly);
- no operation may nest the document deeper than max_json_depth (422, too-costly);
- the result is at most max_body_bytes as JSON (or the current version's size, if larger) (422).
A FHIRPath Patch takes the same path and limits: at most MAX_OPERATIONS operations (413), every
value it adds comes from the request (it has no copy), no deeper than max_json_depth (422) and the
same size bound on the result (422).
A result that is not a valid resource is refused with 422 (http.html#patch), a malformed patch with 400.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import jsonpatch
import jsonpointer

from .. import jsonio
from ..errors import (
    BadRequest,
    Conflict,
    FhirError,
    InvalidResource,
    Issue,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    Unprocessable,
)
from ..storage.base import Version
from .binary_content import externalize_data, pending_blob
from .common import (
    Prepared,
    Result,
    check_id,
    check_if_match,
    check_type,
    current_or_raise,
    if_match_version,
    prepare,
    store_new_version,
)
from .conditional import matches
from .fhirpath_patch import FhirpathPatch, compile_parameters, is_parameters
from .references import resolve_conditionals

MAX_OPERATIONS = 1000
MAX_COPIED_BYTES = 64 * 1024     # copying a name, an address, an extension: far below this
_UNBOUNDED = float("inf")
ATTEMPTS = 3        # a patch applied to a version someone replaced meanwhile is applied again, this often


@dataclass
class Patched:
    """A patch applied and prepared outside the write lock, to one version of one resource."""
    type: str
    id: str
    version: int              # the version it was applied to
    prepared: Prepared
    new_blob: str | None      # Binary.data patched in: a blob stored already, to drop if unused

    def fits(self, current: Version) -> bool:
        return (self.type, self.id, self.version) == (current.type, current.id, current.version)

    def discard(self, ctx) -> None:
        if self.new_blob is not None:
            ctx.store.blobs.delete(self.new_blob)
            self.new_blob = None


def patch(ctx, type: str, id: str, operations, if_match: int | None = None, provenance: dict | None = None) -> Result:
    check_type(type)
    check_id(id)
    compiled = compile_patch(operations)
    for _attempt in range(ATTEMPTS):
        # visibility first: what a patch does to a resource out of reach must tell nothing (no oracle)
        current = current_or_raise(ctx.repo.read(type, id, "patch"), type, id)
        check_if_match(current, if_match, type, id)
        patched = prepare_patch(ctx, current, compiled)
        with pending_blob(ctx, patched.new_blob):
            with ctx.repo.transaction(provenance) as tx:
                now = current_or_raise(tx.read(type, id, "patch"), type, id)
                check_if_match(now, if_match, type, id)
                version = store_new_version(tx, patched.prepared, id, "PATCH", now) if patched.fits(now) else None
        if version is not None:
            return Result(version, 200, jsonio.loads_stored(version.body), patched.prepared.profile_outcome)
        patched.discard(ctx)        # someone wrote a newer version meanwhile: patch that one
    raise Conflict(f"{type}/{id} kept changing while the patch was applied ({ATTEMPTS} times): send it again")


def conditional_patch(ctx, type: str, criteria: str, operations, if_match: int | None = None,
                      provenance: dict | None = None) -> Result:
    """PATCH [type]?criteria (http.html#patch): the one resource the caller may patch that matches is
    patched, as it was when matched (a version written meanwhile is a 412, as a stale If-Match is);
    no match is a 404 (a patch creates nothing), several a 412, as a conditional update."""
    check_type(type)
    compiled = compile_patch(operations)
    found = matches(ctx, ctx.repo, type, criteria, "patch")
    if len(found) > 1:
        raise PreconditionFailed(f"Conditional patch '{criteria}' matches more than one {type}")
    if not found:
        raise NotFound(f"Conditional patch '{criteria}' matches no {type}")
    target = found[0]
    check_if_match(target, if_match, type, target.id)
    return patch(ctx, type, target.id, compiled, target.version, provenance)


def compile_patch(operations) -> jsonpatch.JsonPatch | FhirpathPatch:
    """A JSON Patch (an array of operations) or a FHIRPath Patch (a Parameters resource), checked for
    shape and size (400, 413)."""
    if isinstance(operations, FhirpathPatch):
        return operations
    if is_parameters(operations):
        return compile_parameters(operations, MAX_OPERATIONS)
    if isinstance(operations, jsonpatch.JsonPatch):
        operations = operations.patch
    if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
        raise BadRequest("A JSON Patch document must be an array of operation objects")
    if len(operations) > MAX_OPERATIONS:
        raise PayloadTooLarge(f"A JSON Patch may have at most {MAX_OPERATIONS} operations; this one has "
                              f"{len(operations)}")
    try:
        return jsonpatch.JsonPatch(operations)
    except (jsonpatch.InvalidJsonPatch, jsonpointer.JsonPointerException, TypeError) as e:
        raise BadRequest(f"Invalid JSON Patch: {e}") from None


def prepare_patch(ctx, current: Version, operations) -> Patched:
    """Apply a JSON Patch or FHIRPath Patch to `current` (bounded), then validate and index the result: the costly,
    lock-free half of a patch. The caller writes it only if `current` is still the current version."""
    type, id = current.type, current.id
    compiled = compile_patch(operations)
    limit = max(ctx.settings.max_body_bytes, len(current.body or b""))
    if isinstance(compiled, FhirpathPatch):
        result = compiled.apply(jsonio.loads_stored(current.body), ctx.settings.max_json_depth)
    else:
        result = apply_bounded(jsonio.loads_stored(current.body), compiled.patch, ctx.settings.max_json_depth)
    if not isinstance(result, dict) or result.get("id") != id or result.get("resourceType") != type:
        raise Unprocessable("A patch must not change the resource's type or id")
    size = len(jsonio.dumps(result))
    if size > limit:
        raise _too_costly(f"The patched resource would be {size} bytes as JSON; at most {limit} are accepted")
    result = resolve_conditionals(ctx, result)      # a reference patched in as Patient?identifier=...
    new_blob = externalize_data(ctx, result) if type == "Binary" and "data" in result else None
    with pending_blob(ctx, new_blob):
        try:
            prepared = prepare(ctx, type, result, new_blob or current.blob)
        except InvalidResource as e:
            raise Unprocessable("The patched resource is not valid", issues=e.issues) from None
    return Patched(type, id, current.version, prepared, new_blob)


def apply_patch(ctx, tx, current: Version, operations, patched: Patched | None = None) -> Version:
    """Write the patched `current` inside the caller's write transaction (a transaction Bundle's PATCH
    entry). `patched`: the same patch prepared before the lock (prepare_entries); when the version it
    was applied to is no longer the current one, the patch is applied again here (bounded as ever)."""
    if patched is None or not patched.fits(current):
        if patched is not None:
            patched.discard(ctx)
        patched = prepare_patch(ctx, current, operations)
    with pending_blob(ctx, patched.new_blob):
        return store_new_version(tx, patched.prepared, current.id, "PATCH", current)


def prepare_entries(ctx, entries, targets: dict, operations_of) -> None:
    """Transactions: apply each PATCH entry to the current version of its target before the write
    lock (entry.patched); targets: entry index -> id of conditional PATCH targets. An entry whose
    target does not exist is left to fail in its turn under the lock."""
    for e in entries:
        if e.method != "PATCH" or e.operation is not None:
            continue
        target = e.id or targets.get(e.index)
        if target is None:
            continue
        try:
            current = ctx.repo.read(e.type, target, "patch")
            if current is None or current.deleted:
                continue
            check_if_match(current, if_match_version(e.if_match), e.type, target)
            e.patched = prepare_patch(ctx, current, operations_of(e))
        except FhirError as err:
            raise e.fail(err) from None


def apply_bounded(doc, operations: list[dict], max_depth: int):
    """RFC 6902 section 5: the operations in order, each checked against the limits before it is applied.

    The document's depth is tracked as an upper bound (deepest): an add, replace or copy puts a value
    at its path; a move can deepen the document by as much as its path is deeper than its origin."""
    copied = 0
    deepest = _measure(doc, _UNBOUNDED)[1]
    limit = max(max_depth, deepest)      # a stored resource is never made to fail for its own depth
    for n, op in enumerate(operations):
        kind = op.get("op")
        if kind == "copy":
            size, depth = _measure(_value_at(doc, op.get("from"), n), MAX_COPIED_BYTES - copied)
            copied += size
            if copied > MAX_COPIED_BYTES:
                raise _too_costly(f"The patch copies more than {MAX_COPIED_BYTES} bytes in all (operation {n}, "
                                  "copy): a patch may not make a resource grow beyond what it sends")
            deepest = max(deepest, _depth_of(op.get("path")) + depth)
        elif kind in ("add", "replace"):
            deepest = max(deepest, _depth_of(op.get("path")) + _measure(op.get("value"), _UNBOUNDED)[1])
        elif kind == "move":
            deepest += max(0, _depth_of(op.get("path")) - _depth_of(op.get("from")))
        if deepest > limit:
            raise _too_costly(f"Operation {n} ({kind}) would nest the resource deeper than {limit} levels")
        single = {**op, "value": copy.deepcopy(op["value"])} if "value" in op else op
        try:
            doc = jsonpatch.JsonPatch([single]).apply(doc, in_place=True)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, KeyError) as e:
            raise Unprocessable(f"JSON Patch could not be applied (operation {n}): {e}") from None
    return doc


def _value_at(doc, pointer, n: int):
    try:
        return jsonpointer.resolve_pointer(doc, pointer)
    except (jsonpointer.JsonPointerException, TypeError, KeyError) as e:
        raise Unprocessable(f"JSON Patch could not be applied (operation {n}): {e}") from None


def _depth_of(path) -> int:
    return str(path).count("/")


def _measure(value, cap: int) -> tuple[int, int]:
    """(about the size of value as JSON, its nesting depth), walking at most until the size passes cap."""
    size, deepest, stack = 0, 0, [(value, 0)]
    while stack and size <= cap:
        node, depth = stack.pop()
        if isinstance(node, dict):
            deepest = max(deepest, depth + 1)
            size += 2 + sum(len(k) + 4 for k in node)
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            deepest = max(deepest, depth + 1)
            size += 2 + len(node)
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, str):
            size += len(node) + 2
        else:
            size += len(str(node))
    return size, deepest


def _too_costly(message: str) -> Unprocessable:
    return Unprocessable(message, issues=[Issue(message, "too-costly")])
