"""Independent checker of AuditEvents against IHE BALP 1.1.x (Basic Audit Log Patterns).

    problems(event, base_url=None) -> list[str]   # [] when the event conforms
    assert_balp(event, base_url=None)             # raises AssertionError listing the problems

Profiles: https://profiles.ihe.net/ITI/BALP/ (IHE.BasicAudit.Create/Read/Update/Delete/Query
and their Patient* variants, all on the R4 AuditEvent). Every problem starts with the tag of
the rule group that found it (see RULES). FHIR REST events (type audit-event-type#rest) get
every rule; other events (DICOM security/auth types) only the generic ones.
With base_url, the server agent's network address and the client identifier system
(<base>/sid/client) must name that server.
"""
from __future__ import annotations

import base64
import binascii
import json
import re

from fhirserver.errors import FhirError
from fhirserver.validation import validate
from fhirserver.validation.schema import model

BALP_SD = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."
DCM = "http://dicom.nema.org/resources/ontology/DCM"
EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
BALP_ENTITY_TYPE = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"

# R4 restful-interaction code -> (AuditEvent.action, BALP pattern or None)
INTERACTIONS = {
    "read": ("R", "Read"), "vread": ("R", "Read"),
    "history": ("R", None), "history-instance": ("R", None), "history-type": ("R", None),
    "history-system": ("R", None), "capabilities": ("R", None),
    "create": ("C", "Create"),
    "update": ("U", "Update"), "patch": ("U", "Update"),
    "delete": ("D", "Delete"),
    "search": ("E", "Query"), "search-type": ("E", "Query"), "search-system": ("E", "Query"),
    "operation": ("E", None), "batch": ("E", None), "transaction": ("E", None),
}
PATTERNS = {"Create", "Read", "Update", "Delete", "Query"}
ONE_DATA = {"read", "vread", "update", "patch", "delete", "create"}   # Read/Create/Update/Delete: entity[data] 1..1
OUTCOMES = {"0", "4", "8", "12"}                                     # audit-event-outcome
USER_CODES = {"IRCP", "AUT", "INF", "CST"}   # IRCP (read/query); DataSources AUT/INF/CST (Create, Update)
DATA_ROLES = {"4", "3", "20"}                # BALP ValueSet RestObjectRoles

INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
ID = r"[A-Za-z0-9\-.]{1,64}"
DATA_REF = re.compile(rf"([A-Z][A-Za-z]+)/{ID}(/_history/{ID})?")
PATIENT_REF = re.compile(rf"Patient/{ID}")


# ---- small readers, tolerant of malformed input (structure is reported by validate) ----

def _list(x) -> list:
    return [i for i in x if isinstance(i, dict)] if isinstance(x, list) else []


def _dict(x) -> dict:
    return x if isinstance(x, dict) else {}


def _has(coding, system: str, code: str | None = None) -> bool:
    c = _dict(coding)
    return c.get("system") == system and (code is None or c.get("code") == code)


def _code(coding, system: str):
    return _dict(coding).get("code") if _has(coding, system) else None


def _is_rest(event: dict) -> bool:
    return _has(event.get("type"), EVENT_TYPE, "rest")


def _interaction(event: dict):
    codes = [c.get("code") for c in _list(event.get("subtype")) if c.get("system") == RESTFUL]
    return codes[0] if len(codes) == 1 else None


def _agent_kind(agent: dict):
    t = _dict(agent.get("type")).get("coding")
    if any(_has(c, DCM, "110153") for c in _list(t)):
        return "client"
    if any(_has(c, DCM, "110152") for c in _list(t)):
        return "server"
    if any(_has(c, PARTICIPATION) and c.get("code") in USER_CODES for c in _list(t)):
        return "user"
    return None


def _entity_kind(entity: dict):
    if _has(entity.get("type"), BALP_ENTITY_TYPE, "XrequestId"):
        return "transaction"
    role = _code(entity.get("role"), OBJECT_ROLE)
    return {"1": "patient", "24": "query"}.get(role) or ("data" if role in DATA_ROLES else None)


def _entities(event: dict, kind: str) -> list:
    return [e for e in _list(event.get("entity")) if _entity_kind(e) == kind]


def _claimed(event: dict) -> list[str]:
    """BALP profile names claimed in meta.profile, e.g. 'PatientRead'."""
    profiles = _dict(event.get("meta")).get("profile")
    return [p[len(BALP_SD):] for p in (profiles if isinstance(profiles, list) else [])
            if isinstance(p, str) and p.startswith(BALP_SD)]


def _present(who) -> bool:
    w = _dict(who)
    return bool(w.get("reference") or _dict(w.get("identifier")).get("value") or w.get("display"))


# ---- rule groups: each yields problem texts ----

def structure(event, base_url):
    """R4 AuditEvent structure (fhirserver.validation)."""
    try:
        validate(event)
    except FhirError as exc:
        for issue in exc.issues:
            yield issue.diagnostics + (f" at {'.'.join(issue.expression)}" if issue.expression else "")
    if isinstance(event, dict) and event.get("resourceType") != "AuditEvent":
        yield f"resourceType is {event.get('resourceType')!r}, not 'AuditEvent'"


