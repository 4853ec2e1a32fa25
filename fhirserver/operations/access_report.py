"""Patient/[id]/$access-report: who accessed this patient's records, when, how and why, newest first
(profiles/operations/Patient-access-report.json; docs/audit.md, "Reading the log").

One `access` part per AuditEvent about the patient (AuditEvent's `patient` search parameter), read
from the BALP events (audit_log/balp.py) and the server's own security events (audit.py,
governance/break_glass.py): when (recorded), who (the user agent, else the client), client, the
organisation holding the event (its custodian), what (subtype and the record acted on), purpose
(purposeOfEvent and purposeOfUse: v3-ActReason BTG for break the glass), outcome, self, event.

Who may ask: the patient's own token or a proxy acting for them (else 404, as for a Patient outside the
compartment), a regulator, an administrator (others 403). The AuditEvents are searched through the
request's repository, so the caller's own guard applies inside the query: the report shows nothing the
caller could not search for itself.
"""
from __future__ import annotations

import datetime
from urllib.parse import urlencode

from .. import bounds, jsonio
from ..errors import Forbidden, NotFound
from ..governance import custodian, proxy
from ..search.parse import parse_search
from .parameters import first

DCM = "http://dicom.nema.org/resources/ontology/DCM"
MACHINES = frozenset({"110153", "110152"})       # DICOM Source / Destination Role ID: client, server
DEFAULT_COUNT, MAX_COUNT = 50, 200


def access_report(ctx, rtype, id, params: dict) -> dict:
    _may_ask(ctx.access, id)
    count = bounds.parse_int(str(first(params, "_count", DEFAULT_COUNT)), "_count", low=1, high=MAX_COUNT)
    since, cursor = first(params, "_since"), first(params, "_cursor")
    query = [("patient", f"Patient/{id}"), ("_sort", "-date")] + ([("date", f"ge{since}")] if since else [])
    parsed = parse_search("AuditEvent", query)
    page = ctx.repo.search("AuditEvent", parsed.query, sort=parsed.results.sort, limit=count, cursor=cursor)
    out = [{"name": "access", "part": access(jsonio.loads_stored(v.body), id, ctx.base)} for v in page.items]
    if page.next_cursor:
        args = ([("_since", since)] if since else []) + [("_count", str(count)), ("_cursor", page.next_cursor)]
        out.append({"name": "next", "valueUri": f"{ctx.base}/Patient/{id}/$access-report?{urlencode(args)}"})
    return {"resourceType": "Parameters", "parameter": out}


def _may_ask(access, id: str) -> None:
    role = access.claims.get("role")
    if access.grants is None or access.regulator or role == "admin":
        return
    if role in ("patient", proxy.ROLE):
        if access.patient == id:
            return
        raise NotFound(f"Patient/{id} is not known")
    raise Forbidden("A patient's access report is for the patient, a proxy acting for them, a regulator "
                    "or an administrator (docs/audit.md)")


def access(event: dict, patient: str, base: str) -> list[dict]:
    agents = [a for a in event.get("agent") or () if isinstance(a, dict)]
    actor = _user(agents) or _client_agent(agents) or (agents[0] if agents else {})
    parts = [{"name": "when", "valueInstant": _utc(event.get("recorded"))}]
    if actor.get("who"):
        parts.append({"name": "who", "valueReference": actor["who"]})
    client = _client_id(agents, base)
    if client:
        parts.append({"name": "client", "valueString": client})
    held = custodian.of(event)
    if held:
        parts.append({"name": "organization", "valueReference": {"reference": held}})
    parts.append({"name": "what", "part": [{"name": "subtype", "valueCoding": c} for c in event.get("subtype") or ()]
                  + [{"name": "entity", "valueReference": {"reference": r}} for r in _data(event)]})
    parts += [{"name": "purpose", "valueCoding": c} for c in _purposes(event, agents)]
    parts.append({"name": "outcome", "valueCode": event.get("outcome", "0")})
    who = str((actor.get("who") or {}).get("reference") or "").removeprefix(base + "/")
    parts.append({"name": "self", "valueBoolean": who == f"Patient/{patient}"})
    parts.append({"name": "event", "valueReference": {"reference": f"AuditEvent/{event['id']}"}})
    return parts


def _utc(recorded):
    """recorded as a UTC instant ending in Z (the server writes both +00:00 and Z), so that a report
    orders as text too."""
    try:
        t = datetime.datetime.fromisoformat(str(recorded).replace("Z", "+00:00")).astimezone(datetime.timezone.utc)
    except ValueError:
        return recorded
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _codes(agent: dict) -> set:
    return {c.get("code") for c in (agent.get("type") or {}).get("coding") or () if c.get("system") == DCM}


def _user(agents: list[dict]) -> dict | None:
    """The person who acted: BALP's user agent (IRCP/AUT), or a security event's one requestor."""
    return next((a for a in agents if a.get("who") and not _codes(a) & MACHINES and a.get("requestor")), None)


def _client_agent(agents: list[dict]) -> dict | None:
    return next((a for a in agents if "110153" in _codes(a)), None)


def _client_id(agents: list[dict], base: str) -> str | None:
    for a in agents:
        identifier = (a.get("who") or {}).get("identifier") or {}
        if identifier.get("system") == f"{base}/sid/client":
            return identifier.get("value")
    name = next((a["name"] for a in agents if str(a.get("name") or "").startswith("client ")), None)
    return name.removeprefix("client ") if name else None


def _data(event: dict) -> list[str]:
    """The records acted on: BALP's Domain Resource entities (object-role 4), else every referenced one."""
    entities = [e for e in event.get("entity") or () if (e.get("what") or {}).get("reference")]
    data = [e for e in entities if (e.get("role") or {}).get("code") == "4"]
    return [e["what"]["reference"] for e in data or [e for e in entities if (e.get("role") or {}).get("code") != "1"]]


def _purposes(event: dict, agents: list[dict]) -> list[dict]:
    concepts = list(event.get("purposeOfEvent") or ()) + [p for a in agents for p in a.get("purposeOfUse") or ()]
    seen, out = set(), []
    for coding in (c for concept in concepts for c in concept.get("coding") or ()):
        key = (coding.get("system"), coding.get("code"))
        if key not in seen:
            seen.add(key)
            out.append(coding)
    return out
