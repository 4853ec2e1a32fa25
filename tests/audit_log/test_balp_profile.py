"""The BALP checker (balp_profile.py): conforming events pass, every rule fires on a mutated one."""
from __future__ import annotations

import base64
import copy
import json

import pytest

from tests.audit_log.balp_profile import (
    BALP_ENTITY_TYPE,
    BALP_SD,
    DCM,
    ENTITY_TYPE,
    OBJECT_ROLE,
    PARTICIPATION,
    RESTFUL,
    RULES,
    assert_balp,
    problems,
)

BASE = "https://fhir.example.org/r4"
ACTIONS = {"read": "R", "vread": "R", "create": "C", "update": "U", "patch": "U", "delete": "D",
           "search": "E", "search-type": "E", "search-system": "E", "history-instance": "R",
           "capabilities": "R", "operation": "E", "batch": "E", "transaction": "E"}
PATTERN = {"read": "Read", "vread": "Read", "create": "Create", "update": "Update", "patch": "Update",
           "delete": "Delete", "search": "Query", "search-type": "Query", "search-system": "Query"}


def entity(role: str, etype: str, **more) -> dict:
    return {"type": {"system": ENTITY_TYPE, "code": etype}, "role": {"system": OBJECT_ROLE, "code": role}, **more}


def rest_event(code: str, *, patient: bool = False, user: bool = True, outcome: str = "0") -> dict:
    """An event shaped as the producer emits it; conforming for every argument combination."""
    ev = {
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "subtype": [{"system": RESTFUL, "code": code}],
        "action": ACTIONS[code],
        "recorded": "2024-05-01T10:11:12.345+02:00",
        "outcome": outcome,
        "agent": [
            {"type": {"coding": [{"system": DCM, "code": "110153", "display": "Source Role ID"}]},
             "who": {"identifier": {"system": BASE + "/sid/client", "value": "app-1"}},
             "requestor": not user, "network": {"address": "10.0.0.7", "type": "2"}},
            {"type": {"coding": [{"system": DCM, "code": "110152", "display": "Destination Role ID"}]},
             "who": {"display": "Med-Port"}, "requestor": False, "network": {"address": BASE, "type": "5"}},
        ],
        "source": {"site": "med-port", "observer": {"display": "Med-Port"},
                   "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4"}]},
        "entity": [{"type": {"system": BALP_ENTITY_TYPE, "code": "XrequestId"},
                    "what": {"identifier": {"value": "req-42"}}}],
    }
    if user:
        ev["agent"].append({"type": {"coding": [{"system": PARTICIPATION, "code": "IRCP"}]},
                            "who": {"reference": "Practitioner/dr-1"}, "requestor": True,
                            "purposeOfUse": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                                          "code": "TREAT"}]}]})
    if code.startswith("search"):
        raw = "GET Observation?subject=Patient/p1&code=1234-5" if patient else "GET Organization?name=x"
        ev["entity"].append(entity("24", "2", query=base64.b64encode(raw.encode()).decode()))
    elif code in PATTERN and outcome == "0":
        ref = {"create": "Observation/o1", "vread": "Observation/o1/_history/2"}.get(code, "Observation/o1")
        ev["entity"].append(entity("4", "2", what={"reference": ref if patient else "Organization/org1"}))
    if patient:
        ev["entity"].append(entity("1", "1", what={"reference": "Patient/p1"}))
    if outcome != "0":
        ev["outcomeDesc"] = "HTTP 404: Observation/o1 is not known"
    elif code in PATTERN:
        ev["meta"] = {"profile": [BALP_SD + ("Patient" if patient else "") + PATTERN[code]]}
    return ev


def auth_event() -> dict:
    """A DICOM security event (110114 User Authentication): generic rules only."""
    ev = rest_event("read", user=False)
    ev.update(type={"system": DCM, "code": "110114", "display": "User Authentication"},
              subtype=[{"system": DCM, "code": "110122", "display": "Login"}], action="E")
    del ev["meta"]
    ev["entity"] = ev["entity"][:1]
    return ev


CONFORMING = {
    **{f"{PATTERN[c]}-{c}": rest_event(c) for c in PATTERN},
    **{f"Patient{PATTERN[c]}-{c}": rest_event(c, patient=True) for c in PATTERN},
    "Read-without-user": rest_event("read", user=False),
    **{f"no-profile-{c}": rest_event(c) for c in ("history-instance", "capabilities", "operation", "batch",
                                                  "transaction")},
    "failed-read-404": rest_event("read", outcome="4"),
    "failed-create-500": rest_event("create", outcome="8"),
    "failed-search-400": rest_event("search", outcome="4"),
    "auth-110114": auth_event(),
}


