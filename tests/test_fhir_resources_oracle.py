"""An independent oracle for what the server emits: every resource it answers with must parse in the
models of fhir.resources (a code generator over the official StructureDefinitions, sharing nothing
with fhirserver/), on both stores.

Which FHIR version. fhir.resources 8.x models R5 at the top level (`fhir.resources.Bundle` is 5.0.0)
and keeps R4B (4.3.0) under `fhir.resources.R4B` and STU3 under `fhir.resources.STU3`; there is no
R4 (4.0.1) package. R4B is R4 with a few resource families reworked (the MedicinalProduct* resources
replaced by *Definition resources, Evidence/Citation, SubscriptionTopic/Status added, NutritionProduct
...); none of them is checked here. For what is checked the R4 and R4B shapes are the same:
CapabilityStatement, OperationOutcome, Bundle (searchset, history, batch-response,
transaction-response; entry.search/request/response), Parameters (parameter.value[x], part, resource),
AuditEvent, Patient, Observation, Immunization, CodeSystem, Organization and the data types they use.
Where R4B differs from R4 in what the models check:
- value sets: CapabilityStatement.fhirVersion ("4.0.1" here) is bound to a value set that R4B extends
  with 4.3.0; the models do not check required bindings at all, so the server's own validator
  (tests/validation) is the judge of codes, not this oracle;
- invariants (FHIRPath constraints such as bdl-1..bdl-12, cpb-*) are not evaluated by the models.
What the oracle does check: element names (an unknown element is rejected), cardinality (a list where
one is allowed, a missing required element), data types and the regular expressions of primitives
(id, instant, dateTime, date, decimal, uri ...), and choice types ([x]) - in every nested resource.
It does not catch a JSON number or boolean written as a string ("total": "3" is coerced to 3: the
models are pydantic in lax mode, and strict=True does not change that for these fields).
test_the_oracle_rejects_what_it_should shows it is not a rubber stamp.
"""
from __future__ import annotations

import pytest
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from tests.conftest import FHIR_JSON, patient, post

H = {"Content-Type": FHIR_JSON}
CVX = "http://hl7.org/fhir/sid/cvx"
LOINC = "http://loinc.org"


def parses(body: dict, resource_type: str | None = None):
    """The R4B model of body["resourceType"] accepts body (else the ValidationError says where)."""
    assert isinstance(body, dict), body
    if resource_type:
        assert body.get("resourceType") == resource_type, body
    return get_fhir_model_class(body["resourceType"]).model_validate(body)


@pytest.mark.parametrize("broken", [
    {"resourceType": "OperationOutcome"},                                                  # issue is 1..*
    {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid"}], "colour": "red"},
    {"resourceType": "Bundle", "type": "searchset", "total": "three"},
    {"resourceType": "Bundle", "type": "searchset", "timestamp": "2026-13-01T00:00:00Z"},
    {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "Patient", "id": "a b"}}]},
    {"resourceType": "Bundle", "type": "history", "entry": [{"resource": {"resourceType": "Patient",
                                                                          "name": {"family": "x"}}}]},
    {"resourceType": "Parameters", "parameter": [{"name": "x", "valueString": "a", "valueCode": "b"}]},
], ids=["missing issue", "unknown element", "total not an integer", "bad instant", "bad id",
        "nested: one name instead of a list", "two value[x]"])
def test_the_oracle_rejects_what_it_should(broken):
    with pytest.raises(ValidationError):
        parses(broken)


@pytest.fixture
def asha(client):
    p = post(client, patient(gender="female", telecom=[{"system": "phone", "value": "+91 98100 00000"}]))
    assert p.status_code == 201
    imm = post(client, {"resourceType": "Immunization", "status": "completed",
                        "patient": {"reference": f"Patient/{p.json['id']}"},
                        "vaccineCode": {"coding": [{"system": CVX, "code": "207", "display": "COVID-19 mRNA"}]},
                        "occurrenceDateTime": "2021-05-01", "lotNumber": "LOT-1"})
    assert imm.status_code == 201
    return p.json


def test_capability_statement(client):
    r = client.get("/fhir/metadata")
    assert r.status_code == 200
    cs = parses(r.json, "CapabilityStatement")
    assert cs.fhirVersion == "4.0.1" and cs.rest[0].mode == "server"


