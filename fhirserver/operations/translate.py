"""$translate: a code's counterparts through ConceptMaps (http://hl7.org/fhir/R4/conceptmap-operation-translate.html).
The map is the instance, the url (+ conceptMapVersion), the conceptMap given inline, or - with none of
those - every map the server knows whose source/target fit. result is true when a match says the
concepts are related (equivalence other than unmatched/disjoint)."""
from __future__ import annotations

from ..terminology.conceptmap import matched
from .parameters import first, flag
from .terminology_inputs import codings, definition


def translate(ctx, rtype, id, params: dict) -> dict:
    tx = ctx.terminology
    conceptmap = url = None
    if id is not None or first(params, "conceptMap") is not None or first(params, "url") is not None:
        given = definition(ctx, "ConceptMap", id, params, url="url", resource="conceptMap",
                           version="conceptMapVersion")
        conceptmap, url = (given, None) if isinstance(given, dict) else (None, given)
    matches = []
    for c in codings(params):
        matches.extend(tx.translate(c.system, c.code, url=url, conceptmap=conceptmap, source=first(params, "source"),
                                    target=first(params, "target"), target_system=first(params, "targetsystem"),
                                    reverse=flag(params, "reverse")))
    result = matched(matches)
    out = [{"name": "result", "valueBoolean": result}]
    if not result:
        out.append({"name": "message", "valueString": "No mapping found" if not matches
                    else "The maps say the concepts are not related"})
    for m in matches:
        part = [{"name": "equivalence", "valueCode": m["equivalence"]},
                {"name": "concept", "valueCoding": m["concept"]}]
        if m.get("source"):
            part.append({"name": "source", "valueUri": m["source"]})
        out.append({"name": "match", "part": part})
    return {"resourceType": "Parameters", "parameter": out}
