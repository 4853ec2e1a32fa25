"""batch and transaction Bundles (http.html#transaction)."""
from __future__ import annotations

import base64
import json

import pytest

from fhirserver.conformance import seed
from tests.conftest import FHIR_JSON, data_versions, make_settings

SYS = "http://hospital.example/mrn"


def tx(entries, kind="transaction"):
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def post_entry(resource, full_url=None, **request):
    e = {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"], **request}}
    if full_url:
        e["fullUrl"] = full_url
    return e


def send(client, bundle, **headers):
    return client.post("/fhir", json=bundle, headers={"Content-Type": FHIR_JSON, **headers})


def stored(ctx):
    """Versions stored by requests, the server's own NamingSystem/uhid and the audit trail left out
    (every request, a refused one too, leaves its AuditEvents: docs/audit.md)."""
    return data_versions(ctx) - ctx.store.history("NamingSystem", limit=0).total


PATIENT = {"resourceType": "Patient", "identifier": [{"system": SYS, "value": "1"}], "name": [{"family": "Rao"}]}
OBS = {"resourceType": "Observation", "status": "final", "code": {"text": "Hb"},
       "subject": {"reference": "urn:uuid:a0000000-0000-0000-0000-000000000001"},
       "text": {"status": "generated",
                "div": '<div xmlns="http://www.w3.org/1999/xhtml"><a href="urn:uuid:a0000000-0000-0000-0000-000000000001">'
                       'patient</a></div>'}}


def test_transaction_rewrites_references_everywhere(client):
    r = send(client, tx([post_entry(OBS), post_entry(PATIENT, "urn:uuid:a0000000-0000-0000-0000-000000000001")]))
    assert r.status_code == 200 and r.json["type"] == "transaction-response"
    obs_loc, pat_loc = (e["response"]["location"] for e in r.json["entry"])
    assert [e["response"]["status"] for e in r.json["entry"]] == ["201 Created", "201 Created"]
    pid = pat_loc.split("/")[1]
    obs = client.get("/fhir/" + obs_loc.rsplit("/_history", 1)[0]).json
    assert obs["subject"]["reference"] == f"Patient/{pid}"
    assert f'href="Patient/{pid}"' in obs["text"]["div"]
    assert client.get(f"/fhir/Observation?subject=Patient/{pid}").json["total"] == 1


def test_transaction_is_all_or_nothing(client, ctx):
    before = stored(ctx)
    bad = dict(OBS, status="nonsense")
    r = send(client, tx([post_entry(PATIENT, "urn:uuid:a0000000-0000-0000-0000-000000000001"), post_entry(bad)]))
    assert r.status_code == 400 and "Bundle.entry[1]" in r.json["issue"][0]["diagnostics"]
    assert r.json["issue"][0]["expression"] == ["Bundle.entry[1].resource.status"]
    assert stored(ctx) == before


def test_conditional_create_and_references(client):
    first = send(client, tx([post_entry(PATIENT, "urn:uuid:a0000000-0000-0000-0000-000000000001",
                                        ifNoneExist=f"identifier={SYS}|1"), post_entry(OBS)]))
    again = send(client, tx([post_entry(PATIENT, "urn:uuid:a0000000-0000-0000-0000-000000000001",
                                        ifNoneExist=f"identifier={SYS}|1"), post_entry(OBS)]))
    assert [e["response"]["status"] for e in again.json["entry"]] == ["200 OK", "201 Created"]
    pid = first.json["entry"][0]["response"]["location"].split("/")[1]
    assert again.json["entry"][0]["response"]["location"].split("/")[1] == pid
    assert client.get(f"/fhir/Observation?subject=Patient/{pid}").json["total"] == 2   # both point at one patient
    cond = dict(OBS, subject={"reference": f"Patient?identifier={SYS}|1"})
    r = send(client, tx([post_entry(cond)]))
    assert r.status_code == 200
    assert client.get(f"/fhir/Observation?subject=Patient/{pid}").json["total"] == 3
    missing = dict(OBS, subject={"reference": f"Patient?identifier={SYS}|404"})
    r = send(client, tx([post_entry(missing, "urn:uuid:b0000000-0000-0000-0000-000000000002")]))
    assert r.status_code == 412 and "Bundle.entry[0] (urn:uuid:b0000000" in r.json["issue"][0]["diagnostics"]


def test_unresolved_placeholder_fails(client):
    r = send(client, tx([post_entry(OBS)]))
    # R4 fixes no status for a urn:uuid that no entry's fullUrl names (412 is for conditional references)
    assert r.status_code in (400, 412) and "urn:uuid:a0000000" in r.json["issue"][0]["diagnostics"]


def test_processing_order_and_every_method(client):
    keep = client.put("/fhir/Patient/keep", json=dict(PATIENT, id="keep"), headers={"Content-Type": FHIR_JSON}).json
    client.put("/fhir/Patient/gone", json={"resourceType": "Patient", "id": "gone"}, headers={"Content-Type": FHIR_JSON})
    patch = base64.b64encode(json.dumps([{"op": "add", "path": "/active", "value": True}]).encode()).decode()
    bundle = tx([
        {"request": {"method": "GET", "url": "Patient/keep"}},
        {"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": patch},
         "request": {"method": "PATCH", "url": "Patient/keep", "ifMatch": 'W/"1"'}},
        {"request": {"method": "DELETE", "url": "Patient/gone"}},
        {"resource": {"resourceType": "Patient", "id": "new", "name": [{"family": "Iyer"}]},
         "request": {"method": "PUT", "url": "Patient/new"}},
        {"request": {"method": "GET", "url": "Patient?family=Iyer"}},
        {"request": {"method": "GET", "url": "Patient/keep", "ifNoneMatch": 'W/"2"'}},
    ])
    r = send(client, bundle)
    assert r.status_code == 200, r.json
    statuses = [e["response"]["status"] for e in r.json["entry"]]
    assert statuses == ["200 OK", "200 OK", "204 No Content", "201 Created", "200 OK", "304 Not Modified"]
    # http.html#trules: DELETE, then POST, then PUT/PATCH, then GET/HEAD, whatever the entries' order;
    # the response entries stay in the request's order. So the first GET sees the patched version 2.
    assert keep["meta"]["versionId"] == "1"                        # before the transaction
    assert r.json["entry"][0]["resource"]["active"] is True
    assert r.json["entry"][0]["resource"]["meta"]["versionId"] == "2"
    assert r.json["entry"][1]["response"]["etag"] == 'W/"2"'      # the PATCH made version 2
    assert r.json["entry"][4]["resource"]["total"] == 1            # the search sees the PUT's Patient/new
    after = client.get("/fhir/Patient/keep").json
    assert after["meta"]["versionId"] == "2" and after["active"] is True
    assert client.get("/fhir/Patient/gone").status_code == 410


