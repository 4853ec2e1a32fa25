"""$subsumes: how two codes of one code system are related by is-a
(http://hl7.org/fhir/R4/codesystem-operation-subsumes.html): outcome equivalent | subsumes (A is an
ancestor of B) | subsumed-by | not-subsumed. Unknown code system or code: 404."""
from __future__ import annotations

from ..errors import BadRequest
from ..terminology.codesystem import compile_code_system
from ..terminology.concepts import subsumes_in
from .parameters import first
from .terminology_inputs import codings, definition


def subsumes(ctx, rtype, id, params: dict) -> dict:
    a = codings(params, code="codeA", system=None, coding="codingA", concept=None, version=None)[0]
    b = codings(params, code="codeB", system=None, coding="codingB", concept=None, version=None)[0]
    if id is not None:
        index = compile_code_system(definition(ctx, "CodeSystem", id, params, url="system", resource=None))
    else:
        system = first(params, "system") or a.system or b.system
        if not system:
            raise BadRequest("$subsumes needs the system (or codings that name it)")
        index = ctx.terminology.asked_code_system(system, first(params, "version"))
    for c in (a, b):
        if c.system and c.system != index.url:
            raise BadRequest(f"Coding of {c.system} given to $subsumes on {index.url}")
    return {"resourceType": "Parameters",
            "parameter": [{"name": "outcome", "valueCode": subsumes_in(index, a.code, b.code)}]}
