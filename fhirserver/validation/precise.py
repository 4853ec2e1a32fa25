"""Report path: jsonschema (Draft 6) finds every schema error with its path.

Only used once a resource is known to be invalid, so its speed matters less.
ResourceList is replaced by the `fhirResource` keyword, which dispatches on
resourceType instead of trying a oneOf over every resource type (48 s -> 3 s
for the 779 official examples).
"""
from __future__ import annotations

import threading
from collections.abc import Iterator

from jsonschema import Draft6Validator, ValidationError, validators

from fhirserver.errors import Issue

from .messages import issues_for
from .schema import model


def _fhir_resource(validator, _value, instance, _schema):
    # http://hl7.org/fhir/R4/references.html#contained, bundle.html#entry
    if not isinstance(instance, dict):
        return  # null and wrong JSON types are reported by walk / the type keyword
    rtype = instance.get("resourceType")
    if rtype is None:
        yield ValidationError("Missing required element 'resourceType'", validator="fhirResource",
                              validator_value="required")
    elif rtype not in model().resource_types:
        yield ValidationError(f"Unknown resource type {rtype!r}", validator="fhirResource",
                              validator_value="invalid")
    else:
        yield from validator.descend(instance, {"$ref": "#/definitions/" + rtype})


_lock = threading.Lock()
_validators: dict[str, Draft6Validator] = {}
_cls = None


def validator_for(rtype: str) -> Draft6Validator:
    """One validator per resource type, built on first use (thread-safe)."""
    global _cls
    v = _validators.get(rtype)
    if v is None:
        with _lock:
            v = _validators.get(rtype)
            if v is None:
                if _cls is None:
                    _cls = validators.extend(Draft6Validator, {"fhirResource": _fhir_resource})
                schema = {"$ref": "#/definitions/" + rtype, "definitions": model().definitions}
                v = _validators[rtype] = _cls(schema)
    return v


def schema_issues(resource: dict, rtype: str, limit: int) -> Iterator[Issue]:
    """Issues for every schema error (at most about `limit`)."""
    n = 0
    for error in validator_for(rtype).iter_errors(resource):
        for issue in issues_for(error, rtype):
            yield issue
            n += 1
        if n >= limit:
            return
