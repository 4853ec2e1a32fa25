"""Organisation-aware access (docs/governance.md), on both stores: a hospital's token sees what its
organisation holds, plus what a patient consented to share with it, inside the query (exact totals);
a revoked, expired or narrowed Consent takes effect on the next request; directory resources are open
to every hospital; only the custodian changes a record; only the patient activates a Consent.
"""
from __future__ import annotations

import json

import pytest

from fhirserver.governance import custodian
from fhirserver.smart_auth.accounts import Users
from tests.conftest import FHIR_JSON, STORES
from tests.smart_auth._tokens import BASE, auth, make_app, mint

RT = "http://hl7.org/fhir/resource-types"
A, B = "Organization/hosp-a", "Organization/hosp-b"


class World:
    def __init__(self, tmp_path, backend, **settings):
        self.app = make_app(tmp_path, backend, **settings)
        self.client = self.app.test_client()
        self.a = mint(self.app, "system/*.cruds", client_id="hosp-a-ehr", organization=A)
        self.b = mint(self.app, "system/*.cruds", client_id="hosp-b-ehr", organization=B)
        self.exchange = mint(self.app, "system/*.cruds", client_id="exchange-tool")   # no organisation
        for org in (A, B):
            self.put(self.exchange, {"resourceType": "Organization", "id": org.split("/")[1], "name": org})
        self.p1 = self.create(self.a, {"resourceType": "Patient", "name": [{"family": "Rao"}]})
        self.p2 = self.create(self.a, {"resourceType": "Patient", "name": [{"family": "Das"}]})
        Users(self.app.config["MEDPORT"].store).add("p1", "correct horse battery", "patient", f"Patient/{self.p1}")
        self.p1_token = mint(self.app, "patient/*.cruds", subject="p1", patient=self.p1, role="patient",
                             fhirUser=f"{BASE}/Patient/{self.p1}")
        self.obs1 = self.create(self.a, obs(self.p1, "held by A about p1"))
        self.cond1 = self.create(self.a, {"resourceType": "Condition", "subject": {"reference": f"Patient/{self.p1}"},
                                          "code": {"text": "asthma"}})
        self.obs2 = self.create(self.a, obs(self.p2, "held by A about p2"))

    def send(self, token, method, url, body=None):
        return self.client.open(url, method=method, data=None if body is None else json.dumps(body),
                                headers={**auth(token), "Content-Type": FHIR_JSON})

    def create(self, token, resource) -> str:
        r = self.send(token, "POST", f"/fhir/{resource['resourceType']}", resource)
        assert r.status_code == 201, r.get_data(as_text=True)
        return r.get_json()["id"]

    def put(self, token, resource):
        r = self.send(token, "PUT", f"/fhir/{resource['resourceType']}/{resource['id']}", resource)
        assert r.status_code in (200, 201), r.get_data(as_text=True)     # create or update: either is fine here
        return r.get_json()

    def ids(self, token, query) -> tuple[int, set[str]]:
        r = self.send(token, "GET", f"/fhir/{query}{'&' if '?' in query else '?'}_total=accurate&_count=100")
        assert r.status_code == 200, r.get_data(as_text=True)
        body = r.get_json()
        got = {e["resource"]["id"] for e in body.get("entry", ()) if e.get("search", {}).get("mode") != "outcome"}
        assert body["total"] == len(got)              # the total counts exactly what the caller may see
        return body["total"], got

    def consent(self, status="active", actor=B, classes=(), deny=(), period=None, patient=None):
        provision = {"type": "permit"}
        if actor:
            provision["actor"] = [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                                        "code": "IRCP"}]}, "reference": {"reference": actor}}]
        if classes:
            provision["class"] = [{"system": RT, "code": c} for c in classes]
        if deny:
            provision["provision"] = [{"type": "deny", "class": [{"system": RT, "code": c} for c in deny]}]
        if period:
            provision["period"] = period
        return {"resourceType": "Consent", "status": status,
                "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                      "code": "patient-privacy"}]},
                "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                "patient": {"reference": f"Patient/{patient or self.p1}"},
                "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                           "code": "OPTIN"}]},
                "provision": provision}


def obs(patient: str, text: str) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"text": text},
            "subject": {"reference": f"Patient/{patient}"}}


@pytest.fixture(params=STORES)
def w(request, tmp_path):
    return World(tmp_path, request.param)


def test_a_hospital_sees_what_it_holds_and_nothing_of_anothers(w):
    assert w.ids(w.a, "Observation")[1] == {w.obs1, w.obs2}
    assert w.ids(w.b, "Observation") == (0, set())
    assert w.ids(w.b, "Patient") == (0, set())
    assert w.send(w.b, "GET", f"/fhir/Observation/{w.obs1}").status_code == 404
    assert w.send(w.b, "GET", f"/fhir/Observation/{w.obs1}/_history").status_code == 404
    assert w.send(w.b, "GET", f"/fhir/Patient/{w.p1}/Observation").get_json().get("total") == 0
    r = w.send(w.b, "GET", f"/fhir/Patient?_revinclude=Observation:subject&_id={w.p1}")
    assert r.get_json().get("entry", []) == []
    assert w.send(w.b, "GET", "/fhir/Observation?subject.name=Rao").get_json()["total"] == 0
    assert w.send(w.b, "GET", "/fhir/Observation/_history").get_json()["total"] == 0
    # the exchange's own tool (no organisation) is not held to one
    assert w.ids(w.exchange, "Observation")[1] == {w.obs1, w.obs2}