def test_if_match_conflict_rolls_back(client, ctx):
    client.put("/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p1"}, headers={"Content-Type": FHIR_JSON})
    before = stored(ctx)
    r = send(client, tx([post_entry(PATIENT),
                         {"resource": {"resourceType": "Patient", "id": "p1", "active": True},
                          "request": {"method": "PUT", "url": "Patient/p1", "ifMatch": 'W/"7"'}}]))
    assert r.status_code == 412 and "Bundle.entry[1]" in r.json["issue"][0]["diagnostics"]
    assert stored(ctx) == before


def test_bad_bundles(client):
    assert send(client, {"resourceType": "Bundle", "type": "collection"}).status_code == 400
    assert send(client, {"resourceType": "Patient"}).status_code == 400
    dup = tx([{"resource": {"resourceType": "Patient", "id": "x"}, "request": {"method": "PUT", "url": "Patient/x"}},
              {"request": {"method": "DELETE", "url": "Patient/x"}}])
    assert send(client, dup).status_code == 400
    assert send(client, tx([{"request": {"method": "POST", "url": "Patient"}}])).status_code == 400
    assert send(client, tx([{"request": {"method": "FETCH", "url": "Patient"}}])).status_code == 400
    r = send(client, tx([{"resource": {"resourceType": "Parameters"}, "request": {"method": "POST", "url": "ValueSet/$lookup"}}]))
    assert r.status_code == 400 and "'code' and 'system'" in r.json["issue"][0]["diagnostics"]
    r = send(client, tx([{"request": {"method": "DELETE", "url": "Patient/$validate"}}]))
    assert r.status_code == 405


