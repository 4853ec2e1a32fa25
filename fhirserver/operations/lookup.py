"""$lookup: a code's display and details (http://hl7.org/fhir/R4/codesystem-operation-lookup.html), from
the code systems the server knows (terminology engine: stored definitions first, then shipped)."""
from __future__ import annotations

from ..errors import BadRequest, NotFound
from ..terminology.codesystem import property_value
from .terminology_inputs import codings

_VALUE_TYPES = {"valueCode", "valueCoding", "valueString", "valueInteger", "valueBoolean", "valueDateTime",
                "valueDecimal"}


def lookup(ctx, rtype, id, params: dict) -> dict:
    asked = codings(params, concept=None)[0]
    if not asked.system:
        raise BadRequest("$lookup needs system and code, or a coding with both")
    tx = ctx.terminology
    tx.asked_code_system(asked.system, asked.version)           # 404 for a system or version not held
    concept = tx.lookup(asked.system, asked.code, asked.version)
    if concept is None:
        raise NotFound(f"Code {asked.code!r} is not in {asked.system}")
    out = [{"name": "name", "valueString": concept["name"]}]
    if concept["version"]:
        out.append({"name": "version", "valueString": concept["version"]})
    out.append({"name": "display", "valueString": concept["display"] or concept["code"]})
    if concept["definition"]:
        out.append({"name": "definition", "valueString": concept["definition"]})
    for d in concept["designation"]:
        parts = []
        if d.get("language"):
            parts.append({"name": "language", "valueCode": d["language"]})
        if d.get("use"):
            parts.append({"name": "use", "valueCoding": d["use"]})
        parts.append({"name": "value", "valueString": d.get("value")})
        out.append({"name": "designation", "part": parts})
    for key, name in (("parents", "parent"), ("children", "child")):
        for code in concept[key]:
            out.append(_property(name, {"valueCode": code}))
    for p in concept["property"]:
        value = {k: v for k, v in p.items() if k in _VALUE_TYPES}
        if p.get("code") not in ("parent", "child") and value and property_value(p) is not None:
            out.append(_property(p["code"], value))
    if concept["inactive"]:
        out.append(_property("inactive", {"valueBoolean": True}))
    return {"resourceType": "Parameters", "parameter": out}


def _property(code: str, value: dict) -> dict:
    name, v = next(iter(value.items()))
    return {"name": "property", "part": [{"name": "code", "valueCode": code}, {"name": "value", name: v}]}
