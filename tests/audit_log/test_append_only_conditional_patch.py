"""The conditional patch route (PATCH [type]?criteria, http.html#patch) keeps the audit trail
append-only like every other write path (docs/audit.md, "Reading the log"): 405 for every caller
that may search the event, an administrator's token and authorization off included; the event is
never changed. test_append_only.py covers the other forms."""
from __future__ import annotations

import json

from fhirserver.resources.negotiation import JSON_PATCH
from tests.audit_log.test_append_only import PATCH, an_event
from tests.audit_log.test_auditevent_search import Audited


def test_no_conditional_patch_with_authorization_off(client, ctx):
    event = an_event(client, ctx)
    r = client.patch(f"/fhir/AuditEvent?_id={event['id']}", json=PATCH, headers={"Content-Type": JSON_PATCH})
    assert r.status_code == 405 and r.json["resourceType"] == "OperationOutcome", r.get_data(as_text=True)
    assert "append-only" in r.json["issue"][0]["diagnostics"]
    assert ctx.store.read("AuditEvent", event["id"]).version == 1


def test_no_conditional_patch_with_any_token(tmp_path, backend):
    w = Audited(tmp_path, backend)
    event = w.events(w.reg, "altid=dra&_count=1")[0]
    for token in (w.admin, w.exchange, w.a, w.reg, w.p1_token):
        r = w.client.patch(f"/fhir/AuditEvent?_id={event['id']}", data=json.dumps(PATCH),
                           headers={"Authorization": f"Bearer {token}", "Content-Type": JSON_PATCH})
        assert r.status_code in (403, 405) and r.get_json()["resourceType"] == "OperationOutcome"
    assert w.events(w.reg, f"_id={event['id']}")[0]["meta"]["versionId"] == event["meta"]["versionId"]
