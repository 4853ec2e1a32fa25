"""Is this person already known? Scored candidates for Patient/$match and for registration.

Candidates come from indexed searches (each identifier, the birth date, each phone and email, the
family with the given name), run with the caller's access guard; each is then scored on the
evidence it shares with the probe. Grades follow the match-grade extension
(http://hl7.org/fhir/R4/extension-match-grade.html):
- certain: the same UHID, or the same name, birth date and phone or email (registration's duplicate rule);
- probable: score >= 0.75; possible: score >= 0.45; below that a candidate is not returned.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .. import jsonio
from ..search.normalize import fold
from ..search.parse import parse_search
from ..search.parse_util import escape

CANDIDATES_PER_QUERY = 200
_WEIGHTS = {"identifier": 0.45, "family": 0.2, "given": 0.15, "birthDate": 0.3, "gender": 0.05,
            "phone": 0.15, "email": 0.15}


@dataclass
class Candidate:
    id: str
    resource: dict
    score: float
    grade: str
    evidence: list[str] = field(default_factory=list)


def find(ctx, probe: dict, uhid_system: str) -> list[Candidate]:
    """Every candidate at least 'possible', best first."""
    ctx.access.allow("search-type", "Patient")
    guard = ctx.access.guard("search-type")
    seen: dict[str, dict] = {}
    for params in _queries(probe):
        query = parse_search("Patient", params, base=ctx.base).query
        for v in ctx.search_visible("Patient", query, CANDIDATES_PER_QUERY, guard):
            seen.setdefault(v.id, jsonio.loads(v.body))
    scored = [score(probe, r, uhid_system) for r in seen.values()]
    return sorted((c for c in scored if c.grade != "certainly-not"), key=lambda c: (-c.score, c.id))


def score(probe: dict, candidate: dict, uhid_system: str) -> Candidate:
    evidence, total = [], 0.0
    p, c = _features(probe), _features(candidate)
    shared_ids = p["identifiers"] & c["identifiers"]
    if any(system == uhid_system for system, _ in shared_ids):
        return Candidate(candidate["id"], candidate, 1.0, "certain", ["UHID"])
    if shared_ids:
        evidence.append("identifier")
    for key in ("family", "given", "birthDate", "gender"):
        if p[key] and c[key]:
            if p[key] == c[key]:
                evidence.append(key)
            elif key in ("birthDate", "gender"):
                total -= _WEIGHTS[key]          # a different birth date or gender speaks against
    for key in ("phone", "email"):
        if p[key] & c[key]:
            evidence.append(key)
    total = max(0.0, min(1.0, total + sum(_WEIGHTS[e] for e in evidence)))
    same_person = {"family", "given", "birthDate"} <= set(evidence) and ("phone" in evidence or "email" in evidence)
    grade = ("certain" if same_person else "probable" if total >= 0.75 else "possible" if total >= 0.45
             else "certainly-not")
    return Candidate(candidate["id"], candidate, round(1.0 if same_person else min(total, 0.99), 2), grade, evidence)


def _queries(probe: dict) -> list[list[tuple[str, str]]]:
    f = _features(probe)
    out = [[("identifier", f"{escape(s)}|{escape(v)}")] for s, v in f["identifiers"]]
    if f["birthDate"]:
        out.append([("birthdate", f["birthDate"])])
    out += [[("email", e)] for e in _raw(probe, "email")]
    out += [[("phone", t)] for t in _raw(probe, "phone")]
    name = (probe.get("name") or [{}])[0]
    if name.get("family") and name.get("given"):
        out.append([("family:exact", name["family"]), ("given", name["given"][0])])
    return out


def _features(patient: dict) -> dict:
    name = (patient.get("name") or [{}])[0] if isinstance(patient.get("name"), list) else {}
    given = name.get("given") or []
    return {
        "identifiers": {(i.get("system"), i.get("value")) for i in patient.get("identifier") or ()
                        if isinstance(i, dict) and i.get("system") and i.get("value")},
        "family": fold(name.get("family") or "") or None,
        "given": fold(given[0]) if given and isinstance(given[0], str) else None,
        "birthDate": patient.get("birthDate") if isinstance(patient.get("birthDate"), str) else None,
        "gender": patient.get("gender"),
        "phone": {phone_key(t) for t in _raw(patient, "phone") if phone_key(t)},
        "email": {t.strip().lower() for t in _raw(patient, "email")},
    }


def phone_key(number: str) -> str:
    """The last ten digits: +91 98100 00000, 098100-00000 and 9810000000 are one number."""
    return re.sub(r"\D", "", number)[-10:]


def _raw(patient: dict, system: str) -> list[str]:
    return [t["value"] for t in patient.get("telecom") or ()
            if isinstance(t, dict) and t.get("system") == system and isinstance(t.get("value"), str)]