@pytest.mark.parametrize("name", CONFORMING)
def test_conforming_examples_pass(name):
    event = CONFORMING[name]
    assert problems(event) == []
    assert problems(event, base_url=BASE) == []
    assert_balp(event)


def test_the_examples_cover_every_balp_profile():
    claimed = {p for ev in CONFORMING.values() for p in ev.get("meta", {}).get("profile", [])}
    assert claimed == {BALP_SD + p + n for p in ("", "Patient")
                       for n in ("Create", "Read", "Update", "Delete", "Query")}


# ---- mutations: (id, base event, mutation, tag of the rule group expected to fire, text in its message)

def _set(path, value):
    """Mutation setting event[path...] = value (a missing last key is deleted when value is ...)."""
    def mutate(ev):
        *head, last = path
        node = ev
        for key in head:
            node = node[key]
        if value is ...:
            del node[last]
        else:
            node[last] = value
    return mutate


def _agent(kind_code):
    return lambda ev: next(a for a in ev["agent"] if a["type"]["coding"][0]["code"] == kind_code)


def _on_agent(code, key, value):
    def mutate(ev):
        a = _agent(code)(ev)
        if value is ...:
            del a[key]
        else:
            a[key] = value
    return mutate


def _ent(role=None, etype=None):
    def find(ev):
        return next(e for e in ev["entity"]
                    if (role is None or e.get("role", {}).get("code") == role)
                    and (etype is None or e["type"]["code"] == etype))
    return find


def _on_entity(find, key, value):
    def mutate(ev):
        e = find(ev)
        if value is ...:
            del e[key]
        else:
            e[key] = value
    return mutate


def _append_entity(e):
    return lambda ev: ev["entity"].append(e)


def _drop_entities(role):
    def mutate(ev):
        ev["entity"] = [e for e in ev["entity"] if e.get("role", {}).get("code") != role]
    return mutate


def _drop_agent(code):
    def mutate(ev):
        ev["agent"] = [a for a in ev["agent"] if a["type"]["coding"][0]["code"] != code]
    return mutate


def _both(*mutations):
    def mutate(ev):
        for m in mutations:
            m(ev)
    return mutate


def _body(kind):
    body = json.dumps({"resourceType": "Patient", "id": "p1", "name": [{"family": "Doe"}]})
    value = {"valueString": body} if kind == "string" else {"valueBase64Binary": base64.b64encode(body.encode()).decode()}
    return _on_entity(_ent("4"), "detail", [{"type": "response", **value}])


READ, PREAD, QUERY, PQUERY = (lambda: rest_event("read"), lambda: rest_event("read", patient=True),
                              lambda: rest_event("search"), lambda: rest_event("search", patient=True))
PROFILE = ("meta", "profile")

