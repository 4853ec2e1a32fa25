"""$lookup: a code's display and details from a CodeSystem held by this server
(http://hl7.org/fhir/R4/codesystem-operation-lookup.html)."""
from __future__ import annotations

from .. import jsonio
from ..errors import BadRequest, NotFound
from ..search.parse import parse_search
from .parameters import first


def lookup(ctx, rtype, id, params: dict) -> dict:
    coding = first(params, "coding")
    system = first(params, "system") or (coding or {}).get("system")
    code = first(params, "code") or (coding or {}).get("code")
    version = first(params, "version") or (coding or {}).get("version")
    if not system or not code:
        raise BadRequest("$lookup needs system and code, or a coding with both")
    criteria = [("url", system)] + ([("version", version)] if version else [])
    ctx.repo.allow("search-type", "CodeSystem")
    found = ctx.repo.search("CodeSystem", parse_search("CodeSystem", criteria).query, limit=1).items
    if not found:
        raise NotFound(f"No CodeSystem {system}" + (f" version {version}" if version else "") + " on this server")
    code_system = jsonio.loads(found[0].body)
    concept = _find(code_system.get("concept") or [], code)
    if concept is None:
        raise NotFound(f"Code {code!r} is not in {system}")
    out = [{"name": "name", "valueString": code_system.get("name") or code_system.get("title") or system}]
    if code_system.get("version"):
        out.append({"name": "version", "valueString": code_system["version"]})
    out.append({"name": "display", "valueString": concept.get("display") or code})
    for d in concept.get("designation") or ():
        parts = [{"name": "value", "valueString": d.get("value")}]
        if d.get("language"):
            parts.insert(0, {"name": "language", "valueCode": d["language"]})
        if d.get("use"):
            parts.insert(-1, {"name": "use", "valueCoding": d["use"]})
        out.append({"name": "designation", "part": parts})
    return {"resourceType": "Parameters", "parameter": out}


def _find(concepts: list, code: str):
    for c in concepts:
        if c.get("code") == code:
            return c
        found = _find(c.get("concept") or [], code)
        if found is not None:
            return found
    return None