def test_records_carry_their_custodian_from_the_token(w):
    forged = {**obs(w.p1, "mine"), "meta": {"extension": [{"url": custodian.CUSTODIAN_URL,
                                                           "valueReference": {"reference": A}}]}}
    r = w.send(w.b, "POST", "/fhir/Observation", forged)
    assert r.status_code == 201 and custodian.of(r.get_json()) == B
    assert w.ids(w.b, "Observation")[1] == {r.get_json()["id"]}        # writing about p1 shows B only its own
    assert w.ids(w.b, f"Observation?_custodian={B}")[0] == 1
    assert r.get_json()["id"] not in w.ids(w.a, "Observation")[1]


def test_a_consent_shares_exactly_what_it_says_until_it_is_revoked(w):
    r = w.send(w.p1_token, "POST", "/fhir/Consent", w.consent(classes=("Observation",)))
    assert r.status_code == 201, r.get_data(as_text=True)
    consent = r.get_json()
    assert w.ids(w.b, "Observation")[1] == {w.obs1}                    # p1's, not p2's
    assert w.ids(w.b, "Condition") == (0, set())                       # not a consented type
    assert w.send(w.b, "GET", f"/fhir/Observation/{w.obs1}").status_code == 200
    assert w.ids(w.b, f"Observation?subject=Patient/{w.p1}")[0] == 1
    # the patient narrows nothing more and then revokes: the very next request sees nothing
    consent["status"] = "inactive"
    assert w.send(w.p1_token, "PUT", f"/fhir/Consent/{consent['id']}", consent).status_code == 200
    assert w.ids(w.b, "Observation") == (0, set())
    assert w.send(w.b, "GET", f"/fhir/Observation/{w.obs1}").status_code == 404


def test_a_whole_exchange_consent_with_a_nested_deny(w):
    assert w.send(w.p1_token, "POST", "/fhir/Consent", w.consent(actor=None, deny=("Condition",))).status_code == 201
    assert w.ids(w.b, "Observation")[1] == {w.obs1}
    assert w.ids(w.b, "Condition") == (0, set())
    assert w.ids(w.b, "Patient")[1] == {w.p1}


def test_an_expired_or_future_consent_grants_nothing(w):
    past = {"start": "2020-01-01T00:00:00Z", "end": "2021-01-01T00:00:00Z"}
    future = {"start": "2999-01-01T00:00:00Z"}
    for period in (past, future):
        assert w.send(w.p1_token, "POST", "/fhir/Consent", w.consent(period=period)).status_code == 201
    assert w.ids(w.b, "Observation") == (0, set())
    current = {"start": "2020-01-01T00:00:00Z", "end": "2999-01-01T00:00:00Z"}
    assert w.send(w.p1_token, "POST", "/fhir/Consent", w.consent(period=current)).status_code == 201
    assert w.ids(w.b, "Observation")[1] == {w.obs1}


def test_a_consent_for_another_hospital_shares_nothing_with_this_one(w):
    assert w.send(w.p1_token, "POST", "/fhir/Consent", w.consent(actor="Organization/hosp-c")).status_code == 201
    assert w.ids(w.b, "Observation") == (0, set())


def test_only_the_patient_activates_a_consent(w):
    """A hospital proposes a consent request; it cannot grant itself access."""
    assert w.send(w.b, "POST", "/fhir/Consent", w.consent()).status_code == 403
    proposed = w.send(w.b, "POST", "/fhir/Consent", w.consent(status="proposed"))
    assert proposed.status_code == 201
    request = proposed.get_json()
    assert w.send(w.b, "PUT", f"/fhir/Consent/{request['id']}", {**request, "status": "active"}).status_code == 403
    assert w.ids(w.b, "Observation") == (0, set())
    activated = w.send(w.p1_token, "PUT", f"/fhir/Consent/{request['id']}", {**request, "status": "active"})
    assert activated.status_code == 200, activated.get_data(as_text=True)
    assert w.ids(w.b, "Observation")[1] == {w.obs1}


def test_only_the_custodian_changes_a_record(w):
    w.send(w.p1_token, "POST", "/fhir/Consent", w.consent())
    seen = w.send(w.b, "GET", f"/fhir/Observation/{w.obs1}").get_json()
    assert w.send(w.b, "PUT", f"/fhir/Observation/{w.obs1}", {**seen, "status": "amended"}).status_code == 403
    assert w.send(w.b, "DELETE", f"/fhir/Observation/{w.obs1}").status_code == 403
    assert w.send(w.a, "PUT", f"/fhir/Observation/{w.obs1}", {**seen, "status": "amended"}).status_code == 200


