"""Compartment search: GET Patient/[id]/[type] (http://hl7.org/fhir/R4/compartmentdefinition.html),
from the official CompartmentDefinitions shipped in profiles/."""
from __future__ import annotations

import functools

from ..definitions import load_json
from ..errors import BadRequest, NotFound
from . import query as q
from .kinds.reference_kind import RefCond
from .registry import lookup

COMPARTMENTS = {"Patient": "compartmentdefinition-patient.json"}


@functools.lru_cache(maxsize=None)
def members(compartment: str) -> dict[str, tuple[str, ...]]:
    """{resource type: parameter codes that put it in the compartment}."""
    definition = load_json(COMPARTMENTS[compartment])
    return {r["code"]: tuple(r.get("param", ())) for r in definition["resource"] if r.get("param")}


def compartment_clause(compartment: str, id: str, rtype: str):
    """Resources of rtype in compartment/id: any of its compartment parameters refers to it."""
    if compartment not in COMPARTMENTS:
        raise NotFound(f"No {compartment} compartment on this server (supported: {', '.join(COMPARTMENTS)})")
    codes = members(compartment).get(rtype)
    if not codes:
        raise BadRequest(f"{rtype} is not in the {compartment} compartment")
    parts = []
    for code in codes:
        if code == "{def}":                    # the compartment resource itself
            parts.append(q.IdIn((id,)))
            continue
        param = lookup(rtype, code)
        if param is not None and param.kind == "reference":
            parts.append(q.Match("reference", param.key, RefCond(compartment, id)))
    return q.Or(tuple(parts))
