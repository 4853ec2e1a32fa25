"""AuditEvents shaped as IHE Basic Audit Log Patterns (BALP 1.1, https://profiles.ihe.net/ITI/BALP/):
one event per FHIR interaction and patient, built from identifiers only (never result content).

- type audit-event-type `rest`, subtype restful-interaction (plus the operation's name for
  `operation`), action R/C/U/D/E as BALP's Read, Create, Update, Delete and Query patterns use them;
- outcome 0 success, 4 minor failure (a 4xx answer), 8 serious failure (a 5xx answer), with outcomeDesc;
- agents: the client application (DICOM 110153 Source Role ID, with the caller's network address),
  this server (110152 Destination Role ID, its base URL) and, when a user acted, the user
  (v3-ParticipationType IRCP, requestor, fhirUser, purposeOfUse);
- source: this server (security-source-type 4, Application Server);
- entities: the resource (object-role 4), the patient (object-role 1; BALP Patient* patterns), the query
  of a search (object-role 24, the raw query base64-encoded) and the request's X-Request-Id.

meta.profile names the BALP pattern a successful event follows; failures carry the same shape and no
claim (BALP's patterns describe successes).
"""
from __future__ import annotations

import base64
import datetime
import hashlib
from dataclasses import dataclass, field

AUDIT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
OPERATION = "https://medport.health/fhir/CodeSystem/operation"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
BALP_ENTITY = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
BALP_PROFILE = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."
SERVER_NAME = "Med-Port"
MAX_DESCRIPTION = 1000
MAX_QUERY_BYTES = 4096

# restful-interaction code -> AuditEvent.action (BALP: Query and operations are E, execute)
ACTIONS = {"read": "R", "vread": "R", "history-instance": "R", "history-type": "R", "history-system": "R",
           "capabilities": "R", "create": "C", "update": "U", "patch": "U", "delete": "D",
           "search-type": "E", "search-system": "E", "batch": "E", "transaction": "E", "operation": "E"}
# restful-interaction code -> the BALP pattern it follows (Patient<pattern> with a patient)
PATTERNS = {"create": "Create", "read": "Read", "vread": "Read", "update": "Update", "patch": "Update",
            "delete": "Delete", "search-type": "Query", "search-system": "Query"}
WITH_DATA = frozenset({"create", "read", "vread", "update", "patch", "delete", "history-instance"})


@dataclass
class Actor:
    """Who made a request, from its verified token (all None without one)."""
    client_id: str | None = None
    user: dict | None = None             # the user's Reference (fhirUser, else identifier), if a user acted
    alt_id: str | None = None            # the user's account name (token sub)
    address: str | None = None           # the caller's network address
    purpose: list = field(default_factory=list)     # purposeOfUse CodeableConcepts
    organization: str | None = None      # Organization/<id> the caller acts for
    patient_context: str | None = None   # the token's patient (launch context, a patient's own token)
    confined: bool = False               # a patient's or proxy's token: it reaches that compartment alone


@dataclass
class Interaction:
    """One audited interaction, as the server saw it."""
    code: str                            # restful-interaction code
    status: int                          # the HTTP status answered
    target: str | None = None            # Type/id[/_history/v] of the resource acted on
    query: str | None = None             # the raw query of a search (or operation)
    operation: str | None = None         # $name of an operation
    description: str | None = None       # why it failed (the OperationOutcome's text)
    done: bool = True                    # False: a write that wrote nothing (a conditional create matched)


def outcome(status: int) -> str:
    return "0" if status < 400 else "4" if status < 500 else "8"


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event(base: str, actor: Actor, what: Interaction, patient: str | None, request_id: str | None,
          recorded: str | None = None) -> dict:
    """The AuditEvent of `what` about Patient/`patient` (None: about no identifiable patient)."""
    subtype = [{"system": INTERACTION, "code": what.code, "display": what.code}]
    if what.operation:
        subtype.append({"system": OPERATION, "code": what.operation, "display": what.operation})
    result = outcome(what.status)
    out: dict = {"resourceType": "AuditEvent"}
    pattern = PATTERNS.get(what.code)
    if pattern and result == "0" and what.done:
        out["meta"] = {"profile": [BALP_PROFILE + ("Patient" if patient else "") + pattern]}
    out.update({
        "type": {"system": AUDIT_TYPE, "code": "rest", "display": "Restful Operation"},
        "subtype": subtype,
        "action": ACTIONS.get(what.code, "E"),
        "recorded": recorded or now(),
        "outcome": result,
    })
    if result != "0":
        out["outcomeDesc"] = (what.description or f"HTTP {what.status}")[:MAX_DESCRIPTION]
    elif not what.done:
        out["outcomeDesc"] = "nothing written: the criteria matched an existing resource"
    if actor.purpose:
        out["purposeOfEvent"] = actor.purpose
    out["agent"] = agents(base, actor, what.code)
    out["source"] = source(base)
    out["entity"] = entities(what, patient, request_id)
    return out


# the user's role: the source of the data it writes (BALP Create/Update: DataSources), else its recipient
WRITER = ("AUT", "author (originator)")
RECIPIENT = ("IRCP", "information recipient")


