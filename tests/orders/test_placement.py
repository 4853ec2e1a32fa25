"""Security of placing orders (fhirserver/orders/placement.py, governance/addressed.py), on both stores:
a Task shares its focus and patient with its owner, so hospital C cannot reach hospital A's patient by
placing a Task (addressed to itself or to another), by pointing a Task at A's request, by a Task for
another patient than its request's, or by keeping a self-addressed Task open after the patient stops
sharing; and every refusal answers the same for A's records as for ids that do not exist."""
from __future__ import annotations

import uuid

import pytest

from tests.conftest import STORES
from tests.governance.test_policy import B
from tests.orders._orders import Orders, task

C = "Organization/hosp-c"


@pytest.fixture(params=STORES)
def w(request, tmp_path):
    return Orders(tmp_path, request.param)


def order(patient: str, performer: str | None = None) -> dict:
    body = {"resourceType": "ServiceRequest", "status": "active", "intent": "order", "code": {"text": "CBC"},
            "subject": {"reference": f"Patient/{patient}"}}
    return {**body, "performer": [{"reference": performer}]} if performer else body


def answer(r) -> tuple:
    return r.status_code, r.get_json()


def c_task(w, sr: str, patient: str, owner: str) -> dict:
    return {**task(sr, patient, "requested", owner), "requester": {"reference": C}}


@pytest.mark.parametrize("owner", [C, B])
def test_a_hospital_cannot_reach_a_patient_by_placing_a_task(w, owner):
    """C writes its own order about A's patient (it holds the order) and a Task for it: refused, and the
    refusal is the same as for a patient that does not exist."""
    ghost = str(uuid.uuid4())
    answers = []
    for patient in (w.p1, ghost):
        sr = w.create(w.c, order(patient, owner))
        r = w.send(w.c, "POST", "/fhir/Task", c_task(w, sr, patient, owner))
        answers.append(answer(r))
        assert r.status_code == 403, r.get_data(as_text=True)
    assert answers[0] == answers[1]
    assert w.ids(w.c, "Patient")[1] == set()
    assert w.ids(w.b, "Task")[1] == {w.task}                  # B's only Task is A's genuine one
    assert w.send(w.c, "GET", f"/fhir/Patient/{w.p1}").status_code == 404


def test_a_task_cannot_point_at_another_hospitals_request(w):
    real = answer(w.send(w.c, "POST", "/fhir/Task", c_task(w, w.sr, w.p1, C)))
    absent = answer(w.send(w.c, "POST", "/fhir/Task", c_task(w, str(uuid.uuid4()), w.p1, C)))
    assert real[0] == 403 and real == absent
    # nor may the lab that owns A's Task place a new one on A's order
    assert w.send(w.b, "POST", "/fhir/Task", task(w.sr, w.p1, "requested", C)).status_code == 403
    assert w.ids(w.c, "ServiceRequest")[1] == set() and w.ids(w.c, "Patient")[1] == set()


def test_a_task_is_for_its_requests_patient(w):
    r = w.send(w.a, "POST", "/fhir/Task", task(w.sr, w.p2, "requested"))
    assert r.status_code == 422 and "Task.for" in r.get_data(as_text=True)
    no_focus = {k: v for k, v in task(w.sr, w.p2, "requested").items() if k != "focus"}
    assert w.send(w.a, "POST", "/fhir/Task", no_focus).status_code == 422
    to_a_patient = {**task(w.sr, w.p1, "requested"), "owner": {"reference": f"Patient/{w.p1}"}}
    assert w.send(w.a, "POST", "/fhir/Task", to_a_patient).status_code == 422
    obs_focus = {**task(w.sr, w.p1, "requested"), "focus": {"reference": f"Observation/{w.obs1}"}}
    assert w.send(w.a, "POST", "/fhir/Task", obs_focus).status_code == 403
    # the placer cannot turn its Task to another patient either
    stored = w.send(w.a, "GET", f"/fhir/Task/{w.task}").get_json()
    assert w.send(w.a, "PUT", f"/fhir/Task/{w.task}", {**stored, "for": {"reference": f"Patient/{w.p2}"}}).status_code == 422
    assert w.ids(w.b, "Patient")[1] == {w.p1}


