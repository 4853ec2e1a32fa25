"""Terminology bindings (terminologies.html#strength) checked through the Terminology's contains().

required   a code not in the value set is an error;
extensible a code not in the value set is a warning (the value set should be used when it fits);
preferred, example: not checked.
A code, string or uri is checked by itself; a Coding by system and code; a CodeableConcept passes
when any of its codings is in the value set (one without codings fails a required binding); a
Quantity by its system and code when it has a code. When the terminology cannot tell (an unknown
value set, a code system only partly shipped) the answer is an information "not checked", never an
error. The finding's key is the value set canonical.
"""
from __future__ import annotations

from fhirserver.errors import FhirError

_STRINGS = frozenset(("code", "string", "uri", "url", "canonical"))


def pairs(value, tcode: str | None) -> list[tuple[str | None, str]] | None:
    """(system, code) pairs a value carries for a binding; None when the type is not checked."""
    if isinstance(value, str):
        return [(None, value)] if tcode in _STRINGS or tcode is None else None
    if not isinstance(value, dict):
        return None
    if tcode == "CodeableConcept" or (tcode is None and "coding" in value):
        return [(c.get("system"), c["code"]) for c in value.get("coding") or ()
                if isinstance(c, dict) and isinstance(c.get("code"), str)]
    if tcode in ("Coding", "Quantity", "Age", "Count", "Distance", "Duration", "Money") or tcode is None:
        code = value.get("code")
        return [(value.get("system"), code)] if isinstance(code, str) else []
    return None


def contains(tx, vs: str, system: str | None, code: str) -> bool | None:
    try:
        return tx.contains(vs, system, code)
    except FhirError:
        return None


def member(walker, vs: str, value, tcode: str | None = None) -> bool | None:
    """True when some code of the value is in the value set, False when none is, None when unknown."""
    found = pairs(value, tcode)
    if not found or walker.tx is None:
        return None
    unknown = False
    for system, code in found:
        r = contains(walker.tx, vs, system, code)
        if r is True:
            return True
        if r is None:
            unknown = True
    return None if unknown else False


def check(walker, value, tcode: str | None, node, path: str) -> None:
    strength, vs = node.binding
    found = pairs(value, tcode)
    if found is None:
        return
    if not found:
        if strength == "required" and tcode == "CodeableConcept":
            walker.add("error", "binding", vs, path,
                       f"{path}: no coding, but {node.id} is bound (required) to {vs}")
        return
    r = member(walker, vs, value, tcode)
    if r is True:
        return
    shown = ", ".join(f"{s}|{c}" if s else c for s, c in found)
    if r is None:
        walker.add("information", "binding", vs, path,
                   f"{path}: {shown} not checked against {vs} (the value set or code system is not "
                   "fully known here)")
    elif strength == "required":
        walker.add("error", "binding", vs, path,
                   f"{path}: {shown} is not in the value set {vs} (required binding of {node.id})")
    else:
        walker.add("warning", "binding", vs, path,
                   f"{path}: {shown} is not in the value set {vs} (extensible binding of {node.id}): "
                   "use a code from it when one fits")
