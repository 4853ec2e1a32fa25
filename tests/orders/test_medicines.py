"""A repeat medicine, patient-mediated (fhirserver/orders/request_rules.py; docs/orders.md "Medicine
order"), on both stores: the patient proposes (intent=proposal, addressed to her doctor's hospital A in
MedicationRequest.performer); A's prescriber approves with an order basedOn the proposal (the server
completes the proposal in the same transaction); A places a fulfilment Task with no owner; the patient
chooses pharmacy B; B dispenses and completes the Task with the MedicationDispense; the order completes.
A patient cannot order; a hospital that cannot read the proposal cannot approve it."""
from __future__ import annotations

import uuid

import pytest

from fhirserver.governance import custodian
from tests.conftest import STORES
from tests.governance.test_policy import A, B
from tests.orders._orders import Orders, output, set_status

TASK_CODE = {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]}
AMLODIPINE = {"text": "Amlodipine 5 mg tablet"}


@pytest.fixture(params=STORES)
def w(request, tmp_path):
    return Orders(tmp_path, request.param)


def medication_request(w, intent: str, **fields) -> dict:
    return {"resourceType": "MedicationRequest", "status": "active", "intent": intent,
            "medicationCodeableConcept": AMLODIPINE, "subject": {"reference": f"Patient/{w.p1}"}, **fields}


def read(w, key: str) -> dict:
    return w.send(w.exchange, "GET", f"/fhir/{key}").get_json()


def test_a_patient_proposes_and_never_orders(w):
    for rtype, body in (("MedicationRequest", medication_request(w, "order")),
                        ("ServiceRequest", {"resourceType": "ServiceRequest", "status": "active", "intent": "plan",
                                            "code": {"text": "CBC"}, "subject": {"reference": f"Patient/{w.p1}"}})):
        r = w.send(w.p1_token, "POST", f"/fhir/{rtype}", body)
        assert r.status_code == 403 and "proposal" in r.get_data(as_text=True)
    proposal = w.create(w.p1_token, medication_request(w, "proposal", performer={"reference": A}))
    stored = w.send(w.p1_token, "GET", f"/fhir/MedicationRequest/{proposal}").get_json()
    assert w.send(w.p1_token, "PUT", f"/fhir/MedicationRequest/{proposal}", {**stored, "intent": "order"}).status_code == 403
    assert proposal in w.ids(w.a, "MedicationRequest")[1]           # addressed to A (performer)
    assert proposal not in w.ids(w.b, "MedicationRequest")[1]
    assert proposal not in w.ids(w.c, "MedicationRequest")[1]


def test_proposal_order_patient_chosen_pharmacy_dispense(w):
    assert set_status(w, w.a, w.task, "cancelled").status_code == 200     # the world's lab Task, withdrawn
    proposal = w.create(w.p1_token, medication_request(w, "proposal", performer={"reference": A}))
    order = w.create(w.a, medication_request(w, "order", basedOn=[{"reference": f"MedicationRequest/{proposal}"}],
                                             requester={"reference": A}))
    assert read(w, f"MedicationRequest/{proposal}")["status"] == "completed"
    assert custodian.of(read(w, f"MedicationRequest/{proposal}")) is None        # still the patient's
    tid = w.create(w.a, {"resourceType": "Task", "status": "requested", "intent": "order", "code": TASK_CODE,
                         "focus": {"reference": f"MedicationRequest/{order}"}, "for": {"reference": f"Patient/{w.p1}"},
                         "requester": {"reference": A}})
    assert order not in w.ids(w.b, "MedicationRequest")[1]
    chosen = {**w.send(w.p1_token, "GET", f"/fhir/Task/{tid}").get_json(), "owner": {"reference": B}}
    assert w.send(w.p1_token, "PUT", f"/fhir/Task/{tid}", chosen).status_code == 200
    assert order in w.ids(w.b, "MedicationRequest")[1] and w.p1 in w.ids(w.b, "Patient")[1]
    assert proposal not in w.ids(w.b, "MedicationRequest")[1]          # the pharmacy gets the order only
    for status in ("accepted", "in-progress"):
        assert set_status(w, w.b, tid, status).status_code == 200
    dispense = w.create(w.b, {"resourceType": "MedicationDispense", "status": "completed",
                              "medicationCodeableConcept": AMLODIPINE, "subject": {"reference": f"Patient/{w.p1}"},
                              "authorizingPrescription": [{"reference": f"MedicationRequest/{order}"}],
                              "quantity": {"value": 30, "unit": "tablet"}})
    r = set_status(w, w.b, tid, "completed", output=output(f"MedicationDispense/{dispense}"))
    assert r.status_code == 200, r.get_data(as_text=True)
    assert read(w, f"MedicationRequest/{order}")["status"] == "completed"
    assert dispense in w.ids(w.a, "MedicationDispense")[1]
    assert w.ids(w.c, "MedicationDispense")[1] == set()
    assert w.p1 not in w.ids(w.b, "Patient")[1]                        # the Task is closed


def test_only_a_hospital_that_reads_the_proposal_approves_it(w):
    proposal = w.create(w.p1_token, medication_request(w, "proposal", performer={"reference": A}))
    answers = []
    for target in (proposal, str(uuid.uuid4())):
        body = medication_request(w, "order", basedOn=[{"reference": f"MedicationRequest/{target}"}])
        r = w.send(w.c, "POST", "/fhir/MedicationRequest", body)
        answers.append((r.status_code, r.get_data(as_text=True).replace(target, "<id>")))
    assert answers[0][0] == 422 and answers[0] == answers[1]
    assert read(w, f"MedicationRequest/{proposal}")["status"] == "active"


def test_a_patient_changes_only_her_own_proposals(w):
    """A request is changed only by its placer (docs/orders.md): a patient edits, withdraws or deletes
    her own proposal, never a hospital's order about her (nor turns it into a proposal)."""
    order = read(w, f"ServiceRequest/{w.sr}")
    for change in ({"intent": "proposal"}, {"intent": "proposal", "performer": [{"reference": "Organization/hosp-c"}]},
                   {"intent": "proposal", "status": "revoked"}):
        r = w.send(w.p1_token, "PUT", f"/fhir/ServiceRequest/{w.sr}", {**order, **change})
        assert r.status_code == 403, (change, r.get_data(as_text=True))
    assert w.send(w.p1_token, "DELETE", f"/fhir/ServiceRequest/{w.sr}").status_code == 403
    assert read(w, f"ServiceRequest/{w.sr}")["intent"] == "order"
    assert read(w, f"Task/{w.task}")["status"] == "requested"
    a_proposal = w.create(w.a, medication_request(w, "proposal"))      # a hospital's proposal is its own
    stored = read(w, f"MedicationRequest/{a_proposal}")
    assert w.send(w.p1_token, "PUT", f"/fhir/MedicationRequest/{a_proposal}",
                  {**stored, "status": "cancelled"}).status_code == 403
    proposal = w.create(w.p1_token, medication_request(w, "proposal", performer={"reference": A}))
    stored = read(w, f"MedicationRequest/{proposal}")
    r = w.send(w.p1_token, "PUT", f"/fhir/MedicationRequest/{proposal}", {**stored, "status": "revoked"})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert w.send(w.p1_token, "DELETE", f"/fhir/MedicationRequest/{proposal}").status_code == 204
