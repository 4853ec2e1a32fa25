"""Patient/[id]/$consents: who may see this patient's records and why (profiles/operations/Patient-consents.json;
the rules are governance/policy.py, explained in docs/governance.md).

The Consents listed are those about the patient that the caller may read itself (a patient sees all of
theirs; a hospital only what its own access allows), so the answer reveals nothing the caller could not
search for; each is explained the way the policy reads it."""
from __future__ import annotations

import datetime

from .. import jsonio
from ..governance.policy import RESOURCE_TYPES
from ..search.parse import parse_search

MAX_CONSENTS = 200


def consents(ctx, rtype, id, params: dict) -> dict:
    ctx.repo.allow("search-type", "Consent")
    query = parse_search("Consent", [("patient", f"Patient/{id}"), ("_sort", "-_lastUpdated")]).query
    found = ctx.repo.search("Consent", query, limit=MAX_CONSENTS).items
    out = [{"name": "default", "valueCode": ctx.settings.sharing_default}]
    out += [{"name": "consent", "part": explain(jsonio.loads_stored(v.body))} for v in found]
    return {"resourceType": "Parameters", "parameter": out}


def explain(consent: dict) -> list[dict]:
    provision = consent.get("provision") or {}
    period = provision.get("period")
    parts = [{"name": "consent", "valueReference": {"reference": f"Consent/{consent['id']}"}},
             {"name": "status", "valueCode": consent.get("status", "unknown")},
             {"name": "effect", "valueCode": provision.get("type", "permit")},
             {"name": "inForce", "valueBoolean": consent.get("status") == "active" and _covers_now(period)}]
    for actor in provision.get("actor") or ():
        ref = (actor.get("reference") or {}).get("reference")
        if ref:
            parts.append({"name": "organization", "valueReference": {"reference": ref}})
    parts += [{"name": "type", "valueCode": c["code"]} for c in provision.get("class") or ()
              if c.get("system") == RESOURCE_TYPES and c.get("code")]
    parts += [{"name": "except", "valueCode": c["code"]} for p in provision.get("provision") or ()
              if p.get("type") == "deny" for c in p.get("class") or () if c.get("system") == RESOURCE_TYPES]
    if period:
        parts.append({"name": "period", "valuePeriod": period})
    parts += [{"name": "purpose", "valueCoding": c} for c in provision.get("purpose") or ()]
    return parts


def _covers_now(period: dict | None) -> bool:
    if not period:
        return True
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = _instant(period.get("start")), _instant(period.get("end"), upper=True)
    return (start is None or start <= now) and (end is None or end >= now)


def _instant(value, upper: bool = False) -> datetime.datetime | None:
    """A FHIR date or dateTime as a UTC time (a date or a time without zone widens to the day's end when
    `upper`); None when absent or unreadable (it then limits nothing, as in the policy's index)."""
    if not isinstance(value, str) or not value:
        return None
    if len(value) <= 10:
        value += "T23:59:59.999999" if upper else "T00:00:00"
    try:
        t = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=datetime.timezone.utc)).astimezone(datetime.timezone.utc)
