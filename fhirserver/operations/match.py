"""Patient/$match: scored candidates for a probe Patient (http://hl7.org/fhir/R4/patient-operation-match.html).

A searchset Bundle, best first, each entry with search.mode "match", search.score and the
match-grade extension; only what the caller may read is considered (the search guard)."""
from __future__ import annotations

from ..errors import BadRequest
from ..uhid import matching
from ..validation import validate
from .parameters import first, flag

MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"
DEFAULT_COUNT = 10


def match(ctx, rtype, id, params: dict) -> dict:
    probe = params["resource"][0]
    if not isinstance(probe, dict) or probe.get("resourceType") != "Patient":
        raise BadRequest("Patient/$match needs a Patient resource in its 'resource' parameter")
    validate(probe)         # a malformed probe is a 400 naming its elements
    only_certain = flag(params, "onlyCertainMatches")
    count = first(params, "count", DEFAULT_COUNT)
    try:
        count = int(count)
    except (TypeError, ValueError):
        raise BadRequest(f"count must be an integer, got {count!r}") from None
    if not 1 <= count <= ctx.settings.max_count:
        raise BadRequest(f"count must be between 1 and {ctx.settings.max_count}")
    found = matching.find(ctx, probe, ctx.uhid_system)
    if only_certain:
        found = [c for c in found if c.grade == "certain"]
    found = found[:count]
    return {"resourceType": "Bundle", "type": "searchset", "total": len(found), "entry": [
        {"fullUrl": f"{ctx.base}/Patient/{c.id}", "resource": c.resource,
         "search": {"mode": "match", "score": c.score,
                    "extension": [{"url": MATCH_GRADE, "valueCode": c.grade}]}} for c in found]}