def test_directory_resources_are_open_to_every_hospital(w):
    assert w.send(w.b, "GET", "/fhir/Organization/hosp-a").status_code == 200
    assert w.ids(w.b, "Organization")[0] == 2


def test_a_patients_own_edit_keeps_the_hospitals_custody(w):
    me = w.send(w.p1_token, "GET", f"/fhir/Patient/{w.p1}").get_json()
    me["telecom"] = [{"system": "phone", "value": "+91 98450 11111"}]
    r = w.send(w.p1_token, "PUT", f"/fhir/Patient/{w.p1}", me)
    assert r.status_code == 200 and custodian.of(r.get_json()) == A
    assert w.p1 in w.ids(w.a, "Patient")[1]


def test_opt_out_shares_until_the_patient_denies(tmp_path):
    w = World(tmp_path, "sqlite", sharing_default="opt-out")
    assert w.ids(w.b, "Observation")[1] == {w.obs1, w.obs2}
    deny = w.consent()
    deny["provision"]["type"] = "deny"
    assert w.send(w.p1_token, "POST", "/fhir/Consent", deny).status_code == 201
    assert w.ids(w.b, "Observation")[1] == {w.obs2}


def test_a_patient_sees_who_may_see_their_records(w):
    w.send(w.p1_token, "POST", "/fhir/Consent", w.consent(classes=("Observation",), deny=("Condition",),
                                                          period={"start": "2020-01-01", "end": "2999-12-31"}))
    w.send(w.p1_token, "POST", "/fhir/Consent", w.consent(status="inactive", actor="Organization/hosp-c"))
    r = w.send(w.p1_token, "GET", f"/fhir/Patient/{w.p1}/$consents")
    assert r.status_code == 200, r.get_data(as_text=True)
    params = r.get_json()["parameter"]
    assert params[0] == {"name": "default", "valueCode": "opt-in"}
    explained = [{p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in c["part"]}
                 for c in params[1:]]
    by_status = {e["status"]: e for e in explained}
    assert by_status["active"]["inForce"] is True and by_status["active"]["type"] == "Observation"
    assert by_status["active"]["except"] == "Condition"
    assert by_status["active"]["organization"] == {"reference": B}
    assert by_status["inactive"]["inForce"] is False
    # another hospital cannot read p1's Consents, so it learns nothing from the operation
    other = w.send(w.b, "GET", f"/fhir/Patient/{w.p1}/$consents")
    assert other.status_code == 404


def test_consents_are_read_page_by_page_and_never_decided_in_part(w, monkeypatch):
    """Every applicable Consent counts, however many pages they take; past the limit, a 503 rather than
    a decision on part of them."""
    from fhirserver.governance import policy
    from fhirserver.smart_auth import access
    Users(w.app.config["MEDPORT"].store).add("p2", "correct horse battery", "patient", f"Patient/{w.p2}")
    p2_token = mint(w.app, "patient/*.cruds", subject="p2", patient=w.p2, role="patient",
                    fhirUser=f"{BASE}/Patient/{w.p2}")
    assert w.send(w.p1_token, "POST", "/fhir/Consent", w.consent()).status_code == 201
    assert w.send(p2_token, "POST", "/fhir/Consent", w.consent(patient=w.p2)).status_code == 201
    monkeypatch.setattr(access, "CONSENT_PAGE", 1)
    access._CONSENTS.clear()
    assert w.ids(w.b, "Observation")[1] == {w.obs1, w.obs2}
    monkeypatch.setattr(access, "MAX_LISTED", 1)
    monkeypatch.setattr(policy, "MAX_LISTED", 1)
    access._CONSENTS.clear()
    r = w.send(w.b, "GET", "/fhir/Observation")
    assert r.status_code == 503 and r.get_json()["resourceType"] == "OperationOutcome"


def test_a_hospitals_conditional_put_that_matches_nothing_creates_alone_and_in_a_transaction(w):
    """The id the server gives a conditional PUT with no match names no stored resource: no visibility
    check can refuse it (it answered 404 in a transaction for a hospital's token); a body id is still
    judged like any update (no update-as-create outside the reach)."""
    body = {"resourceType": "Observation", "status": "final", "code": {"text": "conditional"}}
    r = w.send(w.b, "PUT", "/fhir/Observation?identifier=urn:test|one", body)
    assert r.status_code == 201, r.get_data(as_text=True)
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"resource": body, "request": {"method": "PUT", "url": "Observation?identifier=urn:test|two"}}]}
    r = w.send(w.b, "POST", "/fhir", bundle)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["entry"][0]["response"]["status"].startswith("201")
    hidden = {**body, "id": w.obs1}           # A's Observation: B may not update it, nor learn it exists
    bundle["entry"][0]["resource"] = hidden
    bundle["entry"][0]["request"]["url"] = "Observation?identifier=urn:test|three"
    r = w.send(w.b, "POST", "/fhir", bundle)
    assert r.status_code == 404, r.get_data(as_text=True)
    assert w.send(w.b, "PUT", "/fhir/Observation?identifier=urn:test|three", hidden).status_code == 404
