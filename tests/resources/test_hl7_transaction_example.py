"""The official HL7 transaction example (Bundle-bundle-transaction.json) against the state it
assumes, compared with the official response (Bundle-bundle-response.json).

Its entry 7 posts a LOINC coding to 'ValueSet/$lookup' (R4 defines $lookup on CodeSystem; the
server accepts it on ValueSet too for this example) and the answer names LOINC: the state
therefore includes a LOINC CodeSystem fragment holding that code."""
from __future__ import annotations

import json
import os

from tests._uhid import with_uhid
from tests.conftest import EXAMPLES_DIR, FHIR_JSON

LOOKUP = 7


def load(name):
    with open(os.path.join(EXAMPLES_DIR, name), encoding="utf-8") as f:
        return json.load(f)


def put(client, resource, times=1):
    resource = with_uhid(resource, resource["id"])     # a Patient written again keeps its UHID
    for n in range(times):      # the first PUT creates (201), the others update (200): http.html#update
        r = client.put(f"/fhir/Patient/{resource['id']}", json=resource, headers={"Content-Type": FHIR_JSON})
        assert r.status_code == (201 if n == 0 else 200), r.json


def test_official_transaction_example(client):
    # the state the example assumes (read off the official response)
    put(client, {"resourceType": "Patient", "id": "123"}, times=3)                 # PUT makes version 4
    put(client, {"resourceType": "Patient", "id": "123a"}, times=2)                # ifMatch W/"2"
    put(client, {"resourceType": "Patient", "id": "234"})                         # DELETE Patient/234
    put(client, {"resourceType": "Patient", "id": "c1", "identifier": [{"value": "123456"}]})  # conditional DELETE
    put(client, {"resourceType": "Patient", "id": "e1",
                 "identifier": [{"system": "http:/example.org/fhir/ids", "value": "234234"}]})  # ifNoneExist matches
    put(client, {"resourceType": "Patient", "id": "12334"}, times=4)              # ifNoneMatch W/"4" -> 304
    put(client, {"resourceType": "Patient", "id": "peter", "name": [{"given": ["Peter"]}]})
    client.post("/fhir/CodeSystem", headers={"Content-Type": FHIR_JSON}, json={
        "resourceType": "CodeSystem", "url": "http://loinc.org", "name": "LOINC", "status": "active",
        "content": "fragment", "concept": [{"code": "1963-8", "display": "Bicarbonate [Moles/volume] in Serum or Plasma"}]})

    bundle = load("Bundle-bundle-transaction.json")
    for i in (2, 4):    # its PUTs of existing patients carry the UHID those patients have here (it is permanent)
        bundle["entry"][i]["resource"] = with_uhid(bundle["entry"][i]["resource"], bundle["entry"][i]["resource"]["id"])
    expected = load("Bundle-bundle-response.json")["entry"]
    r = client.post("/fhir", json=bundle, headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 200, r.json
    got = r.json["entry"]
    assert len(got) == len(expected)
    for i, (g, want) in enumerate(zip(got, expected, strict=True)):
        status, want_status = g["response"]["status"], want["response"]["status"]
        # the official response writes "202 Accepted" and "DELETE" for its deletes; this server says 204
        if bundle["entry"][i]["request"]["method"] == "DELETE":
            assert status == "204 No Content", (i, g)
        else:
            assert status.split()[0] == want_status.split()[0], (i, status, want_status)
        if "location" in want["response"] and want["response"]["location"].startswith("Patient/123"):
            assert g["response"]["location"] == want["response"]["location"], (i, g)
        if "etag" in want["response"]:
            assert g["response"]["etag"] == want["response"]["etag"], (i, g)
    assert got[0]["response"]["location"].startswith("Patient/")
    assert got[1]["response"]["location"].startswith("Patient/e1/")      # found by ifNoneExist
    assert got[LOOKUP]["resource"]["parameter"][0] == expected[LOOKUP]["resource"]["parameter"][0]   # name: LOINC
    # GETs run after the writes: four Peters from this bundle plus the one already there
    assert got[8]["resource"]["type"] == "searchset" and got[8]["resource"]["total"] == 5
    assert client.get("/fhir/Patient/234").status_code == 410
    assert client.get("/fhir/Patient/c1").status_code == 410
    assert client.get("/fhir/Patient?identifier=http:/example.org/fhir/ids|456456").json["total"] == 1