def test_bundle_size_limit(tmp_path):
    from fhirserver import create_app
    client = create_app(make_settings(tmp_path, max_bundle_entries=2)).test_client()
    r = send(client, tx([post_entry(PATIENT) for _ in range(3)]))
    assert r.status_code == 413
    r = send(client, tx([post_entry(PATIENT) for _ in range(3)], kind="batch"))
    assert r.status_code == 413


def test_batch_entries_are_independent(client):
    r = send(client, tx([post_entry(PATIENT), post_entry(dict(OBS, status="nonsense")),
                         {"request": {"method": "GET", "url": "Patient/none"}},
                         post_entry(dict(OBS, subject={"reference": f"Patient?identifier={SYS}|1"}))], kind="batch"))
    assert r.status_code == 200 and r.json["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in r.json["entry"]]
    assert statuses == ["201 Created", "400 Bad Request", "404 Not Found", "201 Created"]
    assert r.json["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    obs_id = r.json["entry"][3]["response"]["location"].split("/")[1]
    assert client.get(f"/fhir/Observation/{obs_id}").json["subject"]["reference"].startswith("Patient/")


@pytest.mark.parametrize("prefer, has_resource", [("return=representation", True), ("return=minimal", False), (None, False)])
def test_prefer_in_bundles(client, prefer, has_resource):
    headers = {"Prefer": prefer} if prefer else {}
    r = send(client, tx([post_entry({"resourceType": "Patient"})]), **headers)
    assert ("resource" in r.json["entry"][0]) == has_resource


@pytest.mark.parametrize("kind", ["batch", "transaction"])
def test_history_entries_at_every_level(client, kind):
    """GET [Type/[id/]]_history entries answer history Bundles (http.html#history) inside bundles."""
    pid = send(client, tx([post_entry(PATIENT)])).json["entry"][0]["response"]["location"].split("/")[1]
    stored = client.get(f"/fhir/Patient/{pid}").json
    client.put(f"/fhir/Patient/{pid}", json={**stored, "active": True}, headers={"Content-Type": FHIR_JSON})
    entries = [{"request": {"method": "GET", "url": url}}
               for url in (f"Patient/{pid}/_history", "Patient/_history?_count=1", "_history")]
    r = send(client, tx(entries, kind))
    assert r.status_code == 200, r.json
    bundles = [e["resource"] for e in r.json["entry"]]
    assert [b["type"] for b in bundles] == ["history"] * 3
    assert [e["resource"]["meta"]["versionId"] for e in bundles[0]["entry"]] == ["2", "1"]
    assert len(bundles[1]["entry"]) == 1 and any(link["relation"] == "next" for link in bundles[1]["link"])
    # the system history holds the audit trail too (each request's AuditEvents, docs/audit.md): the
    # data are counted without it, all on this one page
    assert len(bundles[2]["entry"]) == bundles[2]["total"]
    data = [e for e in bundles[2]["entry"] if e["resource"]["resourceType"] != "AuditEvent"]
    # the Provenance of each write, the server's NamingSystem/uhid and its definitions (conformance/seed.py)
    assert len(data) == 2 + 2 + 1 + len(seed.keys())
