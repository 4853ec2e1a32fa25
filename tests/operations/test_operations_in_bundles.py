"""Operations inside Bundles run in the request's one unit of work (issue 13, defects 2 and 3): the
state-changing operations ($health-card records an AuditEvent, $registration-code stores a claim code,
$revoke-health-cards a revocation) answer inside transaction and batch Bundles, on both stores,
POST operations on an instance are accepted there, and writes keep flowing afterwards (the SQLite
writer deadlocked on the operation's second transaction)."""
from __future__ import annotations

import pytest

from tests.conftest import FHIR_JSON, patient, post

OPERATIONS = [("GET", "$health-card"), ("POST", "$health-card"), ("POST", "$registration-code"),
              ("POST", "$revoke-health-cards")]
# the subtype of each operation's sensitive-act AuditEvent (fhirserver/audit.py)
RECORDED_AS = {"$health-card": "health-card", "$registration-code": "registration-code",
               "$revoke-health-cards": "health-card-revocation"}


def audit_count(client, operation: str) -> int:
    """The operation's sensitive-act AuditEvents, by their subtype: every request, and every Bundle entry,
    also leaves its own BALP AuditEvents (docs/audit.md)."""
    subtype = f"{client.application.config['MEDPORT'].base}/CodeSystem/medport-audit|{RECORDED_AS[operation]}"
    return client.get("/fhir/AuditEvent", query_string={"subtype": subtype, "_summary": "count"}).get_json()["total"]


@pytest.mark.parametrize("kind", ["transaction", "batch"])
@pytest.mark.parametrize("method,operation", OPERATIONS)
def test_state_changing_operations_answer_inside_bundles(client, kind, method, operation):
    pid = post(client, patient(name=[{"family": "Rao", "given": ["Meena"]}], birthDate="1961-03-04")).get_json()["id"]
    before = audit_count(client, operation)
    bundle = {"resourceType": "Bundle", "type": kind, "entry": [
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
                      "subject": {"reference": f"Patient/{pid}"}},
         "request": {"method": "POST", "url": "Observation"}},
        {"request": {"method": method, "url": f"Patient/{pid}/{operation}"}}]}
    r = client.post("/fhir", json=bundle, headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 200, r.get_data(as_text=True)
    entries = r.get_json()["entry"]
    assert entries[0]["response"]["status"].startswith("201")
    assert entries[1]["response"]["status"].startswith("200"), entries[1]
    assert entries[1]["resource"]["resourceType"] == "Parameters"
    assert audit_count(client, operation) == before + 1          # recorded once, with the Bundle's unit
    # the writer is free: a plain create and another transaction go through
    assert post(client, patient(name=[{"family": "Next"}])).status_code == 201
    again = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient(name=[{"family": "After"}]), "request": {"method": "POST", "url": "Patient"}}]}
    assert client.post("/fhir", json=again, headers={"Content-Type": FHIR_JSON}).status_code == 200


def test_a_failed_transaction_keeps_no_record_of_its_operations(client):
    """The AuditEvent of a card issued inside a transaction that then fails is rolled back with it."""
    pid = post(client, patient(name=[{"family": "Iyer"}], birthDate="1970-01-01")).get_json()["id"]
    before = audit_count(client, "$health-card")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "GET", "url": f"Patient/{pid}/$health-card"}},
        {"request": {"method": "GET", "url": "Patient/no-such-patient"}}]}
    r = client.post("/fhir", json=bundle, headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 404
    assert audit_count(client, "$health-card") == before
