"""What Patient/$everything returns, as one query per resource type (a "segment"), in a fixed order:
the Patient, the other types of the Patient compartment (alphabetical), then the Practitioners,
Organizations, Locations and Medications those records refer to (docs/everything.md).

Every segment is an ordinary query tree (search/query.py) run through the request's repository, so the
caller's guard applies inside it: to the resources returned and, through q.Has, to the records whose
references bring a Practitioner or Organization in. Each resource belongs to exactly one segment, so
paging segment by segment returns it once.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from ..search import query as q
from ..search.compartment import compartment_clause, members
from ..search.kinds.reference_kind import RefIn
from ..search.parse import parse_search
from ..search.registry import all_params, lookup

REFERENCED = ("Practitioner", "Organization", "Location", "Medication")


@dataclass(frozen=True)
class Filters:
    """The operation's selection: one patient (None: every patient the caller may see), the care date
    range (start/end as given, FHIR dates), _since (an instant) and _type."""
    patient: str | None
    start: str | None = None
    end: str | None = None
    since: str | None = None
    types: frozenset[str] | None = None     # None: every type


@functools.lru_cache(maxsize=1)
def _compartment_types() -> tuple[str, ...]:
    return ("Patient",) + tuple(sorted(t for t in members("Patient") if t != "Patient"))


def segments(types: frozenset[str] | None) -> list[str]:
    """The resource types answered, in paging order (a type outside _type is left out)."""
    return [t for t in _compartment_types() + REFERENCED if types is None or t in types]


def is_referenced(rtype: str) -> bool:
    """Brought in by references (search.mode include) rather than by the compartment (match)."""
    return rtype in REFERENCED


def segment_query(rtype: str, f: Filters):
    """The query of one segment: the records of rtype in scope, then _since on the record itself."""
    parts = [_referenced(rtype, f) if is_referenced(rtype) else _in_scope(rtype, f)]
    if f.since is not None:
        parts.append(parse_search(rtype, [("_lastUpdated", f"ge{f.since}")]).query)
    return q.And(tuple(parts))


def _in_scope(rtype: str, f: Filters):
    """Compartment records of rtype within the care date range (the Patient and undated records always)."""
    parts = [_compartment(rtype, f.patient)]
    dated = _care_dates(rtype, f.start, f.end)
    if dated is not None:
        parts.append(dated)
    return q.And(tuple(parts))


def _compartment(rtype: str, patient: str | None):
    """rtype in Patient/patient's compartment; with no patient, in the compartment of any patient (the
    guard then confines it to what the caller may see, which for a patient's token is their own)."""
    if patient is not None:
        clause = compartment_clause("Patient", patient, rtype)
        return q.Or((q.IdIn((patient,)), clause)) if rtype == "Patient" else clause    # the Patient itself too
    if rtype == "Patient":
        return q.MATCH_ALL
    keys = [p.key for p in (lookup(rtype, code) for code in members("Patient")[rtype])
            if p is not None and p.kind == "reference"]
    return q.Or(tuple(q.Match("reference", key, RefIn("Patient", None)) for key in keys))


def _care_dates(rtype: str, start: str | None, end: str | None):
    """start/end on the type's `date` parameter: a record whose date overlaps [start, end], or that has
    none. None when there is no range or the type has no `date` (the Patient, undated types)."""
    param = lookup(rtype, "date") if rtype != "Patient" else None
    if param is None or param.kind != "date" or (start is None and end is None):
        return None
    bounds = ([("date", f"ge{start}")] if start else []) + ([("date", f"le{end}")] if end else [])
    return q.Or((parse_search(rtype, bounds).query, q.Missing(((param.kind, param.key),), True)))


def _referenced(rtype: str, f: Filters):
    """rtype resources that some compartment record in the care date range refers to, through any of its
    reference parameters; those records are judged by the caller's guard too (q.Has is guarded)."""
    sources = []
    for source, keys in _sources(rtype):
        scope = _in_scope(source, f)
        sources += [q.Has(source, key, scope) for key in keys]
    return q.Or(tuple(sources))


@functools.lru_cache(maxsize=None)
def _sources(rtype: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(compartment type, its reference parameter keys that may point at rtype)."""
    out = []
    for source in _compartment_types():
        keys = sorted({p.key for p in all_params().get(source, {}).values()
                       if p.kind == "reference" and rtype in (p.targets or ())})
        if keys:
            out.append((source, tuple(keys)))
    return tuple(out)