def event_type(event, base_url):
    """All BALP REST patterns: type = audit-event-type#rest; security events use a DCM type."""
    t = _dict(event.get("type"))
    if not (_is_rest(event) or (t.get("system") == DCM and t.get("code"))):
        yield f"type {t.get('system')}#{t.get('code')} is neither audit-event-type#rest nor a DCM event type"


def subtype_action(event, base_url):
    """BALP subtype slices (restful-interaction) and the fixed action of each pattern."""
    if not _is_rest(event):
        return
    codes = [c.get("code") for c in _list(event.get("subtype")) if c.get("system") == RESTFUL]
    if len(codes) != 1:
        yield f"needs exactly one subtype coding from {RESTFUL}, found {len(codes)}"
        return
    if codes[0] not in INTERACTIONS:
        yield f"subtype {codes[0]!r} is not an R4 restful-interaction code"
        return
    want = INTERACTIONS[codes[0]][0]
    if event.get("action") != want:
        yield f"action {event.get('action')!r} but subtype {codes[0]!r} requires {want!r}"


def recorded_outcome(event, base_url):
    """recorded 1..1 (instant with timezone); outcome from audit-event-outcome, failures described."""
    rec = event.get("recorded")
    if not (isinstance(rec, str) and INSTANT.fullmatch(rec)):
        yield f"recorded {rec!r} is not an instant with a timezone"
    outcome = event.get("outcome")
    if outcome not in OUTCOMES:
        yield f"outcome {outcome!r} is not one of 0, 4, 8, 12"
    elif outcome != "0" and not (isinstance(event.get("outcomeDesc"), str) and event["outcomeDesc"].strip()):
        yield f"outcome {outcome!r} (failure) needs an outcomeDesc"


def agents(event, base_url):
    """BALP agent slices: client (DCM 110153), server (DCM 110152), user (requestor = true)."""
    all_agents = _list(event.get("agent"))
    if not any(a.get("requestor") is True for a in all_agents):
        yield "no agent has requestor = true"
    kinds = [_agent_kind(a) for a in all_agents]
    for i, (a, kind) in enumerate(zip(all_agents, kinds)):
        where = f"agent[{i}] ({kind or 'other'})"
        if not isinstance(a.get("requestor"), bool):
            yield f"{where} requestor must be a boolean"
        if a.get("media"):
            yield f"{where} must not carry media (BALP media 0..0)"
        net = _dict(a.get("network"))
        if kind == "client":
            ident = _dict(_dict(a.get("who")).get("identifier"))
            system = ident.get("system") or ""
            if not ((ident.get("value") and system.endswith("/sid/client")) or _dict(a.get("who")).get("display")):
                yield f"{where} who needs an identifier (system <base>/sid/client) or a display"
            if base_url and ident and system != base_url + "/sid/client":
                yield f"{where} identifier system {system!r} is not {base_url + '/sid/client'!r}"
            if not net.get("address") or net.get("type") not in ("1", "2"):
                yield f"{where} network needs an address of type 1 (machine name) or 2 (IP)"
        elif kind == "server":
            if not _present(a.get("who")):
                yield f"{where} needs who"
            address = net.get("address") or ""
            if net.get("type") != "5" or not re.match(r"https?://", address):
                yield f"{where} network needs the server base URL with type 5 (URI)"
            elif base_url and address != base_url:
                yield f"{where} network address {address!r} is not the server base {base_url!r}"
        elif kind == "user":
            if a.get("requestor") is not True:
                yield f"{where} must have requestor = true"
            w = _dict(a.get("who"))
            if not (w.get("reference") or _dict(w.get("identifier")).get("value")):
                yield f"{where} who needs a reference (fhirUser) or an identifier"
            if net:
                yield f"{where} must not carry network (BALP user network 0..0)"
    if _is_rest(event):
        for kind in ("client", "server"):
            if kinds.count(kind) != 1:
                yield f"a REST event needs exactly one {kind} agent, found {kinds.count(kind)}"
        if kinds.count("user") > 1:
            yield f"at most one user agent, found {kinds.count('user')}"


def source(event, base_url):
    """source: site, observer and security-source-type#4 (Application Server)."""
    src = _dict(event.get("source"))
    if not src.get("site"):
        yield "source.site is missing"
    if not _present(src.get("observer")):
        yield "source.observer is missing"
    if not any(_has(c, SOURCE_TYPE, "4") for c in _list(src.get("type"))):
        yield "source.type lacks security-source-type#4 (Application Server)"


