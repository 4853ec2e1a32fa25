"""Conditional patch, PATCH [type]?criteria (http://hl7.org/fhir/R4/http.html#patch): the one match is
patched (JSON Patch or FHIRPath Patch), no match is a 404 (a patch creates nothing), several a 412; only
resources the caller may patch can match (another organisation's record is as if absent)."""
from __future__ import annotations

import base64
import json

from tests.conftest import FHIR_JSON, data_versions, post
from tests.smart_auth._tokens import auth, make_app, mint

JSON_PATCH = "application/json-patch+json"
AMEND = [{"op": "replace", "path": "/status", "value": "amended"}]


def _obs(value: str) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "Hb"},
            "identifier": [{"system": "urn:lab", "value": value}]}


def _patch(client, criteria: str, body, content_type: str = JSON_PATCH, **headers):
    return client.patch(f"/fhir/Observation?{criteria}", json=body, headers={"Content-Type": content_type, **headers})


def test_one_match_is_patched(client):
    oid = post(client, _obs("1")).json["id"]
    post(client, _obs("2"))
    r = _patch(client, "identifier=urn:lab|1", AMEND)
    assert r.status_code == 200 and r.json["id"] == oid and r.json["status"] == "amended"
    assert r.headers["ETag"] == 'W/"2"'
    fhirpath = {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
        {"name": "type", "valueCode": "replace"}, {"name": "path", "valueString": "Observation.status"},
        {"name": "value", "valueCode": "corrected"}]}]}
    r = _patch(client, "identifier=urn:lab|1", fhirpath, FHIR_JSON)
    assert r.status_code == 200 and r.json["status"] == "corrected"
    assert client.get(f"/fhir/Observation/{oid}").json["meta"]["versionId"] == "3"


def test_no_match_is_404_and_several_412_and_nothing_is_written(client, ctx):
    post(client, _obs("1"))
    post(client, _obs("1"))
    before = data_versions(ctx)
    r = _patch(client, "identifier=urn:lab|none", AMEND)
    assert r.status_code == 404 and r.json["resourceType"] == "OperationOutcome"
    r = _patch(client, "identifier=urn:lab|1", AMEND)
    assert r.status_code == 412 and r.json["resourceType"] == "OperationOutcome"
    assert data_versions(ctx) == before


def test_bad_criteria_bodies_and_if_match(client, ctx):
    post(client, _obs("1"))
    before = data_versions(ctx)
    assert client.patch("/fhir/Observation", json=AMEND, headers={"Content-Type": JSON_PATCH}).status_code == 400
    assert _patch(client, "bogus=1", AMEND).status_code == 400
    assert _patch(client, "identifier=urn:lab|1", AMEND, "text/plain").status_code == 415
    assert _patch(client, "identifier=urn:lab|1", [{"op": "remove", "path": "/status"}]).status_code == 422
    assert _patch(client, "identifier=urn:lab|1", AMEND, **{"If-Match": 'W/"7"'}).status_code == 412
    assert data_versions(ctx) == before
    assert _patch(client, "identifier=urn:lab|1", AMEND, **{"If-Match": 'W/"1"'}).status_code == 200


def test_another_organisations_record_does_not_match(tmp_path, backend):
    app = make_app(tmp_path, backend)
    client = app.test_client()
    a = mint(app, "system/*.cruds", client_id="hosp-a-ehr", organization="Organization/hosp-a")
    b = mint(app, "system/*.cruds", client_id="hosp-b-ehr", organization="Organization/hosp-b")
    oid = client.post("/fhir/Observation", json=_obs("A-1"), headers=auth(a, **{"Content-Type": FHIR_JSON})).json["id"]
    r = client.patch("/fhir/Observation?identifier=urn:lab|A-1", json=AMEND,
                     headers=auth(b, **{"Content-Type": JSON_PATCH}))
    assert r.status_code == 404
    assert client.get(f"/fhir/Observation/{oid}", headers=auth(a)).json["status"] == "final"
    r = client.patch("/fhir/Observation?identifier=urn:lab|A-1", json=AMEND,
                     headers=auth(a, **{"Content-Type": JSON_PATCH}))
    assert r.status_code == 200 and r.json["status"] == "amended"


def test_batch_patch_entries_may_be_conditional(client):
    oid = post(client, _obs("1")).json["id"]
    binary = {"resourceType": "Binary", "contentType": JSON_PATCH,
              "data": base64.b64encode(json.dumps(AMEND).encode()).decode()}
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": binary, "request": {"method": "PATCH", "url": "Observation?identifier=urn:lab|1"}},
        {"resource": binary, "request": {"method": "PATCH", "url": "Observation?identifier=urn:lab|none"}}]}
    entries = client.post("/fhir", json=bundle, headers={"Content-Type": FHIR_JSON}).json["entry"]
    assert entries[0]["response"]["status"].startswith("200") and entries[1]["response"]["status"].startswith("404")
    assert client.get(f"/fhir/Observation/{oid}").json["status"] == "amended"
