"""patch with JSON Patch (http.html#patch)."""
from __future__ import annotations

import json

from tests.conftest import patient, post

PATCH = "application/json-patch+json"


def do_patch(client, pid, ops, **headers):
    return client.patch(f"/fhir/Patient/{pid}", data=json.dumps(ops), headers={"Content-Type": PATCH, **headers})


def test_patch_applies_and_versions(client):
    pid = post(client, patient()).json["id"]
    r = do_patch(client, pid, [{"op": "replace", "path": "/birthDate", "value": "1951-01-01"},
                               {"op": "add", "path": "/active", "value": True}])
    assert r.status_code == 200 and r.json["birthDate"] == "1951-01-01" and r.json["meta"]["versionId"] == "2"
    hist = client.get(f"/fhir/Patient/{pid}/_history").json
    assert hist["entry"][0]["request"]["method"] == "PUT"


def test_patch_errors(client):
    pid = post(client, patient()).json["id"]
    assert do_patch(client, pid, {"op": "add"}).status_code == 400                          # not an array
    assert do_patch(client, pid, [{"op": "jump", "path": "/a"}]).status_code == 400         # unknown op
    assert do_patch(client, pid, [{"op": "remove", "path": "/nope"}]).status_code == 422    # cannot apply
    r = do_patch(client, pid, [{"op": "add", "path": "/gender", "value": "robot"}])        # invalid result
    assert r.status_code == 422 and r.json["issue"]
    assert do_patch(client, pid, [{"op": "replace", "path": "/id", "value": "x"}]).status_code == 422
    assert do_patch(client, pid, [{"op": "test", "path": "/birthDate", "value": "2000-01-01"}]).status_code == 422
    assert do_patch(client, pid, [], **{"If-Match": 'W/"9"'}).status_code == 412
    r = client.patch(f"/fhir/Patient/{pid}", json=[], headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 415
    assert client.get(f"/fhir/Patient/{pid}").json["meta"]["versionId"] == "1"
    assert do_patch(client, "missing", []).status_code == 404