def test_created_read_and_versioned_resources(client, asha):
    parses(asha, "Patient")
    parses(client.get(f"/fhir/Patient/{asha['id']}").json, "Patient")
    parses(client.get(f"/fhir/Patient/{asha['id']}/_history/1").json, "Patient")
    r = post(client, patient(), Prefer="return=OperationOutcome")
    parses(r.json, "OperationOutcome")


def test_operation_outcomes_of_errors(client, asha):
    gone = post(client, patient()).json["id"]
    assert client.delete(f"/fhir/Patient/{gone}").status_code in (200, 204)     # http.html#delete: either
    stale = {**client.get(f"/fhir/Patient/{asha['id']}").json, "active": True}
    answers = {
        "read unknown id": client.get("/fhir/Patient/nobody"),
        "read deleted": client.get(f"/fhir/Patient/{gone}"),
        "unknown type": client.get("/fhir/Frobnitz/1"),
        "unknown search parameter, strict": client.get("/fhir/Patient?colour=red",
                                                       headers={"Prefer": "handling=strict"}),
        "bad search value": client.get("/fhir/Patient?birthdate=yesterday"),
        "unparseable body": client.post("/fhir/Patient", data=b"{not json", headers=H),
        "invalid resource": client.post("/fhir/Observation", json={"resourceType": "Observation", "status": "done"},
                                        headers=H),
        "stale If-Match": client.put(f"/fhir/Patient/{asha['id']}", json=stale, headers={**H, "If-Match": 'W/"9"'}),
        "bad cursor": client.get("/fhir/Patient?_cursor=garbage"),
        "unknown operation": client.get("/fhir/CodeSystem/$frobnicate"),
    }
    statuses = {k: r.status_code for k, r in answers.items()}
    assert statuses == {"read unknown id": 404, "read deleted": 410, "unknown type": 404,
                        "unknown search parameter, strict": 400, "bad search value": 400, "unparseable body": 400,
                        "invalid resource": 400, "stale If-Match": 412, "bad cursor": 400, "unknown operation": 404}
    for what, r in answers.items():
        outcome = parses(r.json, "OperationOutcome")
        assert outcome.issue[0].severity in ("error", "fatal"), what


def test_searchset_bundles(client, asha):
    org = post(client, {"resourceType": "Organization", "name": "AIIMS Delhi"}).json["id"]
    post(client, {"resourceType": "Observation", "status": "final",
                  "code": {"coding": [{"system": LOINC, "code": "718-7", "display": "Hemoglobin"}]},
                  "subject": {"reference": f"Patient/{asha['id']}"}, "performer": [{"reference": f"Organization/{org}"}],
                  "valueQuantity": {"value": 13.50, "unit": "g/dL", "system": "http://unitsofmeasure.org",
                                    "code": "g/dL"}})
    for query in ["Observation?_include=Observation:subject&_include=Observation:performer",
                  f"Patient?_id={asha['id']}&_revinclude=Observation:subject&_revinclude=Immunization:patient",
                  "Patient?_count=1",                                         # a next link
                  "Patient?_summary=count", "Patient?_elements=gender", "Patient?_summary=true",
                  "Patient?name=nobody-at-all",                               # no entry
                  "?_type=Patient,Organization", f"Patient/{asha['id']}/Observation"]:
        r = client.get(f"/fhir/{query}")
        assert r.status_code == 200, (query, r.json)
        bundle = parses(r.json, "Bundle")
        assert bundle.type == "searchset", query
    r = client.post("/fhir/Patient/_search", data="family=Sharma",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert parses(r.json, "Bundle").total == 1


def test_history_bundles_with_deletions(client, asha):
    pid = asha["id"]
    client.put(f"/fhir/Patient/{pid}", json={**client.get(f"/fhir/Patient/{pid}").json, "active": True}, headers=H)
    gone = post(client, patient()).json["id"]
    client.delete(f"/fhir/Patient/{gone}")
    for url in (f"/fhir/Patient/{pid}/_history", "/fhir/Patient/_history", "/fhir/_history",
                f"/fhir/Patient/{gone}/_history", "/fhir/_history?_count=1", "/fhir/_history?_count=0"):
        r = client.get(url)
        assert r.status_code == 200, (url, r.json)
        bundle = parses(r.json, "Bundle")
        assert bundle.type == "history", url
    deleted = parses(client.get(f"/fhir/Patient/{gone}/_history").json).entry[0]
    assert deleted.resource is None and deleted.request.method == "DELETE"


def test_batch_and_transaction_responses(client, asha):
    pid = asha["id"]
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": f"Patient/{pid}"}},
        {"request": {"method": "GET", "url": "Patient/nobody"}},                         # fails alone: an outcome
        {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "GET", "url": "Patient?family=Sharma"}},
        {"resource": {"resourceType": "Observation", "status": "done"}, "request": {"method": "POST", "url": "Observation"}},
    ]}
    r = client.post("/fhir", json=batch, headers=H)
    assert r.status_code == 200, r.json
    response = parses(r.json, "Bundle")
    assert response.type == "batch-response"
    assert [e.response.status.split()[0] for e in response.entry] == ["200", "404", "201", "200", "400"]
    assert response.entry[1].response.outcome.get_resource_type() == "OperationOutcome"
    tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:a0000000-0000-0000-0000-000000000001", "resource": patient(),
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "Hb"},
                      "subject": {"reference": "urn:uuid:a0000000-0000-0000-0000-000000000001"}},
         "request": {"method": "POST", "url": "Observation"}},
        {"request": {"method": "GET", "url": f"Patient/{pid}"}},
    ]}
    for prefer in ("return=representation", "return=minimal", "return=OperationOutcome"):
        r = client.post("/fhir", json=tx, headers={**H, "Prefer": prefer})
        assert r.status_code == 200, r.json
        assert parses(r.json, "Bundle").type == "transaction-response", prefer