def entities(event, base_url):
    """BALP entity slices: data, patient, query, transaction; their shapes and counts."""
    for i, e in enumerate(_list(event.get("entity"))):
        kind = _entity_kind(e)
        where = f"entity[{i}] ({kind or 'other'})"
        etype = _code(e.get("type"), ENTITY_TYPE)
        ref = _dict(e.get("what")).get("reference")
        if kind == "data":
            if etype != "2":
                yield f"{where} type must be audit-entity-type#2 (System Object)"
            m = DATA_REF.fullmatch(ref) if isinstance(ref, str) else None
            if not (m and m.group(1) in model().resource_types):
                yield f"{where} what.reference {ref!r} is not Type/id or Type/id/_history/vid"
        elif kind == "patient":
            if etype != "1":
                yield f"{where} type must be audit-entity-type#1 (Person)"
            if not (isinstance(ref, str) and PATIENT_REF.fullmatch(ref)):
                yield f"{where} what.reference {ref!r} is not Patient/<id>"
        elif kind == "query":
            if etype != "2":
                yield f"{where} type must be audit-entity-type#2 (System Object)"
            if e.get("what") or e.get("detail"):
                yield f"{where} must not carry what or detail (BALP Query what 0..0, detail 0..0)"
            if not _is_base64(e.get("query")):
                yield f"{where} query must be standard base64 of the raw request"
        elif kind == "transaction":
            if not _dict(_dict(e.get("what")).get("identifier")).get("value"):
                yield f"{where} what.identifier.value must hold the request id"
    patients = _entities(event, "patient")
    if len(patients) > 1:
        yield f"at most one patient entity per AuditEvent (one event per patient), found {len(patients)}"
    if len(_entities(event, "transaction")) > 1:
        yield "at most one transaction (XrequestId) entity"
    code = _interaction(event) if _is_rest(event) else None
    if code in ONE_DATA and event.get("outcome") == "0" and len(_entities(event, "data")) != 1:
        yield f"a successful {code!r} needs exactly one data entity, found {len(_entities(event, 'data'))}"
    if code and code.startswith("search") and len(_entities(event, "query")) != 1:
        yield f"a {code!r} needs exactly one query entity, found {len(_entities(event, 'query'))}"


def profile(event, base_url):
    """meta.profile: one BALP profile on each successful REST event whose subtype has a pattern."""
    claimed = _claimed(event)
    for name in claimed:
        if name.removeprefix("Patient") not in PATTERNS:
            yield f"meta.profile names unknown BALP profile {BALP_SD + name!r}"
    if claimed and event.get("outcome") != "0":
        yield f"a failure event (outcome {event.get('outcome')!r}) must not claim {claimed}"
        return
    if len(claimed) > 1:
        yield f"claims more than one BALP profile: {claimed}"
        return
    code = _interaction(event) if _is_rest(event) else None
    pattern = INTERACTIONS.get(code, (None, None))[1]
    has_patient = bool(_entities(event, "patient"))
    if claimed:
        name = claimed[0]
        if name.removeprefix("Patient") != pattern:
            yield f"claims {name} but subtype {code!r} maps to {pattern or 'no BALP profile'}"
        elif name.startswith("Patient") != has_patient:
            yield (f"claims {name} but has no patient entity" if not has_patient else
                   f"has a patient entity, so claims Patient{pattern}, not {name}")
    elif pattern and event.get("outcome") == "0" and not event.get("outcomeDesc"):
        # (a success that says why it claims nothing, e.g. a conditional create that matched, is exempt)
        yield f"a successful {code!r} must claim {'Patient' if has_patient else ''}{pattern}"


def minimal(event, base_url):
    """BALP records no result content: no contained resources, no resource body in entity.detail."""
    if event.get("contained"):
        yield "must not contain resources (contained)"
    for i, e in enumerate(_list(event.get("entity"))):
        for d in _list(e.get("detail")):
            if _is_resource_body(d):
                yield f"entity[{i}].detail {d.get('type')!r} holds a resource body"


def _is_base64(value) -> bool:
    try:
        return isinstance(value, str) and bool(value) and bool(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return False


def _is_resource_body(detail: dict) -> bool:
    text = detail.get("valueString")
    if "valueBase64Binary" in detail:
        try:
            text = base64.b64decode(detail["valueBase64Binary"]).decode("utf-8")
        except (binascii.Error, ValueError, TypeError):
            return False
    if not isinstance(text, str):
        return False
    if 'xmlns="http://hl7.org/fhir"' in text:
        return True
    try:
        body = json.loads(text)
    except ValueError:
        return False
    return isinstance(body, dict) and "resourceType" in body


# (tag, rule group): the tag starts every problem text the group reports
RULES = [
    ("structure", structure),
    ("type", event_type),
    ("subtype/action", subtype_action),
    ("recorded/outcome", recorded_outcome),
    ("agent", agents),
    ("source", source),
    ("entity", entities),
    ("profile", profile),
    ("minimal", minimal),
]


def problems(event: dict, base_url: str | None = None) -> list[str]:
    """Every BALP / R4 violation of `event`, as 'tag: text'; [] when it conforms."""
    out = [f"structure: {p}" for p in structure(event, base_url)]
    if not isinstance(event, dict):
        return out
    for tag, rule in RULES[1:]:
        out += [f"{tag}: {p}" for p in rule(event, base_url)]
    return out


def assert_balp(event: dict, base_url: str | None = None) -> None:
    found = problems(event, base_url)
    if found:
        raise AssertionError("AuditEvent does not conform to BALP:\n  - " + "\n  - ".join(found))
