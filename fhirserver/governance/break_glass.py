"""Break the glass: emergency access of one practitioner to one patient's whole record, for a
limited time, every step audited (docs/governance.md, "Break the glass").

A practitioner whose account holds the break-glass privilege (accounts.User.break_glass: `medport
user add ... --break-glass`, the admin API) asks for it with `POST Patient/[id]/$break-glass` and a
reason (operations/break_glass.py). The session is a store record of kind KIND keyed by the
username (one read by key per request: Access reads it when it is built), holding one entry per
patient:

    {"sessions": {"<patient id>": {"started": t, "expires": t, "reason": "...", "organization": "..."}}}

While an entry is live, every token of that user (any app) sees that patient's compartment besides
what its organisation's policy shows (smart_auth/access.py ORs the compartment into the hospital
node). Start, each request whose query was widened, and stop (the user's `action=stop`, or an
expiry noticed: at that user's next request or at any `$break-glass` call) are AuditEvents: type
DICOM 110113 Security Alert, purposeOfUse v3-ActReason BTG with the reason, the patient as an entity
(so the patient's compartment holds them), custodian the user's organisation (so its privacy
officer reviews them with an ordinary search).
"""
from __future__ import annotations

import datetime
import time

KIND = "break-glass"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
SECURITY_ALERT = ("110113", "Security Alert")
STARTED = ("110127", "Emergency Override Started")
STOPPED = ("110128", "Emergency Override Stopped")
MAX_REASON = 1000


def sessions(store, username: str | None, now: float | None = None) -> tuple[dict, dict]:
    """(live, expired): patient id -> session entry of this user's emergency sessions."""
    if not username:
        return {}, {}
    record = store.get_record(KIND, str(username))
    if not record:
        return {}, {}
    now = time.time() if now is None else now
    live, expired = {}, {}
    for patient, entry in (record.get("sessions") or {}).items():
        (live if entry.get("expires", 0) > now else expired)[patient] = entry
    return live, expired


def start(ctx, username: str, patient: str, reason: str, minutes: int) -> tuple[dict, str]:
    """Open (or renew) the session of username for Patient/patient; audited. Returns the entry and
    the id of its AuditEvent."""
    now = time.time()
    entry = {"started": now, "expires": now + minutes * 60, "reason": reason, "username": username,
             "fhir_user": _relative(ctx, ctx.access.claims.get("fhirUser")),
             "organization": ctx.access.organization}
    _change(ctx.store, username, {patient: entry}, ())
    event = record_event(ctx, STARTED, patient, entry, action="E",
                         description=f"emergency access for {minutes} minutes")
    return entry, event


def stop(ctx, username: str, patient: str, why: str, entry: dict | None = None) -> str | None:
    """Close the session of username for Patient/patient (why: 'stopped by the user' or 'expired');
    audited. Returns the AuditEvent's id, or None if there was no session."""
    if entry is None:
        live, expired = sessions(ctx.store, username)
        entry = live.get(patient) or expired.get(patient)
    if entry is None or not _change(ctx.store, username, {}, (patient,), started=entry.get("started")):
        return None
    return record_event(ctx, STOPPED, patient, entry, action="E", description=f"emergency access {why}")


def close_expired(ctx, username: str | None = None) -> int:
    """Audit and remove expired sessions: of one user, or of every user (username None)."""
    users = [username] if username else [key for key, _value in ctx.store.list_records(KIND)]
    closed = 0
    for user in users:
        _live, expired = sessions(ctx.store, user)
        for patient, entry in expired.items():
            closed += stop(ctx, user, patient, "expired", entry) is not None
    return closed


def record_access(ctx, patient: str, entry: dict, method: str, path: str) -> None:
    """One AuditEvent for a request whose query was widened to Patient/patient."""
    interaction = _interaction(method, path)
    record_event(ctx, (interaction, interaction), patient, entry, action=_ACTION.get(method, "E"),
                 description=f"{method} {path}", subtype_system=INTERACTION)