def test_health_card_parameters_and_its_audit_event(client, asha):
    r = client.post(f"/fhir/Patient/{asha['id']}/$health-card", headers=H)
    assert r.status_code == 200, r.json
    params = parses(r.json, "Parameters")
    assert "verifiableCredential" in {p.name for p in params.parameter}
    # the card-issued AuditEvent (fhirserver/audit.py), by its subtype: every request also leaves BALP events
    issued = f"{client.application.config['MEDPORT'].base}/CodeSystem/medport-audit|health-card"
    r = client.get("/fhir/AuditEvent", query_string={"entity": f"Patient/{asha['id']}", "subtype": issued})
    bundle = parses(r.json, "Bundle")
    assert len(bundle.entry) == 1
    event = bundle.entry[0].resource
    assert event.get_resource_type() == "AuditEvent"
    parses(client.get(f"/fhir/AuditEvent/{event.id}").json, "AuditEvent")


def test_operation_outputs(client, asha):
    code_system = {"resourceType": "CodeSystem", "url": LOINC, "name": "LOINC", "version": "2.74", "status": "active",
                   "content": "fragment", "concept": [{"code": "1963-8", "display": "Bicarbonate",
                                                       "designation": [{"language": "hi", "value": "बाइकार्बोनेट"}]}]}
    assert post(client, code_system).status_code == 201
    r = client.get(f"/fhir/CodeSystem/$lookup?system={LOINC}&code=1963-8")
    assert r.status_code == 200
    assert {p.name for p in parses(r.json, "Parameters").parameter} >= {"name", "display", "designation"}
    # $validate answers an OperationOutcome (its single `return` out parameter is a resource,
    # operations.html#response: returned as itself, not wrapped in Parameters)
    for body in ({"resourceType": "Observation", "status": "done"}, {"resourceType": "Patient"}):
        r = client.post(f"/fhir/{body['resourceType']}/$validate", json=body, headers=H)
        assert r.status_code == 200
        parses(r.json, "OperationOutcome")
    # Patient/$match answers a searchset Bundle with scores and the match-grade extension
    probe = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {
        "resourceType": "Patient", "name": [{"family": "Sharma", "given": ["Asha"]}], "birthDate": "1950-04-02"}}]}
    r = client.post("/fhir/Patient/$match", json=probe, headers=H)
    assert r.status_code == 200, r.json
    bundle = parses(r.json, "Bundle")
    assert bundle.type == "searchset" and bundle.entry and bundle.entry[0].search.score is not None
