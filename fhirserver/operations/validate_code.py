"""$validate-code on a ValueSet or a CodeSystem (http://hl7.org/fhir/R4/valueset-operation-validate-code.html,
codesystem-operation-validate-code.html): result, message and the code's display. A code the server
cannot judge (its code system not held, or held only as a fragment) is result=false with a message
saying so; an unknown value set or code system named by url is 404."""
from __future__ import annotations

from ..terminology.codesystem import compile_code_system
from ..terminology.concepts import lookup_in
from .terminology_inputs import Coded, codings, definition


def _answer(result: bool, message: str | None, display: str | None) -> dict:
    out = [{"name": "result", "valueBoolean": result}]
    if message:
        out.append({"name": "message", "valueString": message})
    if display:
        out.append({"name": "display", "valueString": display})
    return {"resourceType": "Parameters", "parameter": out}


def _display_ok(concept: dict | None, c: Coded) -> str | None:
    """None if the display given (if any) is the concept's display or one of its designations."""
    if concept is None or not c.display:
        return None
    valid = {concept.get("display")} | {d.get("value") for d in concept.get("designation") or ()}
    if c.display in valid:
        return None
    return f"The display {c.display!r} is not a display of {c.system}#{c.code} (expected {concept.get('display')!r})"


def _judge(verdicts: list[tuple[bool | None, Coded, dict | None]]) -> dict:
    """One answer for the codings asked (a CodeableConcept is valid when one of its codings is)."""
    messages = []
    for ok, c, concept in verdicts:
        if ok:
            wrong = _display_ok(concept, c)
            if wrong is None:
                return _answer(True, None, (concept or {}).get("display") or c.display)
            messages.append(wrong)
    for ok, c, _concept in verdicts:
        if ok is False:
            messages.append(f"The code {c.system}#{c.code} is not valid here")
        elif ok is None:
            messages.append(f"Cannot tell whether {c.system}#{c.code} is valid: its code system is not held "
                            "whole by this server")
    concept = next((concept for _ok, _c, concept in verdicts if concept), None)
    return _answer(False, "; ".join(messages), (concept or {}).get("display"))


def validate_code(ctx, rtype, id, params: dict) -> dict:
    if rtype == "CodeSystem":
        return _code_system(ctx, id, params)
    tx = ctx.terminology
    valueset = definition(ctx, "ValueSet", id, params, url="url", resource="valueSet", version="valueSetVersion")
    tx.value_set(valueset)                                 # 404 for an unknown value set
    asked = codings(params, version="systemVersion")
    verdicts = []
    for c in asked:
        concept = tx.lookup(c.system, c.code, c.version) if c.system else None
        verdicts.append((tx.member(valueset, c.system, c.code), c, concept))
    return _judge(verdicts)


def _code_system(ctx, id, params: dict) -> dict:
    tx = ctx.terminology
    given = definition(ctx, "CodeSystem", id, params, url="url", resource="codeSystem", version="version")
    if isinstance(given, dict):
        index = compile_code_system(given)
    else:
        url, _, version = given.partition("|")
        index = tx.asked_code_system(url, version or None)
    verdicts = []
    for c in codings(params, system=None, version=None):
        c = c._replace(system=c.system or index.url)
        if c.system != index.url:
            verdicts.append((False, c, None))
            continue
        concept = lookup_in(index, c.code)
        known = concept is not None or index.complete
        verdicts.append((concept is not None if known else None, c, concept))
    return _judge(verdicts)
