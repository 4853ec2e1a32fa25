"""$expand: a ValueSet's members, filtered and paged (http://hl7.org/fhir/R4/valueset-operation-expand.html).
Type level names the value set by url (+ valueSetVersion) or gives it inline (valueSet); instance level
expands the stored ValueSet the caller may read. Honoured: filter, offset, count, activeOnly; the other
inputs (designations, languages, system versions...) are accepted and not applied (docs/terminology.md)."""
from __future__ import annotations

from .parameters import first, flag
from .terminology_inputs import definition


def expand(ctx, rtype, id, params: dict) -> dict:
    valueset = definition(ctx, "ValueSet", id, params, url="url", resource="valueSet", version="valueSetVersion")
    return ctx.terminology.expand(valueset, filter=first(params, "filter"), offset=first(params, "offset"),
                                       count=first(params, "count"), active_only=flag(params, "activeOnly"))
