"""A family proxy acts for the patient in a patient-mediated order (fhirserver/orders/task_rules.py;
governance/proxy.py), on both stores, in the scheduling World (asha, her son arjun with a live
delegation, ravi, hospitals A and B): the exchange places a Task for asha with no owner; arjun chooses
pharmacy B once; ravi cannot; a proxy proposes a medicine but neither orders nor places Tasks."""
from __future__ import annotations

import pytest

from tests.conftest import STORES
from tests.scheduling._world import B, World


@pytest.fixture(params=STORES)
def w(request, tmp_path):
    return World(tmp_path, request.param)


def test_the_proxy_chooses_the_pharmacy_for_the_patient(w):
    subject = {"reference": f"Patient/{w.asha}"}
    order = w.server({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                      "medicationCodeableConcept": {"text": "Metformin 500 mg"}, "subject": subject})
    task = {"resourceType": "Task", "status": "requested", "intent": "order", "code": {"text": "fulfill"},
            "focus": {"reference": f"MedicationRequest/{order}"}, "for": subject}
    assert w.send(w.son_token, "POST", "/fhir/Task", task).status_code == 403
    tid = w.server(task)
    stored = w.send(w.son_token, "GET", f"/fhir/Task/{tid}").get_json()
    chosen = {**stored, "owner": {"reference": B}}
    assert w.send(w.ravi_token, "PUT", f"/fhir/Task/{tid}", chosen).status_code == 404     # not his
    r = w.send(w.son_token, "PUT", f"/fhir/Task/{tid}", chosen)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert w.send(w.b, "GET", f"/fhir/Patient/{w.asha}").status_code == 200
    assert w.send(w.b, "GET", f"/fhir/MedicationRequest/{order}").status_code == 200
    again = {**r.get_json(), "owner": {"reference": "Organization/hosp-a"}}
    assert w.send(w.son_token, "PUT", f"/fhir/Task/{tid}", again).status_code == 403
    proposal = {"resourceType": "MedicationRequest", "status": "active", "intent": "proposal",
                "medicationCodeableConcept": {"text": "Metformin 500 mg"}, "subject": subject}
    assert w.send(w.son_token, "POST", "/fhir/MedicationRequest", proposal).status_code == 201
    assert w.send(w.son_token, "POST", "/fhir/MedicationRequest", {**proposal, "intent": "order"}).status_code == 403