def agents(base: str, actor: Actor, code: str = "read") -> list[dict]:
    """The client application, this server and, if a user acted, the user (the requestor)."""
    client: dict = {"type": _concept(DCM, "110153", "Source Role ID"), "requestor": actor.user is None}
    if actor.client_id:
        client["who"] = {"identifier": {"system": f"{base}/sid/client", "value": actor.client_id}}
    else:
        client["who"] = {"display": "no access token"}
    if actor.address:
        client["network"] = {"address": actor.address, "type": "2"}
    server = {"type": _concept(DCM, "110152", "Destination Role ID"), "requestor": False,
              "who": {"display": SERVER_NAME}, "network": {"address": base, "type": "5"}}
    out = [client, server]
    if actor.user is not None:
        role = WRITER if ACTIONS.get(code) in ("C", "U", "D") else RECIPIENT
        user: dict = {"type": _concept(PARTICIPATION, *role), "requestor": True,
                      "who": actor.user}
        if actor.alt_id:
            user["altId"] = actor.alt_id
        if actor.purpose:
            user["purposeOfUse"] = actor.purpose
        out.append(user)
    return out


def source(base: str) -> dict:
    return {"site": base, "observer": {"display": SERVER_NAME},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}]}


def entities(what: Interaction, patient: str | None, request_id: str | None) -> list[dict]:
    out = []
    if what.target:
        out.append({"what": {"reference": what.target}, "type": _coding(ENTITY_TYPE, "2", "System Object"),
                    "role": _coding(OBJECT_ROLE, "4", "Domain Resource")})
    if patient:
        out.append({"what": {"reference": f"Patient/{patient}"}, "type": _coding(ENTITY_TYPE, "1", "Person"),
                    "role": _coding(OBJECT_ROLE, "1", "Patient")})
    if what.query is not None:
        out.append(query_entity(what.query))
    if request_id:
        out.append({"what": {"identifier": {"value": request_id}},
                    "type": _coding(BALP_ENTITY, "XrequestId", "X-Request-Id")})
    return out


def query_entity(query: str) -> dict:
    """The search as sent (BALP Query: entity.query, base64), at most MAX_QUERY_BYTES of it: a longer one
    is cut and ends with the whole one's SHA-256 and length (a request cannot make its events huge)."""
    raw = query.encode("utf-8", "replace")
    if len(raw) > MAX_QUERY_BYTES:
        tail = f" [cut: {len(raw)} bytes, sha256 {hashlib.sha256(raw).hexdigest()}]".encode()
        raw = raw[:MAX_QUERY_BYTES - len(tail)] + tail
    return {"type": _coding(ENTITY_TYPE, "2", "System Object"), "role": _coding(OBJECT_ROLE, "24", "Query"),
            "query": base64.b64encode(raw).decode("ascii")}


def _coding(system: str, code: str, display: str) -> dict:
    return {"system": system, "code": code, "display": display}


def _concept(system: str, code: str, display: str) -> dict:
    return {"coding": [_coding(system, code, display)]}


# ---- security events: logins, tokens, consent at the authorize page, administration -------------------
AUTH_EVENTS = "https://medport.health/fhir/CodeSystem/audit-auth"
USER_AUTHENTICATION = ("110114", "User Authentication")
SECURITY_ALERT = ("110113", "Security Alert")
USER_SECURITY_ATTRIBUTES = ("110137", "User Security Attributes Changed")
QUERY = ("110112", "Query")
LOGIN = (DCM, "110122", "Login")
LOGOUT = (DCM, "110123", "Logout")


def security_event(base: str, actor: Actor, type_code: tuple[str, str], subtype: tuple[str, str, str], *,
                   status: int = 200, description: str | None = None, patient: str | None = None,
                   about: tuple[str, str] | None = None, request_id: str | None = None) -> dict:
    """A DICOM-typed security event (login, token issued/refreshed/revoked, consent given at the
    authorize page, client and user administration). type_code: DICOM (code, display); subtype:
    (system, code, display), e.g. LOGIN or (AUTH_EVENTS, "token-issued", "Access token issued");
    about: (identifier system, value) of what the event is about (an account, a client, a grant)."""
    result = outcome(status)
    out: dict = {
        "resourceType": "AuditEvent",
        "type": {"system": DCM, "code": type_code[0], "display": type_code[1]},
        "subtype": [_coding(*subtype)],
        "action": "E",
        "recorded": now(),
        "outcome": result,
    }
    if result != "0" or description:
        out["outcomeDesc"] = (description or f"HTTP {status}")[:MAX_DESCRIPTION]
    out["agent"] = agents(base, actor, "read")
    out["source"] = source(base)
    entity = []
    if about is not None:
        entity.append({"what": {"identifier": {"system": about[0], "value": about[1]}},
                       "type": _coding(ENTITY_TYPE, "2", "System Object"),
                       "role": _coding(OBJECT_ROLE, "13", "Security Resource")})
    entity += entities(Interaction("none", status), patient, request_id)
    if entity:
        out["entity"] = entity
    return out
