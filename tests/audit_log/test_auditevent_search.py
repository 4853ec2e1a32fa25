"""Reading the audit trail (docs/audit.md, "Reading the log"), over HTTP on both stores: a regulator
searches the BALP AuditEvents with the R4 AuditEvent search parameters (auditevent.html#search), newest
first and page by page; a patient sees only the events about themself, a hospital's practitioner none
about another hospital's patients; nobody, an administrator included, writes an AuditEvent.
"""
from __future__ import annotations

import pytest

from fhirserver.governance import custodian
from fhirserver.smart_auth.accounts import Users
from fhirserver.smart_auth.clients import Clients
from tests.conftest import FHIR_JSON, STORES
from tests.governance.test_policy import A, B, World
from tests.smart_auth._tokens import BASE, mint

PW = "correct horse battery"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
AUDIT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
CLIENT = f"{BASE}/sid/client"


class Audited(World):
    """Hospitals A and B, patients p1 and p2 (held by A); A's practitioner dra reads p1's Observation,
    asks for one that does not exist (404) and searches p2's; the regulator reads it all back."""

    def __init__(self, tmp_path, backend):
        super().__init__(tmp_path, backend)
        store = self.app.config["MEDPORT"].store
        users = Users(store)
        users.add("inspector", PW, "regulator")
        users.add("dra", PW, "practitioner", "Practitioner/pa", A)
        users.add("drb", PW, "practitioner", "Practitioner/pb", B)
        users.add("root", PW, "admin")
        users.add("p2", PW, "patient", f"Patient/{self.p2}")
        self.reg = mint(self.app, "user/*.rs", subject="inspector", role="regulator")
        client, _secret = Clients(store).add("Health regulator", "confidential-symmetric",
                                             ["https://regulator.test/cb"], ["system/*.rs"], regulator=True)
        self.reg_client = mint(self.app, "system/*.rs", subject=client.client_id, client_id=client.client_id)
        self.dra = mint(self.app, "user/*.rs", subject="dra", client_id="a-app", role="practitioner",
                        organization=A, fhirUser=f"{BASE}/Practitioner/pa")
        self.drb = mint(self.app, "user/*.rs", subject="drb", client_id="b-app", role="practitioner",
                        organization=B, fhirUser=f"{BASE}/Practitioner/pb")
        self.admin = mint(self.app, "user/*.cruds", subject="root", role="admin")
        self.p2_token = mint(self.app, "patient/*.cruds", subject="p2", patient=self.p2, role="patient",
                             fhirUser=f"{BASE}/Patient/{self.p2}")
        assert self.send(self.dra, "GET", f"/fhir/Observation/{self.obs1}").status_code == 200
        assert self.send(self.dra, "GET", "/fhir/Observation/no-such-record").status_code == 404
        assert self.send(self.dra, "GET", f"/fhir/Observation?subject=Patient/{self.p2}").status_code == 200

    def events(self, token, query: str) -> list[dict]:
        """Every match, following the next links."""
        url, found = f"/fhir/AuditEvent?{query}", []
        while url:
            r = self.send(token, "GET", url)
            assert r.status_code == 200, r.get_data(as_text=True)
            body = r.get_json()
            found += [e["resource"] for e in body.get("entry", ())]
            url = next((link["url"].removeprefix(BASE).join(("/fhir", "")) for link in body["link"]
                        if link["relation"] == "next"), None)
        return found


def patients(event: dict) -> set[str]:
    return {r for r in (x.get("reference") for x in [e.get("what") or {} for e in event.get("entity", ())]
                        + [a.get("who") or {} for a in event["agent"]]) if r and r.startswith("Patient/")}


def codes(event: dict, system: str) -> set[str]:
    return {c["code"] for c in event.get("subtype", ()) if c["system"] == system}


@pytest.fixture(params=STORES)
def w(request, tmp_path):
    return Audited(tmp_path, request.param)


