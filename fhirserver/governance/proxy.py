"""Family proxies: a RelatedPerson who acts for a patient because that patient delegated it
(docs/auth.md, "Family proxy"; SMART App Launch 2.2 lets fhirUser be a RelatedPerson).

A delegation is a Consent of the patient, and it is live when ALL of these hold now:

- Consent.status = active;
- Consent.patient = Patient/[p];
- Consent.provision.type = permit;
- Consent.provision.purpose has v3-ActReason FAMRQT ("family requested");
- Consent.provision.actor has an entry whose reference is RelatedPerson/[r] AND whose role has
  v3-RoleCode DELEGATEE (R4 binds provision.actor.role, extensibly, to the SecurityRoleType value
  set, which includes v3 RoleCode DELEGATEE "a party to whom some right or authority is granted
  by a delegator");
- Consent.provision.period, if any, covers now;
- RelatedPerson/[r] exists, is not `active: false`, its `patient` is Patient/[p], and its period, if
  any, covers now.

Consent.category and Consent.scope are not examined (write them as you like, e.g. scope
patient-privacy; R4 has no "delegation" category code). Only the patient herself (or an
administrator, or the server) can make a Consent active (smart_auth/admission.py); a proxy cannot
write Consents beyond draft/proposed, nor RelatedPerson resources.

Cost: one indexed search of Consent (status, patient, actor, purpose, provision-type, period) and a
read by primary key of the RelatedPerson. It runs on every request of a proxy's token
(smart_auth/access.py Access.from_claims), so a revocation (status inactive, a period that ended,
the RelatedPerson set inactive) takes effect on the next request.
"""
from __future__ import annotations

import datetime
import json

from ..search import query as q
from ..search.parse import parse_search

ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
FAMRQT = "FAMRQT"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
DELEGATEE = "DELEGATEE"
ROLE = "related-person"          # the account role of a proxy (smart_auth/accounts.py)
MAX_CANDIDATES = 50              # delegations looked at for one RelatedPerson (the picker)


def related_person_of(claims_or_fhir_user) -> str | None:
    """The RelatedPerson id of a proxy's fhirUser ('RelatedPerson/1' or an absolute URL), else None."""
    user = str(claims_or_fhir_user or "")
    tail = user.rsplit("/", 2)[-2:]
    return tail[1] if len(tail) == 2 and tail[0] == "RelatedPerson" and tail[1] else None


def delegation_query(related_person: str, patient: str | None = None, now: str | None = None):
    """Consents that may be live delegations to RelatedPerson/related_person (for Patient/patient)."""
    now = now or _now()
    pairs = [("status", "active"), ("provision-type", "permit"), ("purpose", f"{ACT_REASON}|{FAMRQT}"),
             ("actor", f"RelatedPerson/{related_person}")]
    if patient is not None:
        pairs.append(("patient", f"Patient/{patient}"))
    base = parse_search("Consent", pairs).query
    period = q.Or((parse_search("Consent", [("period:missing", "true")]).query,
                   parse_search("Consent", [("period", f"le{now}"), ("period", f"ge{now}")]).query))
    return q.And((base, period))


def live_delegation(store, related_person: str | None, patient: str | None) -> dict | None:
    """The live delegation Consent of Patient/patient to RelatedPerson/related_person, else None."""
    if not related_person or not patient:
        return None
    delegate = live_related_person(store, related_person)
    if delegate is None or patient_of(delegate) != patient:
        return None
    for version in store.search("Consent", delegation_query(related_person, patient), limit=5, total="none").items:
        consent = json.loads(version.body)
        if is_delegation(consent, related_person, patient):
            return consent
    return None


def delegating_patients(store, related_person: str | None) -> list[str]:
    """The Patients with a live delegation to RelatedPerson/related_person (for the patient picker).
    An R4 RelatedPerson relates to one patient (RelatedPerson.patient 1..1), so this is that patient
    or nobody; a person who acts for several patients has one RelatedPerson (and one account) each."""
    if not related_person:
        return []
    delegate = live_related_person(store, related_person)
    patient = patient_of(delegate) if delegate is not None else None
    if patient is None:
        return []
    page = store.search("Consent", delegation_query(related_person), limit=MAX_CANDIDATES, total="none")
    found = {patient for v in page.items if is_delegation(json.loads(v.body), related_person, patient)}
    return sorted(found)


