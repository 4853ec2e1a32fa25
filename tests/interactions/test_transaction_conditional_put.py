"""A conditional PUT in a transaction answers as the single conditional update does (http.html#cond-update:
a body id that differs from the matched resource's is a 400), instead of writing the match under it."""
from __future__ import annotations

from tests.conftest import FHIR_JSON


def test_a_body_id_differing_from_the_match_is_refused(client):
    headers = {"Content-Type": FHIR_JSON}
    body = {"resourceType": "Observation", "identifier": [{"system": "urn:t", "value": "1"}], "status": "final",
            "code": {"text": "matched"}}
    assert client.post("/fhir/Observation", json=body, headers=headers).status_code == 201
    other = client.post("/fhir/Observation", json={k: v for k, v in body.items() if k != "identifier"}, headers=headers).json
    put = {**body, "id": other["id"], "status": "amended"}
    assert client.put("/fhir/Observation?identifier=urn:t|1", json=put, headers=headers).status_code == 400
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"resource": put, "request": {"method": "PUT", "url": "Observation?identifier=urn:t|1"}}]}
    r = client.post("/fhir", json=bundle, headers=headers)
    assert r.status_code == 400, r.get_data(as_text=True)
    found = client.get("/fhir/Observation?identifier=urn:t|1").json["entry"]
    assert [e["resource"]["status"] for e in found] == ["final"]
