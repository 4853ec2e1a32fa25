"""_elements keeps the mandatory elements (search.html#elements: "Servers SHOULD always return
mandatory elements whether they are requested or not"), as _summary=text does, and marks the
resource SUBSETTED; in a search, a read and a Bundle's GET entries alike."""
from __future__ import annotations

import json

from fhirserver.search.summary import SUBSETTED, subset
from tests.conftest import FHIR_JSON, post

OBS = {"resourceType": "Observation", "status": "final", "code": {"text": "Hb"},
       "subject": {"reference": "Patient/p1"}, "valueString": "12", "note": [{"text": "fasting"}]}


def _tags(resource):
    return [(t.get("system"), t.get("code")) for t in resource["meta"].get("tag", [])]


def test_subset_keeps_mandatory_elements():
    got = subset(json.loads(json.dumps(OBS)), None, ("subject",))
    assert set(got) == {"resourceType", "status", "code", "subject", "meta"}
    assert (SUBSETTED["system"], "SUBSETTED") in _tags(got)
    got = subset({"resourceType": "Patient", "id": "p", "gender": "male", "active": True}, None, ("gender",))
    assert set(got) == {"resourceType", "id", "gender", "meta"}       # Patient has no mandatory element


def test_search_read_and_bundle_entries_keep_them(client):
    oid = post(client, OBS).json["id"]
    found = client.get(f"/fhir/Observation?_id={oid}&_elements=subject").json["entry"][0]["resource"]
    assert set(found) == {"resourceType", "id", "meta", "status", "code", "subject"}
    assert (SUBSETTED["system"], "SUBSETTED") in _tags(found)
    read = client.get(f"/fhir/Observation/{oid}?_elements=valueString").json
    assert set(read) == {"resourceType", "id", "meta", "status", "code", "valueString"}
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": f"Observation/{oid}?_elements=note"}}]}
    r = client.post("/fhir", json=batch, headers={"Content-Type": FHIR_JSON})
    entry = r.json["entry"][0]["resource"]
    assert set(entry) == {"resourceType", "id", "meta", "status", "code", "note"}, entry