def is_delegation(consent: dict, related_person: str, patient: str, now: str | None = None) -> bool:
    """Whether this Consent content is a live delegation (the module's rule, on the Consent alone)."""
    now = now or _now()
    provision = consent.get("provision") or {}
    if consent.get("resourceType") != "Consent" or consent.get("status") != "active":
        return False
    if _ref(consent.get("patient")) != f"Patient/{patient}" or provision.get("type") != "permit":
        return False
    if not any(_has_code(p, ACT_REASON, FAMRQT) for p in _list(provision.get("purpose"))):
        return False
    if not _covers(provision.get("period"), now):
        return False
    return any(_ref(a.get("reference")) == f"RelatedPerson/{related_person}"
               and _has_code_in(a.get("role"), ROLE_CODE, DELEGATEE)
               for a in _list(provision.get("actor")) if isinstance(a, dict))


def is_delegation_consent(consent: dict | None) -> bool:
    """Whether a Consent (any status) has the shape of a delegation: purpose FAMRQT or a DELEGATEE actor."""
    if not isinstance(consent, dict):
        return False
    provision = consent.get("provision") or {}
    return (any(_has_code(p, ACT_REASON, FAMRQT) for p in _list(provision.get("purpose")))
            or any(_has_code_in(a.get("role"), ROLE_CODE, DELEGATEE)
                   for a in _list(provision.get("actor")) if isinstance(a, dict)))


def live_related_person(store, rid: str) -> dict | None:
    version = store.read("RelatedPerson", rid)
    if version is None or version.deleted:
        return None
    body = json.loads(version.body)
    if body.get("active") is False or not _covers(body.get("period"), _now()):
        return None
    return body


def patient_of(related: dict) -> str | None:
    ref = _ref(related.get("patient"))
    return ref.split("/", 1)[1] if ref and ref.startswith("Patient/") and ref.count("/") == 1 else None


def _ref(reference) -> str | None:
    return reference.get("reference") if isinstance(reference, dict) else None


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _has_code(coding, system: str, code: str) -> bool:
    return isinstance(coding, dict) and coding.get("system") == system and coding.get("code") == code


def _has_code_in(concept, system: str, code: str) -> bool:
    return isinstance(concept, dict) and any(_has_code(c, system, code) for c in _list(concept.get("coding")))


def _covers(period, now: str) -> bool:
    """Whether a FHIR Period (start/end dateTimes, either may be absent) covers now (UTC, seconds).
    A date-only end covers that whole day; a date-only start starts at its first instant."""
    if period is None:
        return True
    if not isinstance(period, dict):
        return False
    start, end = period.get("start"), period.get("end")
    return (start is None or _instant(start, False) <= now) and (end is None or _instant(end, True) >= now)


def _instant(value, end: bool) -> str:
    """A FHIR date or dateTime as a comparable UTC 'YYYY-MM-DDTHH:MM:SSZ' (partial dates widened)."""
    text = str(value)
    try:
        if "T" in text:
            parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=datetime.timezone.utc)
            return parsed.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        parts = text.split("-")
        year = int(parts[0])
        month = int(parts[1]) if len(parts) > 1 else (12 if end else 1)
        day = int(parts[2]) if len(parts) > 2 else None
        if day is None:
            day = (_last_day(year, month) if end else 1)
        clock = "23:59:59" if end else "00:00:00"
        return f"{year:04d}-{month:02d}-{day:02d}T{clock}Z"
    except (ValueError, IndexError):
        return "" if end else "9999"          # unreadable: covers nothing


def _last_day(year: int, month: int) -> int:
    following = datetime.date(year + month // 12, month % 12 + 1, 1)
    return (following - datetime.timedelta(days=1)).day


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
