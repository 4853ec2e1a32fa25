"""What one export reads: the resource types, and for each one query that the repository runs inside
the client's access guard (the same guard as search: scopes, organisation, consent).

Who may export (export.html#authorization, and the lessons of hapi-fhir #3394/#3400, openemr #8668):
backend services only (a system/ scope); each exported type must be readable and searchable under
the token's scopes. An explicit _type outside them is refused (403), never silently narrowed or
widened; without _type the export covers the level's types the token may read.
"""
from __future__ import annotations

from ..definitions import resource_types
from ..errors import BadRequest, Forbidden
from ..governance.policy import patient_links
from ..search import query as q
from ..search.compartment import members
from ..search.parse import parse_search
from .request import ExportRequest, _pairs

MAX_MEMBERS = 5_000     # patients one Group or patient list may name: one IN (...) per reference parameter


def check_client(access) -> None:
    """Bulk export is for backend services: a token with system/ scopes (or authorization off)."""
    if access.grants is not None and not any(s.context == "system" for s in access.grants.scopes):
        raise Forbidden("Bulk Data export needs a backend services token with system/ scopes "
                        "(SMART Backend Services); patient and user tokens cannot export")


def level_types(level: str) -> list[str]:
    if level == "system":
        return sorted(resource_types())
    return sorted(t for t in set(members("Patient")) | {"Patient"} if patient_links(t))


def types(access, req: ExportRequest, lenient: bool = False) -> list[str]:
    """The types this export writes, in order; 400/403 as the module docstring says. Under
    Prefer: handling=lenient a type outside the level (and a _typeFilter of a type not written) is left
    out and named in req.ignored (export.html#query-parameters, `_type`); one outside the token's
    scopes is a 403 all the same."""
    allowed = level_types(req.level)
    if req.types:
        chosen = []
        for t in req.types:
            if t not in allowed:
                if lenient:
                    req.ignored.append(f"_type={t}")
                    continue
                raise BadRequest(f"{t} is not in the Patient compartment: a {req.level}-level export "
                                 "covers compartment types only")
            if not _may_export(access, t):
                raise Forbidden(f"The access token does not grant read and search on {t}: _type cannot "
                                "ask for it")
            chosen.append(t)
        if not chosen:
            raise BadRequest(f"_type names no type a {req.level}-level export covers")
    else:
        chosen = [t for t in allowed if _may_export(access, t)]
        if not chosen:
            raise Forbidden("The access token grants read and search on no type this export covers")
    for t in list(req.type_filters):
        if t not in chosen:
            if not lenient:
                raise BadRequest(f"_typeFilter names {t}, which this export does not write (see _type)")
            req.ignored.append(f"_typeFilter={t}")
            del req.type_filters[t]
    return chosen


def _may_export(access, rtype: str) -> bool:
    if access.grants is None:
        return True
    return access.grants.decide("read", rtype).allowed and access.grants.decide("search-type", rtype).allowed


def query(req: ExportRequest, rtype: str, patients: list[str] | None, base: str, terminology=None):
    """The query of rtype for this export: changed after _since, in the level's patients (None: any
    patient, for the patient level; ignored at system level), matching any of the type's _typeFilter
    queries. The upper bound, min(_until, transactionTime), is applied to each page's versions by the
    runner (`until`): as a query condition it would make every page re-read the whole type."""
    bounds = [("_lastUpdated", "gt" + req.since)] if req.since else []
    parts = list(parse_search(rtype, bounds, base=base).query.parts) if bounds else []
    if req.level != "system":
        parts.append(_in_patients(rtype, patients))
    filters = [parse_search(rtype, _pairs(qs), base=base, terminology=terminology).query
               for qs in req.type_filters.get(rtype, ())]
    if filters:
        parts.append(q.Or(tuple(filters)))
    return q.And(tuple(parts))


def _in_patients(rtype: str, patients: list[str] | None):
    """Resources about one of these patients through the Patient compartment (None: any patient)."""
    from ..search.kinds.reference_kind import RefIn
    ids = None if patients is None else tuple(patients)
    alternatives = []
    for key in patient_links(rtype):
        if key is None:
            alternatives.append(q.MATCH_ALL if ids is None else q.IdIn(ids))
        else:
            alternatives.append(q.Match("reference", key, RefIn("Patient", ids)))
    return q.Or(tuple(alternatives))


def group_members(repo, group_id: str) -> list[str]:
    """The Patient ids of a Group's active members, read through the repository (404 if the client
    may not read the Group). Members the client may not see export nothing: the guard applies."""
    group = repo.read("Group", group_id)
    if group is None or group.deleted:
        from ..errors import NotFound
        raise NotFound(f"Group/{group_id} is not known")
    from .. import jsonio
    from ..search.kinds.reference_kind import split_reference
    ids = []
    for member in jsonio.loads_stored(group.body).get("member", ()):
        ref = (member.get("entity") or {}).get("reference", "") if isinstance(member, dict) else ""
        if member.get("inactive") is True or not isinstance(ref, str):
            continue
        # as search reads Group.member (Group?member=): Patient/[id], versioned or under this server's
        # base URL; a Patient on another server is no local patient
        kind, id, _url = split_reference(ref, repo.base)
        if kind == "Patient" and id not in ids:
            ids.append(id)
    if len(ids) > MAX_MEMBERS:
        raise BadRequest(f"Group/{group_id} has more than {MAX_MEMBERS} patient members: export it in parts "
                         "(Patient/$export with patient parameters)")
    return ids


def group_patients(named: list[str], members: list[str], lenient: bool) -> list[str]:
    """The POST `patient` values of a Group export: members of the Group (which the client has read).
    Any other is a 400 (export.html#query-parameters, `patient`: "in the case of a group level export,
    [patients] who are not members of the group, the server SHOULD return details via a FHIR
    OperationOutcome resource in an error response"); left out under handling=lenient."""
    known = set(members)
    missing = [p for p in named if p not in known]
    if missing and not lenient:
        raise BadRequest(f"patient names {len(missing)} that are not members of the Group, such as "
                         f"Patient/{missing[0][:64]}")
    return [p for p in named if p in known]


def until(req: ExportRequest, transaction_time: str) -> str:
    return min(req.until or transaction_time, transaction_time)
