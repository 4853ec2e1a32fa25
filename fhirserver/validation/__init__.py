"""FHIR R4 (4.0.1) structural validation of one resource.

    from fhirserver.validation import validate
    validate(resource)   # None, or raises fhirserver.errors.InvalidResource(issues=[...])

Three parts, each documented in its module:
  walk.py     rules the JSON schema cannot express: null, empty values, required
              elements, one form per choice element, real calendar dates, and
              the resourceType of nested resources;
  fast.py     accept path: fastjsonschema code compiled once for all types;
  precise.py  report path, only for rejected resources: jsonschema lists every
              schema error with its FHIRPath-style location.
The schema is profiles/fhir.schema.json (HL7's, adapted in schema.py) and the
cardinalities profiles/required-elements.json (built by build_required.py).
Figures: bench/bench_validation.py.

Not checked here: invariants (FHIRPath constraints) but txt-1 (walk.py), terminology bindings
beyond the schema's enums, profiles, reference targets.
"""
from __future__ import annotations

from fhirserver.errors import InvalidResource, Issue

from . import fast, precise
from .messages import json_type
from .schema import model
from .walk import TooMany, Walker

__all__ = ["validate", "warm_up", "MAX_ISSUES"]

MAX_ISSUES = 50


def warm_up() -> None:
    """Load the schema and compile the fast checks now (about 1-2 s), not on first use."""
    fast.checks()


def validate(resource) -> None:
    if not isinstance(resource, dict):
        kind = "null" if resource is None else json_type(resource)
        raise InvalidResource(issues=[Issue(f"A FHIR resource must be a JSON object, not {kind}", "structure")])
    rtype = resource.get("resourceType")
    m = model()
    if rtype is None:
        raise InvalidResource(issues=[Issue("Missing required element 'resourceType'", "required",
                                            expression=("resourceType",))])
    if not isinstance(rtype, str) or rtype not in m.resource_types:
        raise InvalidResource(issues=[Issue(f"Unknown resource type '{rtype}' (not an R4 resource type)",
                                            "invalid", expression=("resourceType",))])
    try:
        issues = _check(resource, rtype, m)
    except RecursionError:
        issues = [Issue("The resource is nested too deeply to be processed", "structure",
                        expression=(rtype,))]
    if issues:
        raise InvalidResource(issues=issues)


def _check(resource: dict, rtype: str, m) -> list[Issue]:
    walker = Walker(m, MAX_ISSUES + 1)
    try:
        walker.resource(resource, rtype, rtype)
    except TooMany:
        pass
    issues = walker.issues
    if not issues:
        rejected = fast.first_error(rtype, resource)
        for nested_type, nested, _path in walker.nested:
            if rejected:
                break
            rejected = fast.first_error(nested_type, nested)
        if not rejected:
            return []
    issues.extend(precise.schema_issues(resource, rtype, MAX_ISSUES + 1))
    if not issues:  # the engines disagree: never accept what fastjsonschema refused
        issues = [Issue(f"Invalid resource: {rejected}", "invalid", expression=(rtype,))]
    return _dedupe(issues)


def _dedupe(issues: list[Issue]) -> list[Issue]:
    """One issue per element (walk's messages come first and win), capped."""
    seen, out = set(), []
    for issue in issues:
        key = issue.expression
        if key not in seen:
            seen.add(key)
            out.append(issue)
    if len(out) > MAX_ISSUES:
        out = out[: MAX_ISSUES - 1]
        out.append(Issue(f"More problems were found; only the first {MAX_ISSUES - 1} are listed",
                         "invalid", severity="information"))
    return out