def test_a_self_addressed_task_shares_nothing(w):
    """While p1 shares her record with C, C may place a Task for her, even one it owns itself; once she
    revokes the Consent, that Task does not keep her visible to C (addressed.py excludes Tasks an
    organisation holds itself)."""
    consent = w.consent(actor=C)
    r = w.send(w.p1_token, "POST", "/fhir/Consent", consent)
    assert r.status_code == 201, r.get_data(as_text=True)
    assert w.ids(w.c, "Patient")[1] == {w.p1}
    sr = w.create(w.c, order(w.p1))
    w.create(w.c, c_task(w, sr, w.p1, C))
    revoked = {**r.get_json(), "status": "inactive"}
    assert w.send(w.p1_token, "PUT", f"/fhir/Consent/{revoked['id']}", revoked).status_code == 200
    assert w.ids(w.c, "Patient")[1] == set()
    assert w.send(w.c, "GET", f"/fhir/Patient/{w.p1}").status_code == 404


def test_results_and_dispenses_go_to_the_placer_only(w):
    """C cannot make A's results visible to itself: results are shared with the holder of the request they
    are based on, and C cannot base A's report on its own order (only A changes A's records)."""
    c_order = w.create(w.c, order(w.p1))
    a_report = w.create(w.a, {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "CBC"},
                              "subject": {"reference": f"Patient/{w.p1}"}})
    stored = w.send(w.a, "GET", f"/fhir/DiagnosticReport/{a_report}").get_json()
    moved = {**stored, "basedOn": [{"reference": f"ServiceRequest/{c_order}"}]}
    assert w.send(w.c, "PUT", f"/fhir/DiagnosticReport/{a_report}", moved).status_code == 404
    assert w.ids(w.c, "DiagnosticReport")[1] == set()


def test_a_result_is_based_only_on_an_order_its_writer_can_read(w):
    """Results are shown to the holder of the order they are based on: a third hospital cannot slip a
    report or a dispense into A's order (422 like an order that does not exist); the lab that owns the
    order's Task can, and so can the patient (her own measurements)."""
    body = {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "CBC"},
            "subject": {"reference": f"Patient/{w.p1}"}}
    answers = []
    for sr in (w.sr, str(uuid.uuid4())):
        r = w.send(w.c, "POST", "/fhir/DiagnosticReport", {**body, "basedOn": [{"reference": f"ServiceRequest/{sr}"}]})
        answers.append((r.status_code, r.get_data(as_text=True).replace(sr, "<id>")))
    assert answers[0][0] == 422 and answers[0] == answers[1]
    order = w.create(w.a, {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                           "medicationCodeableConcept": {"text": "Amlodipine"}, "subject": {"reference": f"Patient/{w.p1}"}})
    dispense = {"resourceType": "MedicationDispense", "status": "completed", "medicationCodeableConcept": {"text": "x"},
                "subject": {"reference": f"Patient/{w.p1}"},
                "authorizingPrescription": [{"reference": f"MedicationRequest/{order}"}]}
    assert w.send(w.c, "POST", "/fhir/MedicationDispense", dispense).status_code == 422
    assert w.ids(w.a, "DiagnosticReport")[1] == set() and w.ids(w.a, "MedicationDispense")[1] == set()
    based = {**body, "basedOn": [{"reference": f"ServiceRequest/{w.sr}"}]}
    assert w.send(w.b, "POST", "/fhir/DiagnosticReport", based).status_code == 201
    own = {"resourceType": "Observation", "status": "final", "code": {"text": "home BP"},
           "subject": {"reference": f"Patient/{w.p1}"}, "basedOn": [{"reference": f"ServiceRequest/{w.sr}"}]}
    assert w.send(w.p1_token, "POST", "/fhir/Observation", own).status_code == 201
