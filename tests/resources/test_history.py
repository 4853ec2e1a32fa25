"""history at instance, type and system level (http.html#history)."""
from __future__ import annotations

from tests.conftest import patient, post, put


def test_levels_and_paging(client):
    p = post(client, patient()).json
    put(client, {**p, "gender": "male"})
    post(client, {"resourceType": "Organization", "name": "City Hospital"})
    assert client.get(f"/fhir/Patient/{p['id']}/_history").json["total"] == 2
    assert client.get("/fhir/Patient/_history").json["total"] == 2
    system = client.get("/fhir/_history").json
    # each write's Provenance (governance/provenance.py) and the server's NamingSystem/uhid
    assert system["type"] == "history" and system["total"] == 3 + 3 + 1
    assert [e["resource"]["resourceType"] for e in system["entry"][:2]] == ["Provenance", "Organization"]  # newest first
    page = client.get("/fhir/_history?_count=2").json
    assert len(page["entry"]) == 2
    nxt = next(link["url"] for link in page["link"] if link["relation"] == "next")
    page2 = client.get(nxt.replace("http://fhir.test", "")).json
    assert page2["entry"][1]["resource"]["id"] == p["id"] and page2["entry"][1]["resource"]["meta"]["versionId"] == "2"


def test_since(client):
    first = post(client, patient()).json
    second = post(client, patient()).json
    since = second["meta"]["lastUpdated"]
    ids = [e["resource"]["id"] for e in client.get(f"/fhir/Patient/_history?_since={since}").json["entry"]]
    assert ids == [second["id"]] and first["id"] not in ids


def test_bad_history_parameters(client):
    assert client.get("/fhir/_history?_since=yesterday").status_code == 400
    assert client.get("/fhir/_history?_count=-1").status_code == 400
    assert client.get("/fhir/_history?foo=1", headers={"Prefer": "handling=strict"}).status_code == 400
    assert client.get("/fhir/_history?_at=2020").status_code == 400          # known to R4, not supported
    assert client.get("/fhir/Patient/none/_history").status_code == 404
