"""$validate (http://hl7.org/fhir/R4/resource-operation-validate.html): would this content be acceptable,
generally, as a create, as an update of this resource, or may this resource be deleted? Nothing is stored.

- Without mode: structural R4 (fhirserver.validation), then the base R4 StructureDefinition of the type
  (its invariants and required bindings) through the profile engine, then the profiles the resource
  claims and the one the server requires of its type (validation/write_policy.py, as a write judges them);
  with a `profile` parameter: that profile instead of the claimed ones (profile unknown: an error issue).
- mode=create (type or instance level) and mode=update (instance level): the write itself by THIS caller,
  run to its end (admission, custody, UHID uniqueness and permanence, orders, messages) inside a store
  transaction that is rolled back; the content checks judge the resource as that write would store it
  (a Patient's UHID drawn by the server in it, as interactions/common.prepare judges it), before it is
  written. Without a mode the content is judged as given.
- mode=delete (instance level): the content is ignored; the caller's delete is run and rolled back.
- mode=profile: general conformance to the `profile` parameter's profile (the content alone, as without a
  mode; without that parameter, the claimed and required profiles).

Status (the operation's text): 200 whether or not the resource is valid, its OperationOutcome listing
what is wrong; a 4xx only when the validation itself cannot be performed (no resource, a resource of
another type, an unknown mode, update or delete at type level)."""
from __future__ import annotations

import copy

from .. import jsonio
from ..errors import BadRequest, FhirError, InvalidResource, Issue, operation_outcome
from ..interactions.common import current_or_raise, new_id, prepare, store_delete, store_new_version
from ..interactions.references import resolve_conditionals
from ..validation import validate, write_policy
from ..validation.profile.types import CORE
from .parameters import first

MODES = ("create", "update", "delete", "profile")     # R4 resource-validation-mode


class _RolledBack(Exception):
    """Ends a dry run's transaction so that nothing of it is committed."""


def validate_operation(ctx, rtype, id, params: dict) -> dict:
    mode, profile, resource = first(params, "mode"), first(params, "profile"), first(params, "resource")
    if mode is not None and mode not in MODES:
        raise BadRequest(f"$validate mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode in ("update", "delete") and id is None:
        raise BadRequest(f"$validate mode={mode} is invoked on a resource instance: [type]/[id]/$validate")
    if mode == "delete":
        return _answer(_dry_run(ctx, lambda tx: _delete(ctx, tx, rtype, id)))
    if mode == "profile":           # general conformance to the nominated profile: the content alone
        mode = None
    if resource is None and id is not None and mode is None:
        resource = jsonio.loads(current_or_raise(ctx.repo.read(rtype, id), rtype, id).body)
    if not isinstance(resource, dict):
        raise BadRequest("$validate needs a resource (the body, or a 'resource' parameter)")
    if rtype and resource.get("resourceType") != rtype:
        raise BadRequest(f"$validate on {rtype} got a {resource.get('resourceType')}")
    if mode is None:
        return _answer(content_issues(ctx, resource, profile))
    # create/update: the profiles judge the resource as the write would store it (a Patient's UHID drawn by
    # the server is in it, as interactions/common.prepare judges it), off the write lock as the write does;
    # a content error ends the run there
    try:
        prepared = _prepare(ctx, resource, mode, id)
    except FhirError as e:
        return _answer(list(e.issues))
    issues = content_issues(ctx, copy.deepcopy(prepared.resource), profile)
    if _failed(issues):
        return _answer(issues)
    return _answer(issues + _dry_run(ctx, lambda tx: _store(tx, prepared, mode, id)))


def content_issues(ctx, resource: dict, profile: str | None = None) -> list[Issue]:
    """Structural R4, the base definition of the type, and the claimed (or the given) and required profiles."""
    try:
        validate(resource)
    except InvalidResource as e:
        return list(e.issues)       # the profile engine assumes well-formed content
    rtype = resource["resourceType"]
    if profile is not None:
        profiles = [(profile, True)]
    else:
        profiles = [(c, False) for c in write_policy.claimed(resource)]
    profiles += [(c, True) for c in write_policy.required_profiles(ctx.settings.required_profiles).get(rtype, ())]
    outcome = write_policy.evaluate(ctx, resource, [(CORE + rtype, True), *profiles])
    return outcome.issues()


def _failed(issues: list[Issue]) -> bool:
    return any(i.severity in ("error", "fatal") for i in issues)


def _answer(issues: list[Issue]) -> dict:
    if not _failed(issues):
        issues = [Issue("No errors found", "informational", "information"), *issues]
    return operation_outcome(issues)


def _dry_run(ctx, write) -> list[Issue]:
    """What the write would answer: nothing, or the issues of its error. Its transaction is rolled back."""
    try:
        with ctx.repo.transaction() as tx:
            write(tx)
            raise _RolledBack
    except _RolledBack:
        return []
    except FhirError as e:
        return list(e.issues)


def _unchecked(ctx):
    """This request without the profile rule: the content checks have reported it already."""
    import dataclasses
    clone = ctx.acting_as(ctx.access)
    clone.settings = dataclasses.replace(ctx.settings, profile_validation="off")
    return clone


def _prepare(ctx, resource: dict, mode: str, id: str | None):
    """The lock-free half of the write (interactions/common.prepare), profile rule off (judged apart)."""
    body = copy.deepcopy(resource)
    if mode == "create":
        body.pop("id", None)        # http.html#create: the server assigns the id
    elif body.get("id") != id:
        raise BadRequest(f"The id in the body ({body.get('id')!r}) must equal the id in the URL ('{id}')")
    validate(body)                  # structural R4 first, as the write checks it
    return prepare(_unchecked(ctx), body["resourceType"], resolve_conditionals(ctx, body))


def _store(tx, prepared, mode: str, id: str | None) -> None:
    if mode == "create":
        store_new_version(tx, prepared, new_id(), "POST", None)
    else:       # outside the caller's reach the read answers as for an absent id
        store_new_version(tx, prepared, id, "PUT", tx.read(prepared.type, id, "update"))


def _delete(ctx, tx, rtype: str, id: str) -> None:
    current = current_or_raise(tx.read(rtype, id, "delete"), rtype, id)
    store_delete(ctx, tx, current)