def test_a_regulator_searches_by_patient_agent_entity_and_codes(w):
    read = w.events(w.reg, f"altid=dra&subtype={INTERACTION}|read&outcome=0")
    assert len(read) == 1
    read = read[0]
    assert {e["what"]["reference"] for e in read["entity"] if "reference" in e.get("what", {})} == \
        {f"Observation/{w.obs1}/_history/1", f"Patient/{w.p1}"}
    assert custodian.of(read) == A
    # every parameter that should find the read finds it, and each match satisfies the parameter
    by = {
        f"patient=Patient/{w.p1}": lambda e: f"Patient/{w.p1}" in patients(e),
        f"patient={w.p1}": lambda e: f"Patient/{w.p1}" in patients(e),
        "agent=Practitioner/pa": lambda e: {"reference": "Practitioner/pa"} in [a["who"] for a in e["agent"]],
        f"agent:identifier={CLIENT}|a-app": lambda e: {"identifier": {"system": CLIENT, "value": "a-app"}}
        in [a["who"] for a in e["agent"]],
        "altid=dra": lambda e: "dra" in [a.get("altId") for a in e["agent"]],
        f"entity=Observation/{w.obs1}": lambda e: any(x.get("what", {}).get("reference", "").startswith(
            f"Observation/{w.obs1}") for x in e["entity"]),
        f"type={AUDIT_TYPE}|rest": lambda e: e["type"]["code"] == "rest",
        f"subtype={INTERACTION}|read": lambda e: "read" in codes(e, INTERACTION),
        "action=R": lambda e: e["action"] == "R",
        "outcome=0": lambda e: e["outcome"] == "0",
    }
    for query, holds in by.items():
        found = w.events(w.reg, f"{query}&_count=50")
        assert read["id"] in {e["id"] for e in found}, query
        assert all(holds(e) for e in found), query
    # the failed read: outcome 4 (minor failure), with the reason
    failed = w.events(w.reg, "altid=dra&outcome=4")
    assert len(failed) == 1 and failed[0]["action"] == "R" and "not known" in failed[0]["outcomeDesc"]
    assert w.events(w.reg, f"entity=Observation/{w.obs2}&agent=Practitioner/pa") == []
    assert w.events(w.reg, f"altid=dra&subtype={INTERACTION}|search-type&patient={w.p2}")[0]["action"] == "E"
    # a client registered as a regulator reads the same trail
    assert {e["id"] for e in w.events(w.reg_client, "altid=dra")} == {e["id"] for e in w.events(w.reg, "altid=dra")}


