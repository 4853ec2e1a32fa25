"""If-None-Match on an update (RFC 9110 13.1.2, which an origin server must evaluate on a PUT): `*` means
"create it only if it does not exist" (412 when it does, nothing written); entity tags fail on the current
version. Deleted resources do not exist; without the header an update overwrites as before."""
from __future__ import annotations

from tests.conftest import data_versions, put

OBS = {"resourceType": "Observation", "id": "hb-1", "status": "final", "code": {"text": "Hb"}}


def test_if_none_match_star_creates_but_never_overwrites(client, ctx):
    r = put(client, OBS, **{"If-None-Match": "*"})
    assert r.status_code == 201
    before = data_versions(ctx)
    r = put(client, {**OBS, "status": "amended"}, **{"If-None-Match": "*"})
    assert r.status_code == 412 and r.json["resourceType"] == "OperationOutcome"
    assert data_versions(ctx) == before
    assert client.get("/fhir/Observation/hb-1").json["status"] == "final"


def test_if_none_match_with_tags_fails_on_the_current_version_only(client, ctx):
    put(client, OBS)
    before = data_versions(ctx)
    assert put(client, {**OBS, "status": "amended"}, **{"If-None-Match": 'W/"1"'}).status_code == 412
    assert put(client, {**OBS, "status": "amended"}, **{"If-None-Match": 'W/"7", "1"'}).status_code == 412
    assert data_versions(ctx) == before
    r = put(client, {**OBS, "status": "amended"}, **{"If-None-Match": 'W/"7"'})
    assert r.status_code == 200 and r.json["meta"]["versionId"] == "2"


def test_a_deleted_resource_does_not_exist_for_if_none_match(client):
    put(client, OBS)
    assert client.delete("/fhir/Observation/hb-1").status_code == 204
    r = put(client, OBS, **{"If-None-Match": "*"})
    assert r.status_code == 201 and r.json["meta"]["versionId"] == "3"


def _bundle(kind: str, url: str, resource: dict, if_none_match: str) -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": [{
        "resource": resource, "request": {"method": "PUT", "url": url, "ifNoneMatch": if_none_match}}]}


def test_a_conditional_update_honours_if_none_match_against_its_match(client, ctx):
    put(client, {**OBS, "identifier": [{"system": "http://lab.test", "value": "hb-1"}]})
    before = data_versions(ctx)
    r = client.put("/fhir/Observation?identifier=http://lab.test|hb-1", json={**OBS, "status": "amended"},
                   headers={"Content-Type": "application/fhir+json", "If-None-Match": "*"})
    assert r.status_code == 412 and r.json["resourceType"] == "OperationOutcome"
    assert data_versions(ctx) == before


def test_bundle_put_entries_honour_if_none_match(client, ctx):
    """Bundle.entry.request.ifNoneMatch is the entry's If-None-Match (bundle.html, http.html#transaction)."""
    put(client, OBS)
    before = data_versions(ctx)
    changed = {**OBS, "status": "amended"}
    r = client.post("/fhir", json=_bundle("batch", "Observation/hb-1", changed, "*"))
    assert r.status_code == 200 and r.json["entry"][0]["response"]["status"].startswith("412")
    r = client.post("/fhir", json=_bundle("transaction", "Observation/hb-1", changed, 'W/"1"'))
    assert r.status_code == 412 and r.json["resourceType"] == "OperationOutcome"
    assert data_versions(ctx) == before
    r = client.post("/fhir", json=_bundle("transaction", "Observation/hb-1", changed, 'W/"7"'))
    assert r.status_code == 200 and r.json["entry"][0]["response"]["status"].startswith("200")
