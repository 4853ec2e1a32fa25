"""Who may have a card issued: the patient themself and staff who may read the Patient; the
AuditEvent names who asked. (Another patient's card answers like an absent patient: tests/smart_auth/test_leaks.py.)"""
from __future__ import annotations

import pytest

from tests.smart_auth._tokens import auth, make_app, mint

FHIR_JSON = "application/fhir+json"


@pytest.fixture
def app(tmp_path, backend):
    return make_app(tmp_path, backend)


def test_patient_gets_their_own_card_and_the_audit_names_them(app):
    client = app.test_client()
    system = mint(app, "system/*.cruds", subject="backend", client_id="backend")
    pid = client.post("/fhir/Patient", json={"resourceType": "Patient", "name": [{"family": "Das"}]},
                      headers=auth(system, **{"Content-Type": FHIR_JSON})).get_json()["id"]
    own = mint(app, "patient/*.rs", subject="das", client_id="phone-app", patient=pid, fhirUser=f"Patient/{pid}")
    assert client.get(f"/fhir/Patient/{pid}/$health-card", headers=auth(own)).status_code == 200
    writer = mint(app, "patient/Observation.cruds", subject="das", client_id="phone-app", patient=pid)
    assert client.get(f"/fhir/Patient/{pid}/$health-card", headers=auth(writer)).status_code == 403
    staff = mint(app, "user/Patient.rs", subject="dr", client_id="ehr", fhirUser="Practitioner/dr")
    assert client.get(f"/fhir/Patient/{pid}/$health-card", headers=auth(staff)).status_code == 200
    # the card-issued AuditEvents (fhirserver/audit.py), by their subtype: every request leaves BALP events too
    issued = f"{app.config['MEDPORT'].base}/CodeSystem/medport-audit|health-card"
    events = client.get("/fhir/AuditEvent", query_string={"entity": f"Patient/{pid}", "subtype": issued,
                                                          "_sort": "_lastUpdated"}, headers=auth(system)).get_json()["entry"]
    agents = [e["resource"]["agent"][0] for e in events]
    assert [a["who"] for a in agents] == [{"reference": f"Patient/{pid}"}, {"reference": "Practitioner/dr"}]
    assert [a["name"] for a in agents] == ["client phone-app", "client ehr"]
    # no token, no card
    assert client.get(f"/fhir/Patient/{pid}/$health-card").status_code == 401