MUTATIONS = [
    # structure (R4 AuditEvent, fhirserver.validation)
    ("r4-unknown-element", READ, _set(("bogus",), 1), "structure", "bogus"),
    ("r4-agent-without-requestor", READ, _on_agent("110152", "requestor", ...), "structure", "requestor"),
    ("r4-not-auditevent", READ, _set(("resourceType",), "Basic"), "structure", "Basic"),
    # type
    ("type-not-rest", READ, _set(("type", "code"), "restful"), "type", "neither"),
    ("type-foreign-system", auth_event, _set(("type", "system"), "http://example.org/types"), "type", "neither"),
    # subtype / action
    ("subtype-missing-interaction", READ, _set(("subtype",), [{"system": DCM, "code": "110122"}]),
     "subtype/action", "exactly one"),
    ("subtype-two-interactions", READ, lambda ev: ev["subtype"].append({"system": RESTFUL, "code": "vread"}),
     "subtype/action", "exactly one"),
    ("subtype-not-r4-code", READ, _set(("subtype", 0, "code"), "fetch"), "subtype/action", "not an R4"),
    ("action-read-as-E", READ, _set(("action",), "E"), "subtype/action", "requires 'R'"),
    ("action-create-as-U", lambda: rest_event("create"), _set(("action",), "U"), "subtype/action", "requires 'C'"),
    ("action-query-as-R", QUERY, _set(("action",), "R"), "subtype/action", "requires 'E'"),
    ("action-patch-as-C", lambda: rest_event("patch"), _set(("action",), "C"), "subtype/action", "requires 'U'"),
    ("action-delete-as-U", lambda: rest_event("delete"), _set(("action",), "U"), "subtype/action", "requires 'D'"),
    # recorded / outcome
    ("recorded-no-timezone", READ, _set(("recorded",), "2024-05-01T10:11:12"), "recorded/outcome", "timezone"),
    ("recorded-date-only", READ, _set(("recorded",), "2024-05-01"), "recorded/outcome", "timezone"),
    ("outcome-missing", READ, _set(("outcome",), ...), "recorded/outcome", "not one of"),
    ("outcome-failure-undescribed", lambda: rest_event("read", outcome="4"), _set(("outcomeDesc",), ...),
     "recorded/outcome", "outcomeDesc"),
    ("outcome-serious-blank-desc", lambda: rest_event("read", outcome="8"), _set(("outcomeDesc",), " "),
     "recorded/outcome", "outcomeDesc"),
    # agents
    ("agent-no-requestor", lambda: rest_event("read", user=False), _on_agent("110153", "requestor", False),
     "agent", "requestor = true"),
    ("agent-no-client", READ, _drop_agent("110153"), "agent", "exactly one client"),
    ("agent-no-server", READ, _drop_agent("110152"), "agent", "exactly one server"),
    ("agent-two-clients", READ, lambda ev: ev["agent"].append(copy.deepcopy(ev["agent"][0])),
     "agent", "exactly one client"),
    ("agent-client-anonymous", READ, _on_agent("110153", "who", {"reference": "Device/d1"}), "agent", "/sid/client"),
    ("agent-client-without-network", READ, _on_agent("110153", "network", ...), "agent", "machine name"),
    ("agent-client-network-uri", READ, _on_agent("110153", "network", {"address": BASE, "type": "5"}),
     "agent", "machine name"),
    ("agent-server-without-who", READ, _on_agent("110152", "who", ...), "agent", "needs who"),
    ("agent-server-network-ip", READ, _on_agent("110152", "network", {"address": "10.0.0.1", "type": "2"}),
     "agent", "base URL"),
    ("agent-media", READ, _on_agent("110153", "media", {"system": DCM, "code": "110030"}), "agent", "media"),
    ("agent-user-not-requestor", READ, _both(_on_agent("IRCP", "requestor", False),
                                            _on_agent("110153", "requestor", True)), "agent", "user) must have"),
    ("agent-user-without-who", READ, _on_agent("IRCP", "who", {"display": "Dr One"}), "agent", "fhirUser"),
    ("agent-user-with-network", READ, _on_agent("IRCP", "network", {"address": "10.0.0.7", "type": "2"}),
     "agent", "network 0..0"),
    ("agent-two-users", READ, lambda ev: ev["agent"].append(copy.deepcopy(ev["agent"][2])), "agent", "one user"),
    # source
    ("source-no-site", READ, _set(("source", "site"), ...), "source", "site"),
    ("source-observer-empty", READ, _set(("source", "observer"), {"type": "Device"}), "source", "observer"),
    ("source-type-not-4", READ, _set(("source", "type", 0, "code"), "1"), "source", "Application Server"),
    ("source-type-missing", auth_event, _set(("source", "type"), ...), "source", "Application Server"),
    # entities
    ("entity-read-without-data", READ, _drop_entities("4"), "entity", "exactly one data"),
    ("entity-update-two-data", lambda: rest_event("update"), _append_entity(entity("4", "2", what={"reference": "Basic/b"})),
     "entity", "exactly one data"),
    ("entity-data-role-unknown", READ, _on_entity(_ent("4"), "role", {"system": OBJECT_ROLE, "code": "99"}),
     "entity", "exactly one data"),
    ("entity-data-type-person", READ, _on_entity(_ent("4"), "type", {"system": ENTITY_TYPE, "code": "1"}),
     "entity", "System Object"),
    ("entity-data-ref-absent", READ, _on_entity(_ent("4"), "what", {"display": "org"}), "entity", "Type/id"),
    ("entity-data-ref-bad-type", READ, _on_entity(_ent("4"), "what", {"reference": "Nonsense/1"}), "entity", "Type/id"),
    ("entity-data-ref-absolute", READ, _on_entity(_ent("4"), "what", {"reference": BASE + "/Organization/org1"}),
     "entity", "Type/id"),
    ("entity-two-patients", PREAD, _append_entity(entity("1", "1", what={"reference": "Patient/p2"})),
     "entity", "at most one patient"),
    ("entity-patient-type-object", PREAD, _on_entity(_ent("1"), "type", {"system": ENTITY_TYPE, "code": "2"}),
     "entity", "Person"),
    ("entity-patient-ref-other", PREAD, _on_entity(_ent("1"), "what", {"reference": "Group/g1"}),
     "entity", "Patient/<id>"),
    ("entity-query-missing", QUERY, _drop_entities("24"), "entity", "exactly one query"),
    ("entity-query-not-base64", QUERY, _on_entity(_ent("24"), "query", "GET Organization?name=x"),
     "entity", "base64"),
    ("entity-query-urlsafe-base64", QUERY, _on_entity(_ent("24"), "query", "R0VU-_w=="), "entity", "base64"),
    ("entity-query-empty", QUERY, _on_entity(_ent("24"), "query", ...), "entity", "base64"),
    ("entity-query-type-person", QUERY, _on_entity(_ent("24"), "type", {"system": ENTITY_TYPE, "code": "1"}),
     "entity", "System Object"),
    ("entity-query-with-what", QUERY, _on_entity(_ent("24"), "what", {"reference": "Organization/o"}),
     "entity", "what 0..0"),
    ("entity-request-id-empty", READ, _on_entity(_ent(etype="XrequestId"), "what", {"identifier": {"system": "x"}}),
     "entity", "request id"),
    ("entity-two-request-ids", READ, lambda ev: ev["entity"].append(copy.deepcopy(ev["entity"][0])),
     "entity", "XrequestId"),
    # meta.profile
    ("profile-on-failure", lambda: rest_event("read", outcome="4"),
     _set(("meta",), {"profile": [BALP_SD + "Read"]}), "profile", "failure"),
    ("profile-missing-on-success", READ, _set(("meta",), ...), "profile", "must claim Read"),
    ("profile-patient-missing-on-success", PQUERY, _set(("meta",), ...), "profile", "must claim PatientQuery"),
    ("profile-wrong-pattern", READ, _set(PROFILE, [BALP_SD + "Update"]), "profile", "maps to Read"),
    ("profile-on-history", lambda: rest_event("history-instance"), _set(("meta",), {"profile": [BALP_SD + "Read"]}),
     "profile", "no BALP profile"),
    ("profile-patient-without-patient", READ, _set(PROFILE, [BALP_SD + "PatientRead"]), "profile", "no patient"),
    ("profile-plain-with-patient", PQUERY, _set(PROFILE, [BALP_SD + "Query"]), "profile", "PatientQuery"),
    ("profile-patient-entity-removed", PREAD, _drop_entities("1"), "profile", "no patient"),
    ("profile-two", READ, _set(PROFILE, [BALP_SD + "Read", BALP_SD + "PatientRead"]), "profile", "more than one"),
    ("profile-unknown", READ, _set(PROFILE, [BALP_SD + "Export"]), "profile", "unknown"),
    # minimal: no result content
    ("minimal-contained", READ, _set(("contained",), [{"resourceType": "Organization", "id": "org1"}]),
     "minimal", "contained"),
    ("minimal-detail-string-body", READ, _body("string"), "minimal", "resource body"),
    ("minimal-detail-base64-body", READ, _body("base64"), "minimal", "resource body"),
]


