"""$lookup and $validate: parameters checked against their OperationDefinitions."""
from __future__ import annotations

import pytest

from tests.conftest import FHIR_JSON, data_versions

LOINC = {"resourceType": "CodeSystem", "url": "http://loinc.org", "name": "LOINC", "version": "2.74",
         "status": "active", "content": "fragment",
         "concept": [{"code": "LP1", "display": "Parts", "concept": [
             {"code": "1963-8", "display": "Bicarbonate", "designation": [{"language": "hi", "value": "बाइकार्बोनेट"}]}]}]}


def test_lookup(client):
    client.post("/fhir/CodeSystem", json=LOINC, headers={"Content-Type": FHIR_JSON})
    r = client.get("/fhir/CodeSystem/$lookup?system=http://loinc.org&code=1963-8")
    assert r.status_code == 200
    params = {p["name"]: p for p in r.json["parameter"]}
    assert params["name"]["valueString"] == "LOINC" and params["version"]["valueString"] == "2.74"
    assert params["display"]["valueString"] == "Bicarbonate"                      # found in a nested concept
    assert params["designation"]["part"][0] == {"name": "language", "valueCode": "hi"}
    body = {"resourceType": "Parameters", "parameter": [{"name": "coding", "valueCoding":
                                                          {"system": "http://loinc.org", "code": "1963-8"}}]}
    assert client.post("/fhir/CodeSystem/$lookup", json=body, headers={"Content-Type": FHIR_JSON}).status_code == 200
    assert client.get("/fhir/CodeSystem/$lookup?system=http://loinc.org&code=0000-0").status_code == 404
    assert client.get("/fhir/CodeSystem/$lookup?system=http://snomed.info/sct&code=1").status_code == 404
    assert client.get("/fhir/CodeSystem/$lookup?code=1963-8").status_code == 400
    assert client.get("/fhir/CodeSystem/$lookup?system=a&system=b&code=1").status_code == 400   # max 1
    assert client.get("/fhir/CodeSystem/$lookup?colour=red").status_code == 400               # unknown
    assert client.get("/fhir/Patient/$lookup").status_code == 404
    assert client.get("/fhir/CodeSystem/$frobnicate").status_code == 404


def test_validate(app, client):
    ctx = app.config["MEDPORT"]
    before = data_versions(ctx)       # the server's own NamingSystem/uhid
    r = client.post("/fhir/Observation/$validate", json={"resourceType": "Observation", "status": "done"},
                    headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 200
    assert {e for i in r.json["issue"] for e in i["expression"]} == {"Observation.status", "Observation.code"}
    ok = client.post("/fhir/Patient/$validate", json={"resourceType": "Patient"}, headers={"Content-Type": FHIR_JSON})
    assert ok.json["issue"][0]["severity"] == "information"
    assert data_versions(ctx) == before                    # nothing stored (but the requests' AuditEvents)
    pid = client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers={"Content-Type": FHIR_JSON}).json["id"]
    assert client.get(f"/fhir/Patient/{pid}/$validate").json["issue"][0]["severity"] == "information"
    wrapped = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {"resourceType": "Patient"}}]}
    assert client.post("/fhir/Patient/$validate", json=wrapped, headers={"Content-Type": FHIR_JSON}).status_code == 200
    assert client.post("/fhir/Patient/$validate", json={"resourceType": "Observation"},
                       headers={"Content-Type": FHIR_JSON}).status_code == 400


def test_capability_lists_operations(client):
    cs = client.get("/fhir/metadata").json
    code_system = next(r for r in cs["rest"][0]["resource"] if r["type"] == "CodeSystem")
    assert {"name": "lookup", "definition": "http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup"} \
        in code_system["operation"]
    patient = next(r for r in cs["rest"][0]["resource"] if r["type"] == "Patient")
    assert any(o["name"] == "validate" for o in patient["operation"])


@pytest.mark.parametrize("body", [[], "s", 5, {"resourceType": "Parameters", "parameter": ["x"]},
                                  {"resourceType": "Parameters", "parameter": 5}])
def test_an_operation_body_that_is_not_parameters_is_a_400(client, body):
    pid = client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers={"Content-Type": FHIR_JSON}).json["id"]
    for url in ("/fhir/Patient/$match", f"/fhir/Patient/{pid}/$registration-code", f"/fhir/Patient/{pid}/$validate"):
        r = client.post(url, json=body, headers={"Content-Type": FHIR_JSON})
        assert r.status_code == 400 and r.json["resourceType"] == "OperationOutcome", (url, r.json)