def _change(store, username: str, add: dict, remove, started: float | None = None) -> bool:
    """Add entries and remove patients' entries (only the one that started at `started`, if given:
    a session renewed meanwhile stays). False if there was nothing to remove."""
    record = store.get_record(KIND, username) or {}
    current = dict(record.get("sessions") or {})
    current.update(add)
    removed = False
    for patient in remove:
        if patient in current and (started is None or current[patient].get("started") == started):
            del current[patient]
            removed = True
    if current:
        store.put_record(KIND, username, {"sessions": current})
    else:
        store.delete_record(KIND, username)
    return removed or not remove


def install(app) -> None:
    """After each FHIR request: audit what the user's emergency sessions were used for, and close
    the sessions found expired when the request's rights were built (smart_auth/access.py)."""
    from flask import g, request

    @app.after_request
    def _audit_emergency_access(response):
        ctx = g.get("medport_ctx")
        access = getattr(ctx, "access", None)
        if access is None or not (access.emergency_used or access.emergency_expired):
            return response
        username = str(access.claims.get("sub"))
        for patient, entry in access.emergency_expired.items():
            stop(ctx, username, patient, "expired", entry)
        if access.emergency_used:
            path = request.full_path.rstrip("?")
            for patient, entry in access.emergency.items():
                record_access(ctx, patient, entry, request.method, path)
        return response


def record_event(ctx, subtype: tuple[str, str], patient: str, entry: dict, *, action: str, description: str,
                 subtype_system: str = DCM) -> str:
    """Store one AuditEvent (server-written, custodian: the user's organisation); returns its id."""
    from ..interactions.common import new_id, prepare, store_new_version
    from ..search.extract import extract
    from ..smart_auth.access import UNRESTRICTED
    from . import custodian

    btg = {"coding": [{"system": ACT_REASON, "code": "BTG", "display": "break the glass"}],
           "text": entry.get("reason") or ""}
    agent: dict = {"requestor": True, "altId": entry.get("username") or "", "purposeOfUse": [btg]}
    agent["who"] = {"reference": entry["fhir_user"]} if entry.get("fhir_user") else \
        {"display": f"user {entry.get('username')}"}
    client = ctx.access.claims.get("client_id")
    if client and ctx.access.claims.get("sub") == entry.get("username"):
        agent["name"] = f"client {client}"
    event = {
        "resourceType": "AuditEvent",
        "type": {"system": DCM, "code": SECURITY_ALERT[0], "display": SECURITY_ALERT[1]},
        "subtype": [{"system": subtype_system, "code": subtype[0], "display": subtype[1]}],
        "action": action,
        "period": {"start": _instant(entry["started"]), "end": _instant(entry["expires"])},
        "recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
        "outcome": "0",
        "purposeOfEvent": [btg],
        "agent": [agent],
        "source": {"observer": {"display": "Med-Port"}, "site": ctx.base},
        "entity": [{"what": {"reference": f"Patient/{patient}"},
                    "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                    "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
                    "description": description,
                    "detail": [{"type": "reason", "valueString": entry.get("reason") or ""}]}],
    }
    prepared = prepare(ctx.acting_as(UNRESTRICTED), "AuditEvent", event)
    if entry.get("organization"):          # the breaking hospital's privacy officer finds it
        custodian.stamp(prepared.resource, entry["organization"])
        prepared.rows = extract(prepared.resource, ctx.base)
    id = new_id()
    with ctx.store.unit() as tx:           # joins the request's open unit, else its own
        store_new_version(tx, prepared, id, "POST", None)
    return id


_ACTION = {"GET": "R", "HEAD": "R", "POST": "C", "PUT": "U", "PATCH": "U", "DELETE": "D"}


def _interaction(method: str, path: str) -> str:
    """The restful-interaction code of a request, roughly: what the audit names."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p][1:]       # after "fhir"
    if parts and parts[-1].startswith("$"):
        return "operation"
    if method in ("GET", "HEAD"):
        if "_history" in parts:
            return "vread" if parts[-1] != "_history" else "history-instance" if len(parts) == 3 else "history-type"
        return "read" if len(parts) == 2 else "search-type"
    if method == "POST":
        return "search-type" if parts[-1:] == ["_search"] else "create" if len(parts) == 1 else "batch"
    return {"PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, "operation")


def _relative(ctx, fhir_user) -> str | None:
    return fhir_user.removeprefix(ctx.base + "/") if isinstance(fhir_user, str) and fhir_user else None


def _instant(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="seconds")