@pytest.mark.parametrize("name, make, mutate, tag, text", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_each_rule_fires_on_a_mutated_example(name, make, mutate, tag, text):
    event = make()
    assert problems(event) == [], "the base example must conform before it is mutated"
    mutate(event)
    found = problems(event)
    assert any(p.startswith(tag + ": ") and text in p for p in found), found
    with pytest.raises(AssertionError, match="does not conform to BALP"):
        assert_balp(event)


def test_every_rule_group_is_exercised_by_a_mutation():
    assert {tag for tag, _ in RULES} == {m[3] for m in MUTATIONS}


def test_harmless_detail_and_extra_codings_are_accepted():
    event = rest_event("read")
    event["subtype"].append({"system": "http://example.org/op", "code": "x"})
    _ent("4")(event)["detail"] = [{"type": "version", "valueString": "2"}]
    assert problems(event) == []


def test_base_url_pins_the_server_and_client_identifiers():
    event = rest_event("read")
    assert problems(event, base_url=BASE) == []
    other = "https://other.example.org/fhir"
    found = problems(event, base_url=other)
    assert any("is not the server base" in p for p in found), found
    assert any(other + "/sid/client" in p for p in found), found


def test_assert_balp_lists_every_problem():
    event = rest_event("read")
    event["action"] = "C"
    del event["source"]["site"]
    with pytest.raises(AssertionError) as exc:
        assert_balp(event)
    assert "subtype/action:" in str(exc.value) and "source: source.site" in str(exc.value)


@pytest.mark.parametrize("junk", [None, [], "AuditEvent", {"resourceType": "AuditEvent", "agent": "x",
                                                           "entity": [1], "meta": {"profile": 3}}])
def test_malformed_input_is_reported_not_crashed_on(junk):
    assert problems(junk)
