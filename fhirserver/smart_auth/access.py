"""Turning a token's grants into a guard: the query restriction the store applies to every set
of resources a search touches (matches, chained targets, _has sources, includes).

Policy for patient/ scopes: only the token's patient compartment is visible (Patient
CompartmentDefinition); the patient's own Patient resource is in it. Types outside the
compartment are not visible through patient/ scopes (user/ or system/ scopes grant them).
"""
from __future__ import annotations

from ..errors import BadRequest
from ..search import query as q
from ..search.compartment import members
from ..search.kinds.reference_kind import RefCond
from ..search.parse import parse_search
from ..search.registry import lookup
from .scopes import Grants


def search_guard(grants: Grants, patient_id: str | None, interaction: str = "search-type"):
    """guard(rtype) -> query node, q.DENY, or None (no restriction)."""
    def guard(rtype: str):
        decision = grants.decide(interaction, rtype)
        if not decision.allowed:
            return q.DENY
        parts = []
        if decision.patient_compartment:
            clause = patient_compartment(rtype, patient_id) if patient_id else None
            if clause is None:
                return q.DENY
            parts.append(clause)
        if decision.alternatives:
            alternatives = [a for a in (_granular(rtype, alt) for alt in decision.alternatives) if a is not None]
            if not alternatives:
                return q.DENY
            parts.append(q.Or(tuple(alternatives)))
        return q.And(tuple(parts)) if parts else None
    return guard


def patient_compartment(rtype: str, patient_id: str):
    """Resources of rtype in Patient/patient_id's compartment, or None when rtype has no place in it."""
    codes = members("Patient").get(rtype, ())
    parts = [q.IdIn((patient_id,))] if rtype == "Patient" else []
    for code in codes:
        param = lookup(rtype, code)
        if param is not None and param.kind == "reference":
            parts.append(q.Match("reference", param.key, RefCond("Patient", patient_id)))
    return q.Or(tuple(parts)) if parts else None


def _granular(rtype: str, query: tuple[tuple[str, str], ...]):
    """A granular scope's query as a node for this type; None if it cannot apply to it."""
    try:
        return parse_search(rtype, list(query)).query
    except BadRequest:
        return None
