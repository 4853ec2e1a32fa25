"""_summary and _elements on read and vread (http://hl7.org/fhir/R4/http.html#read: "the search parameter
_summary can be used when reading a resource"; search.html#summary, #elements): a SUBSETTED resource."""
from __future__ import annotations

from fhirserver.search.summary import SUBSETTED
from tests.conftest import patient, post

NARRATIVE = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Asha Sharma</div>'}


def _stored(client) -> dict:
    return post(client, patient(gender="female", text=NARRATIVE,
                                contact=[{"name": {"family": "Sharma", "given": ["Arjun"]}}])).json


def _tags(resource: dict) -> list:
    return [(t["system"], t["code"]) for t in resource["meta"].get("tag", ())]


def test_read_with_summary_true_keeps_summary_elements_only(client):
    p = _stored(client)
    r = client.get(f"/fhir/Patient/{p['id']}?_summary=true")
    assert r.status_code == 200 and r.headers["ETag"] == 'W/"1"'
    body = r.json
    assert body["id"] == p["id"] and body["name"] == p["name"] and body["gender"] == "female"
    assert "contact" not in body and "text" not in body          # not summary elements of Patient
    assert (SUBSETTED["system"], SUBSETTED["code"]) in _tags(body)


def test_read_with_elements_keeps_those_and_the_mandatory_id_meta(client):
    p = _stored(client)
    body = client.get(f"/fhir/Patient/{p['id']}?_elements=gender").json
    assert set(body) == {"resourceType", "id", "meta", "gender"}
    assert (SUBSETTED["system"], SUBSETTED["code"]) in _tags(body)


def test_read_with_summary_data_and_text(client):
    p = _stored(client)
    data = client.get(f"/fhir/Patient/{p['id']}?_summary=data").json
    assert "text" not in data and data["contact"] == p["contact"]
    text = client.get(f"/fhir/Patient/{p['id']}?_summary=text").json
    assert text["text"] == NARRATIVE and "contact" not in text and "gender" not in text


def test_vread_is_shaped_too(client):
    p = _stored(client)
    body = client.get(f"/fhir/Patient/{p['id']}/_history/1?_elements=birthDate").json
    assert set(body) == {"resourceType", "id", "meta", "birthDate"}


def test_summary_false_and_no_parameter_give_the_whole_stored_resource(client):
    p = _stored(client)
    assert client.get(f"/fhir/Patient/{p['id']}?_summary=false").json == p
    assert client.get(f"/fhir/Patient/{p['id']}").json == p


def test_bad_summary_values_on_a_read_are_400(client):
    p = _stored(client)
    for query in ("_summary=maybe", "_summary=count", "_elements=name.given"):
        r = client.get(f"/fhir/Patient/{p['id']}?{query}")
        assert r.status_code == 400 and r.json["resourceType"] == "OperationOutcome", query


def test_read_entries_of_a_batch_are_shaped(client):
    p = _stored(client)
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": f"Patient/{p['id']}?_elements=gender"}},
        {"request": {"method": "GET", "url": f"Patient/{p['id']}/_history/1?_summary=data"}},
        {"request": {"method": "GET", "url": f"Patient/{p['id']}?_summary=count"}}]}
    entries = client.post("/fhir", json=bundle, headers={"Content-Type": "application/fhir+json"}).json["entry"]
    assert set(entries[0]["resource"]) == {"resourceType", "id", "meta", "gender"}
    assert "text" not in entries[1]["resource"] and entries[1]["resource"]["contact"] == p["contact"]
    assert entries[2]["response"]["status"].startswith("400")
