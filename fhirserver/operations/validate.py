"""$validate: check a resource against R4 without storing it (http://hl7.org/fhir/R4/resource-operation-validate.html)."""
from __future__ import annotations

from .. import jsonio
from ..errors import BadRequest, InvalidResource, Issue, operation_outcome
from ..interactions.common import current_or_raise
from .parameters import first


def validate_operation(ctx, rtype, id, params: dict) -> dict:
    from ..validation import validate
    if params.get("profile"):
        raise BadRequest("$validate against a profile is not supported yet: validation is against R4 itself")
    resource = first(params, "resource")
    if resource is None and id is not None:
        resource = jsonio.loads(current_or_raise(ctx.repo.read(rtype, id), rtype, id).body)
    if not isinstance(resource, dict):
        raise BadRequest("$validate needs a resource (the body, or a 'resource' parameter)")
    if rtype and resource.get("resourceType") != rtype:
        raise BadRequest(f"$validate on {rtype} got a {resource.get('resourceType')}")
    try:
        validate(resource)
    except InvalidResource as e:
        return operation_outcome(e.issues)
    return operation_outcome([Issue("No problems found", "informational", "information")])
