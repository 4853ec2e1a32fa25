"""create, read, vread, update, delete through the HTTP layer (http://hl7.org/fhir/R4/http.html)."""
from __future__ import annotations

from tests.conftest import FHIR_JSON, patient, post, put


def test_create_assigns_id_meta_and_headers(client):
    r = post(client, patient(id="client-chosen"))
    assert r.status_code == 201
    body = r.json
    assert body["id"] != "client-chosen"                  # http.html#create: a supplied id is ignored
    assert body["meta"]["versionId"] == "1" and body["meta"]["lastUpdated"].endswith("Z")
    assert r.headers["ETag"] == 'W/"1"'
    assert r.headers["Location"] == f"http://fhir.test/fhir/Patient/{body['id']}/_history/1"
    assert r.headers["Last-Modified"].endswith("GMT")
    assert r.headers["Content-Type"].startswith(FHIR_JSON)


def test_read_returns_what_was_stored(client):
    created = post(client, patient(gender="female")).json
    r = client.get(f"/fhir/Patient/{created['id']}")
    assert r.status_code == 200 and r.json == created
    assert r.headers["ETag"] == 'W/"1"'


def test_read_unknown_is_404_outcome(client):
    r = client.get("/fhir/Patient/nope")
    assert r.status_code == 404 and r.json["resourceType"] == "OperationOutcome"


def test_read_if_none_match_gives_304(client):
    pid = post(client, patient()).json["id"]
    assert client.get(f"/fhir/Patient/{pid}", headers={"If-None-Match": 'W/"1"'}).status_code == 304


def test_update_increments_version_and_keeps_history(client):
    p = post(client, patient()).json
    p["gender"] = "female"
    r = put(client, p)
    assert r.status_code == 200 and r.json["meta"]["versionId"] == "2" and r.headers["ETag"] == 'W/"2"'
    assert client.get(f"/fhir/Patient/{p['id']}/_history/1").json.get("gender") is None
    assert client.get(f"/fhir/Patient/{p['id']}/_history/2").json["gender"] == "female"


def test_update_as_create_with_client_id(client):
    r = put(client, patient(id="uhid-123"))
    assert r.status_code == 201 and r.json["id"] == "uhid-123"
    assert r.headers["Location"].endswith("/Patient/uhid-123/_history/1")


def test_update_with_stale_if_match_is_412_and_changes_nothing(client):
    p = post(client, patient()).json
    assert put(client, {**p, "gender": "male"}, **{"If-Match": 'W/"1"'}).status_code == 200
    r = put(client, {**p, "gender": "female"}, **{"If-Match": 'W/"1"'})
    assert r.status_code == 412 and r.json["resourceType"] == "OperationOutcome"
    assert client.get(f"/fhir/Patient/{p['id']}").json["gender"] == "male"


def test_update_needs_matching_id(client):
    p = post(client, patient()).json
    r = client.put(f"/fhir/Patient/{p['id']}", json={**p, "id": "other"}, headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 400
    no_id = {k: v for k, v in p.items() if k != "id"}
    assert client.put(f"/fhir/Patient/{p['id']}", json=no_id, headers={"Content-Type": FHIR_JSON}).status_code == 400


def test_invalid_client_id_is_rejected(client):
    r = put(client, patient(id="bad_id!"))
    assert r.status_code == 400


def test_delete_then_read_is_gone_and_history_keeps_it(client):
    pid = post(client, patient()).json["id"]
    assert client.delete(f"/fhir/Patient/{pid}").status_code == 204
    r = client.get(f"/fhir/Patient/{pid}")
    assert r.status_code == 410 and r.json["issue"][0]["code"] == "deleted"
    hist = client.get(f"/fhir/Patient/{pid}/_history").json
    assert [e["request"]["method"] for e in hist["entry"]] == ["DELETE", "POST"]
    assert "resource" not in hist["entry"][0]
    assert client.get(f"/fhir/Patient/{pid}/_history/1").status_code == 200
    assert client.get(f"/fhir/Patient/{pid}/_history/2").status_code == 410
    assert client.delete(f"/fhir/Patient/{pid}").status_code == 204     # idempotent


def test_update_after_delete_recreates(client):
    pid = post(client, patient()).json["id"]
    client.delete(f"/fhir/Patient/{pid}")
    r = put(client, patient(id=pid))
    assert r.status_code == 201 and r.json["meta"]["versionId"] == "3"


def test_prefer_return(client):
    r = post(client, patient(), Prefer="return=minimal")
    assert r.status_code == 201 and r.data == b"" and r.headers["Location"]
    r = post(client, patient(), Prefer="return=OperationOutcome")
    assert r.json["resourceType"] == "OperationOutcome" and r.json["issue"][0]["severity"] == "information"
    r = post(client, patient(), Prefer="return=representation")
    assert r.json["resourceType"] == "Patient"


def test_decimal_precision_is_kept(client):
    """A decimal keeps its precision (datatypes.html#decimal: 12.50 and 12.5 differ; json.html: the
    JSON number is written as given), in every place the server writes the resource back."""
    raw = (b'{"resourceType":"Observation","status":"final","code":{"text":"Hb"},'
           b'"valueQuantity":{"value":12.50,"unit":"g/dL"}}')
    r = client.post("/fhir/Observation", data=raw, headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 201, r.json
    oid = r.json["id"]
    for body in (r.data, client.get(f"/fhir/Observation/{oid}").data,
                 client.get(f"/fhir/Observation/{oid}/_history/1").data,
                 client.get(f"/fhir/Observation?_id={oid}").data):
        assert b'"value":12.50' in body.replace(b" ", b"")


def test_pretty_and_format(client):
    pid = post(client, patient()).json["id"]
    r = client.get(f"/fhir/Patient/{pid}?_pretty=true")
    assert b"\n  " in r.data
    r = client.get(f"/fhir/Patient/{pid}?_format=json", headers={"Accept": "application/fhir+xml"})
    assert r.status_code == 200
    r = client.get(f"/fhir/Patient/{pid}", headers={"Accept": "application/json"})
    assert r.headers["Content-Type"].startswith("application/json")