def test_dates_newest_first_and_paging(w):
    for _ in range(2):
        assert w.send(w.dra, "GET", f"/fhir/Patient/{w.p1}").status_code == 200
    everything = w.events(w.reg, "altid=dra&_count=100")
    n = len(everything)                 # the world's searches by dra, then these two reads
    assert n >= 5
    pages, url = [], "/fhir/AuditEvent?altid=dra&_sort=-date&_count=2"
    while url:
        body = w.send(w.reg, "GET", url).get_json()
        pages.append([e["resource"] for e in body["entry"]])
        url = next((link["url"].replace(BASE, "/fhir") for link in body["link"] if link["relation"] == "next"), None)
    assert [len(p) for p in pages] == [2] * (n // 2) + [1] * (n % 2)
    newest_first = [e for p in pages for e in p]
    assert {e["id"] for e in newest_first} == {e["id"] for e in everything} and len(newest_first) == n
    recorded = [e["recorded"] for e in newest_first]
    assert recorded == sorted(recorded, reverse=True)
    assert [e["recorded"] for e in w.events(w.reg, "altid=dra&_sort=date")] == sorted(recorded)
    # recorded, with ge / le (the instants are all UTC with milliseconds: they order as strings)
    middle = recorded[2]
    later = {e["id"] for e in everything if e["recorded"] >= middle}
    earlier = {e["id"] for e in everything if e["recorded"] <= middle}
    assert {e["id"] for e in w.events(w.reg, f"altid=dra&date=ge{middle}")} == later
    assert {e["id"] for e in w.events(w.reg, f"altid=dra&date=le{middle}")} == earlier
    assert {e["id"] for e in w.events(w.reg, f"altid=dra&date=ge{recorded[-1]}&date=le{recorded[0]}")} == \
        {e["id"] for e in everything}
    assert w.events(w.reg, "altid=dra&date=lt2000-01-01") == []


def test_a_patient_sees_only_the_events_about_themself(w):
    theirs = w.events(w.p2_token, "_count=100")
    assert theirs and all(f"Patient/{w.p2}" in patients(e) and f"Patient/{w.p1}" not in patients(e) for e in theirs)
    mine = w.events(w.p1_token, "_count=100")
    assert mine and all(f"Patient/{w.p1}" in patients(e) for e in mine)
    assert any(f"Observation/{w.obs1}/_history/1" in [x.get("what", {}).get("reference") for x in e["entity"]]
               for e in mine)                                   # dra's read of their Observation
    assert w.events(w.p1_token, f"patient={w.p2}") == []
    about_p2 = w.events(w.reg, f"patient={w.p2}")
    # the only events about p2 that p1 sees are p1's own requests naming p2 (the search just above:
    # the trail records the patient a query names; the agent is p1)
    shared = [e for e in w.events(w.p1_token, "_count=100") if e["id"] in {x["id"] for x in about_p2}]
    assert all({"reference": f"Patient/{w.p1}"} in [a["who"] for a in e["agent"]] for e in shared)
    about_p2 = [e for e in about_p2 if e not in shared]
    assert about_p2
    assert w.send(w.p1_token, "GET", f"/fhir/AuditEvent/{about_p2[0]['id']}").status_code == 404


def test_a_hospital_practitioner_sees_no_other_hospitals_patients_events(w):
    about_p1 = w.events(w.reg, f"patient={w.p1}")
    assert about_p1
    assert w.events(w.drb, f"patient={w.p1}") == []
    assert w.events(w.drb, "altid=dra") == []
    assert w.send(w.drb, "GET", f"/fhir/AuditEvent/{about_p1[0]['id']}").status_code == 404
    # A's practitioner sees the events A holds, and only those
    held = w.events(w.dra, "_count=100")
    assert held and all(custodian.of(e) == A for e in held)


def test_nobody_writes_an_audit_event(w):
    event = w.events(w.reg, "altid=dra&_count=1")[0]
    fresh = {k: v for k, v in event.items() if k not in ("id", "meta")}
    patch = ("application/json-patch+json", '[{"op": "replace", "path": "/outcome", "value": "8"}]')
    for token in (w.admin, w.exchange, w.a, w.reg, w.p1_token):
        url = f"/fhir/AuditEvent/{event['id']}"
        answers = [w.send(token, "POST", "/fhir/AuditEvent", fresh), w.send(token, "PUT", url, event),
                   w.send(token, "DELETE", url),
                   w.client.patch(url, data=patch[1], headers={"Authorization": f"Bearer {token}",
                                                               "Content-Type": patch[0]})]
        for r in answers:
            assert r.status_code in (403, 405), (r.request.method, r.status_code, r.get_data(as_text=True))
            assert r.get_json()["resourceType"] == "OperationOutcome"
        bundle = {"resourceType": "Bundle", "type": "transaction",
                  "entry": [{"request": {"method": "DELETE", "url": f"AuditEvent/{event['id']}"}}]}
        r = w.send(token, "POST", "/fhir", bundle)
        assert r.status_code in (403, 405), r.get_data(as_text=True)
    after = w.send(w.reg, "GET", f"/fhir/AuditEvent/{event['id']}")
    assert after.status_code == 200 and after.get_json() == event
    assert w.send(w.reg, "GET", f"/fhir/AuditEvent/{event['id']}/_history").get_json()["total"] == 1
    r = w.client.post("/fhir/AuditEvent", json=fresh, headers={"Content-Type": FHIR_JSON})    # no token at all
    assert r.status_code == 401


def test_a_consent_or_an_emergency_never_shares_another_hospitals_audit_trail(tmp_path, backend):
    """Consents share records, not the audit trail of the other hospital's people (policy.HELD_ONLY)."""
    from fhirserver.smart_auth.accounts import Users
    from tests.smart_auth._tokens import auth, make_app, mint
    app = make_app(tmp_path, backend, sharing_default="opt-out")        # everything shared by default
    c = app.test_client()
    exchange = auth(mint(app, "system/*.cruds", client_id="exchange-tool"))
    pid = c.post("/fhir/Patient", json={"resourceType": "Patient", "name": [{"family": "Rao"}]},
                 headers={**exchange, "Content-Type": "application/fhir+json"}).json["id"]
    Users(app.config["MEDPORT"].store).add("dra", "correct horse battery", "practitioner", "Practitioner/pa",
                                           "Organization/hosp-a")
    a = auth(mint(app, "user/*.rs", subject="dra", client_id="a-app", role="practitioner",
                  organization="Organization/hosp-a", fhirUser=f"{BASE}/Practitioner/pa"))
    c.get(f"/fhir/Patient/{pid}", headers=a)                            # A's access, held by A
    b = auth(mint(app, "system/*.rs", client_id="b-ehr", organization="Organization/hosp-b"))
    assert c.get(f"/fhir/Patient/{pid}", headers=b).status_code == 200   # B sees the patient (opt-out)...
    seen = c.get(f"/fhir/AuditEvent?patient=Patient/{pid}", headers=b).json
    holders = {ext["valueReference"]["reference"] for e in seen.get("entry", ())
               for ext in e["resource"].get("meta", {}).get("extension", ())}
    assert holders <= {"Organization/hosp-b"}                              # ...but only its own events
    assert seen.get("total", 0) >= 1
