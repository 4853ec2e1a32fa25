"""A batch or transaction Bundle is itself an R4 resource (http://hl7.org/fhir/R4/http.html#transaction,
bundle.html): an unknown element or a malformed entry (request.method not one of the codes, entry not an
array) is a 400 OperationOutcome; a transaction then runs nothing, a batch answers that entry alone."""
from __future__ import annotations

import pytest

from tests.conftest import FHIR_JSON, data_versions

OBS = {"resourceType": "Observation", "status": "final", "code": {"text": "Hb"}}
POST_OBS = {"resource": OBS, "request": {"method": "POST", "url": "Observation"}}


def _send(client, bundle):
    return client.post("/fhir", json=bundle, headers={"Content-Type": FHIR_JSON})


@pytest.mark.parametrize("kind", ["transaction", "batch"])
@pytest.mark.parametrize("bundle, where", [
    ({"foo": 1, "entry": [POST_OBS]}, "Bundle.foo"),
    ({"entry": {}}, "Bundle.entry"),
    ({"entry": "x"}, "Bundle.entry"),
    ({"total": "many", "entry": [POST_OBS]}, "Bundle.total"),
])
def test_a_malformed_bundle_is_400_and_runs_nothing(client, ctx, kind, bundle, where):
    before = data_versions(ctx)
    r = _send(client, {"resourceType": "Bundle", "type": kind, **bundle})
    assert r.status_code == 400 and r.json["resourceType"] == "OperationOutcome", r.json
    assert r.json["issue"][0]["expression"] == [where]
    assert data_versions(ctx) == before


@pytest.mark.parametrize("entry, where", [
    ({**POST_OBS, "foo": 1}, "Bundle.entry[1].foo"),
    ({**POST_OBS, "request": {"method": "post", "url": "Observation"}}, "Bundle.entry[1].request.method"),
    ({**POST_OBS, "request": {"method": "POST", "url": "Observation", "colour": "red"}}, "Bundle.entry[1].request.colour"),
    ({**POST_OBS, "response": {}}, "Bundle.entry[1].response"),
])
def test_a_malformed_entry_fails_a_transaction_and_only_itself_in_a_batch(client, ctx, entry, where):
    before = data_versions(ctx)
    r = _send(client, {"resourceType": "Bundle", "type": "transaction", "entry": [POST_OBS, entry]})
    assert r.status_code == 400 and r.json["issue"][0]["expression"] == [where], r.json
    assert data_versions(ctx) == before
    r = _send(client, {"resourceType": "Bundle", "type": "batch", "entry": [POST_OBS, entry]})
    assert r.status_code == 200
    first, second = r.json["entry"]
    assert first["response"]["status"].startswith("201")
    assert second["response"]["status"].startswith("400")
    assert second["response"]["outcome"]["issue"][0]["expression"] == [where]


def test_an_http_date_in_if_modified_since_is_still_read_as_the_header(client):
    pid = _send(client, {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}]}
    ).json["entry"][0]["response"]["location"].split("/")[1]
    r = _send(client, {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": f"Patient/{pid}", "ifModifiedSince": "Fri, 01 Jan 2100 00:00:00 GMT"}}]})
    assert r.status_code == 200 and r.json["entry"][0]["response"]["status"].startswith("304")
