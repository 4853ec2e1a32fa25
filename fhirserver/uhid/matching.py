"""Is this person already known? Scored candidates for Patient/$match and for registration.

Candidates come from indexed searches (each identifier, the birth date, each phone and email, the
family with the given name), run with the caller's access guard; each is then scored on the
evidence it shares with the probe. Grades follow the match-grade extension
(http://hl7.org/fhir/R4/extension-match-grade.html):
- certain: the same UHID, or the same name, birth date and phone or email (registration's duplicate rule);
- probable: score >= 0.6 (e.g. the same name and birth date); possible: score >= 0.4; below that
  a candidate is not returned.
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
    ctx.repo.allow("search-type", "Patient")
    seen: dict[str, dict] = {}
    for params in _queries(probe):
        query = parse_search("Patient", params, base=ctx.base).query
        for v in ctx.repo.search("Patient", query, limit=CANDIDATES_PER_QUERY).items:
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
    grade = ("certain" if same_person else "probable" if total >= 0.6 else "possible" if total >= 0.4
             else "certainly-not")
    return Candidate(candidate["id"], candidate, round(1.0 if same_person else min(total, 0.99), 2), grade, evidence)


def _queries(probe: dict) -> list[list[tuple[str, str]]]:
    """Indexed searches wide enough for the scoring: names as string searches (case- and
    accent-insensitive), with the birth date when there is one; phone and email as typed and
    in their usual other forms."""
    f = _features(probe)
    out = [[("identifier", f"{escape(s)}|{escape(v)}")] for s, v in f["identifiers"]]
    name = _first_name(probe)
    names = [("family", name["family"])] if isinstance(name.get("family"), str) and name["family"].strip() else []
    given = name.get("given") if isinstance(name.get("given"), list) else []
    if given and isinstance(given[0], str) and given[0].strip():
        names.append(("given", given[0]))
    born = [("birthdate", f["birthDate"])] if f["birthDate"] else []
    out += [born + [n] for n in names] if born else ([names] if len(names) == 2 else [])
    for email in _raw(probe, "email"):
        out += [[("email", escape(e))] for e in dict.fromkeys((email, email.strip().lower()))]
    for phone in _raw(probe, "phone"):
        digits = re.sub(r"\D", "", phone)
        forms = (phone, digits, digits[-10:], f"+91{digits[-10:]}", f"+91 {digits[-10:-5]} {digits[-5:]}")
        out += [[("phone", escape(p))] for p in dict.fromkeys(forms) if p]
    return out


def _first_name(patient: dict) -> dict:
    names = patient.get("name")
    return names[0] if isinstance(names, list) and names and isinstance(names[0], dict) else {}


def _features(patient: dict) -> dict:
    name = _first_name(patient)
    given = name.get("given") if isinstance(name.get("given"), list) else []
    family = name.get("family") if isinstance(name.get("family"), str) else ""
    return {
        "identifiers": {(i["system"], i["value"]) for i in patient.get("identifier") or ()
                        if isinstance(i, dict) and isinstance(i.get("system"), str) and isinstance(i.get("value"), str)
                        and i["system"] and i["value"]},
        "family": fold(family) or None,
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
    telecom = patient.get("telecom") if isinstance(patient.get("telecom"), list) else []
    return [t["value"] for t in telecom
            if isinstance(t, dict) and t.get("system") == system and isinstance(t.get("value"), str)]
