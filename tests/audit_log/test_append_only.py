"""The audit trail is append-only whoever asks: no update, patch or delete of an AuditEvent, even with
authorization off (tokens are refused earlier, admission.py SERVER_WRITTEN), in any form."""
from __future__ import annotations

import base64
import json

from fhirserver.audit_log import journal
from tests.conftest import FHIR_JSON

PATCH = [{"op": "replace", "path": "/outcome", "value": "0"}]


def an_event(client, ctx) -> dict:
    client.get("/fhir/Patient/x")                        # leaves a failure event
    journal.drain(ctx.store, ctx.base)
    v = ctx.store.history("AuditEvent", limit=1).items[0]
    return json.loads(v.body)


def test_no_change_or_delete_even_with_authorization_off(client, ctx):
    event = an_event(client, ctx)
    url = f"/fhir/AuditEvent/{event['id']}"
    attempts = [
        client.put(url, json={**event, "outcome": "0"}, headers={"Content-Type": FHIR_JSON}),
        client.patch(url, json=PATCH, headers={"Content-Type": "application/json-patch+json"}),
        client.delete(url),
        client.delete(f"/fhir/AuditEvent?_id={event['id']}"),
        client.put(f"/fhir/AuditEvent?_id={event['id']}", json={**event, "outcome": "0"},
                   headers={"Content-Type": FHIR_JSON}),
        client.put("/fhir/AuditEvent/brand-new", json={**event, "id": "brand-new"},
                   headers={"Content-Type": FHIR_JSON}),
    ]
    for r in attempts:
        assert r.status_code == 405, r.get_data(as_text=True)
        assert r.json["resourceType"] == "OperationOutcome" and "append-only" in r.json["issue"][0]["diagnostics"]
    assert ctx.store.read("AuditEvent", event["id"]).version == 1


def test_no_change_inside_bundles(client, ctx):
    event = an_event(client, ctx)
    entries = [{"request": {"method": "DELETE", "url": f"AuditEvent/{event['id']}"}},
               {"request": {"method": "PUT", "url": f"AuditEvent/{event['id']}"}, "resource": {**event, "outcome": "0"}},
               {"request": {"method": "PATCH", "url": f"AuditEvent/{event['id']}"},
                "resource": {"resourceType": "Binary", "contentType": "application/json-patch+json",
                             "data": base64.b64encode(json.dumps(PATCH).encode()).decode()}}]
    for entry in entries:
        r = client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": [entry]},
                        headers={"Content-Type": FHIR_JSON})
        assert r.status_code == 405, r.get_data(as_text=True)
    r = client.post("/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": entries},
                    headers={"Content-Type": FHIR_JSON})
    assert [e["response"]["status"][:3] for e in r.json["entry"]] == ["405", "405", "405"]
    assert ctx.store.read("AuditEvent", event["id"]).version == 1


def test_the_capability_statement_offers_no_change(client):
    types = {r["type"]: r for r in client.get("/fhir/metadata").json["rest"][0]["resource"]}
    codes = {i["code"] for i in types["AuditEvent"]["interaction"]}
    assert codes == {"read", "vread", "history-instance", "history-type", "create", "search-type"}
    assert not types["AuditEvent"]["updateCreate"]
    assert {"update", "patch", "delete"} <= {i["code"] for i in types["Patient"]["interaction"]}
